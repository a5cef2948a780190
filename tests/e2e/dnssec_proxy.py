#!/usr/bin/python3
"""dnssec_proxy.py - a man in the middle for the DNSSEC tests: relays queries to an
authoritative server and tampers with some answers the way a lying path would.

Usage: dnssec_proxy.py LISTEN_ADDR UPSTREAM_ADDR [strip | strip-if FILE]
Serves UDP and TCP on LISTEN_ADDR:53, prints "ready" once listening. With "strip", every RRSIG of
every answer is removed (a path that strips DNSSEC); with "strip-if FILE", the same while FILE
exists (a path that starts stripping). Otherwise, rules by the first label of the
question:
  forged...  NXDOMAIN with the parent's SOA and nothing else (no NSEC, no RRSIG): a forged
             denial of a name that exists
  nosig...   the real answer with every RRSIG removed (a DNSSEC-stripping path)
Everything else is relayed unchanged.
"""
import os, socket, struct, sys, threading

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

listen, upstream = sys.argv[1], sys.argv[2]
strip_always = len(sys.argv) > 3 and sys.argv[3] == "strip"
strip_flag = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "strip-if" else None


def relay(q):
    return dns.query.udp(q, upstream, timeout=3, ignore_trailing=True)


def answer(wire):
    strip_all = strip_always or (strip_flag is not None and os.path.exists(strip_flag))
    q = dns.message.from_wire(wire)
    name = q.question[0].name
    first = name.labels[0].decode(errors="replace").lower() if name.labels else ""
    if first.startswith("forged") and not strip_all:
        soa_q = dns.message.make_query(name.parent(), "SOA", want_dnssec=False)
        soa = relay(soa_q)
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.NXDOMAIN)
        r.flags |= dns.flags.AA
        r.authority = [rr for rr in soa.answer if rr.rdtype == dns.rdatatype.SOA]
        return r.to_wire()
    r = relay(q)
    if first.startswith("nosig") or strip_all:
        for sec in (r.answer, r.authority, r.additional):
            sec[:] = [rr for rr in sec if rr.rdtype != dns.rdatatype.RRSIG]
    return r.to_wire(max_size=65535)


def serve_udp(s):
    while True:
        wire, peer = s.recvfrom(65535)
        try:
            out = answer(wire)
        except Exception as e:  # a broken query: no answer, like a real middlebox
            print("udp:", e, file=sys.stderr)
            continue
        s.sendto(out, peer)


def serve_tcp_conn(c):
    with c:
        while True:
            head = c.recv(2)
            if len(head) < 2:
                return
            n = struct.unpack("!H", head)[0]
            wire = b""
            while len(wire) < n:
                chunk = c.recv(n - len(wire))
                if not chunk:
                    return
                wire += chunk
            out = answer(wire)
            c.sendall(struct.pack("!H", len(out)) + out)


import dns.flags  # noqa: E402

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((listen, 53))
t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind((listen, 53))
t.listen(16)
threading.Thread(target=serve_udp, args=(u,), daemon=True).start()
print("ready", flush=True)
while True:
    conn, _ = t.accept()
    threading.Thread(target=serve_tcp_conn, args=(conn,), daemon=True).start()
