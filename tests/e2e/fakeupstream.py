#!/usr/bin/python3
"""fakeupstream.py - a scriptable upstream for the tests, misbehaving on purpose.

Usage: fakeupstream.py ADDR MODE LOGFILE [DELAY_MS]
Serves UDP and TCP on ADDR:53. Every query is logged as "<src_port> <qname as received> <type>"
(one line, flushed), so tests can count queries, check source ports and 0x20 case.
Modes:
  answer     A 192.0.2.1 for any name (TTL 60), NXDOMAIN for names starting "nx."
  slow       like answer, after DELAY_MS
  blackhole  read queries, never answer
  servfail   SERVFAIL for everything
  garbage    random bytes
  wrongid    a correct answer with another ID
  wrongq     a correct answer for another name
  lowercase  a correct answer whose question is lowercased (breaks 0x20)
  wrongsrc   a correct answer sent from another address (127.0.0.1 instead of ADDR)
  tc         UDP answers always have TC set and no records; TCP connections are closed
  big        40 TXT records of 100 bytes: over 1232 bytes, so UDP answers are truncated
  cloak      names "chainN.*" (A): a chain of N CNAMEs whose Nth target is shop.tracker.test;
             "httpsN.*" (HTTPS): N HTTPS records, the Nth with target shop.tracker.test;
             "cleanchainN.*" / "cleanhttpsN.*": the same with no tracker (last target
             final.ok.test); anything else as in answer
"""
import os, random, re, socket, struct, sys, threading, time

import dns.flags
import dns.name
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

addr, mode, logfile = sys.argv[1], sys.argv[2], sys.argv[3]
delay = int(sys.argv[4]) / 1000.0 if len(sys.argv) > 4 else 0.0
log = open(logfile, "a", buffering=1)
lock = threading.Lock()


def note(port, q):
    with lock:
        name = q.question[0].name.to_text() if q.question else "-"
        rtype = dns.rdatatype.to_text(q.question[0].rdtype) if q.question else "-"
        log.write("%d %s %s\n" % (port, name, rtype))


def cloak_records(r, qn):
    """Fills r for the cloak mode's names; False when the name is not one of them."""
    m = re.match(r"(clean)?(chain|https)(\d+)\.", qn.to_text().lower())
    if not m:
        return False
    n, last = int(m.group(3)), "final.ok.test." if m.group(1) else "shop.tracker.test."
    targets = ["link%d.ok.test." % k for k in range(1, n)] + [last]
    if m.group(2) == "chain":
        owner = qn
        for t in targets:
            r.answer.append(dns.rrset.from_text(owner, 60, "IN", "CNAME", t))
            owner = dns.name.from_text(t)
        r.answer.append(dns.rrset.from_text(owner, 60, "IN", "A", "192.0.2.7"))
    else:
        # One RRset object per record: dnspython would order the records of one set as it
        # likes, and the tracker must be the Nth record on the wire.
        for k, t in enumerate(targets):
            r.answer.append(dns.rrset.from_text(qn, 60, "IN", "HTTPS", "%d %s alpn=h2" % (k + 1, t)))
    return True


def answer_for(q, tcp):
    if mode == "servfail":
        r = dns.message.make_response(q)
        r.set_rcode(dns.rcode.SERVFAIL)
        return r.to_wire()
    if mode == "garbage":
        return os.urandom(random.randint(1, 200))
    r = dns.message.make_response(q)
    qn = q.question[0].name
    if mode == "tc" and not tcp:
        r.flags |= dns.flags.TC
        return r.to_wire()
    if qn.to_text().lower().startswith("nx."):
        r.set_rcode(dns.rcode.NXDOMAIN)
        soa = dns.rrset.from_text(qn.parent(), 60, "IN", "SOA", "ns. host. 1 3600 600 86400 30")
        r.authority.append(soa)
    elif mode == "cloak" and cloak_records(r, qn):
        pass
    elif mode == "big":
        r.answer.append(dns.rrset.from_text(qn, 60, "IN", "TXT",
                        *['"%s"' % (("%02d" % i) * 50) for i in range(40)]))
    elif q.question[0].rdtype == dns.rdatatype.A:
        r.answer.append(dns.rrset.from_text(qn, 60, "IN", "A", "192.0.2.1"))
    elif q.question[0].rdtype == dns.rdatatype.AAAA:
        r.answer.append(dns.rrset.from_text(qn, 60, "IN", "AAAA", "2001:db8::1"))
    try:
        wire = r.to_wire(max_size=65535 if tcp else max(512, q.payload or 512))
    except dns.exception.TooBig:  # as a server does: the question only, TC=1
        t = dns.message.make_response(q)
        t.flags |= dns.flags.TC
        wire = t.to_wire()
    if mode == "wrongid":
        wire = struct.pack("!H", (r.id + 1) & 0xFFFF) + wire[2:]
    if mode == "wrongq":
        other = dns.message.make_query("other.example.", q.question[0].rdtype)
        o = dns.message.make_response(other)
        o.id = r.id
        o.answer.append(dns.rrset.from_text("other.example.", 60, "IN", "A", "192.0.2.66"))
        wire = o.to_wire()
    if mode == "lowercase":
        qlen = len(qn.to_wire())
        wire = wire[:12] + wire[12:12 + qlen].lower() + wire[12 + qlen:]
    return wire


def udp_loop():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    while True:
        data, peer = s.recvfrom(65535)
        try:
            q = dns.message.from_wire(data)
        except Exception:
            continue
        note(peer[1], q)
        if mode == "blackhole":
            continue
        def reply(data=data, peer=peer, q=q):
            if mode == "slow":
                time.sleep(delay)
            wire = answer_for(q, False)
            (other if mode == "wrongsrc" else s).sendto(wire, peer)
        if mode == "slow":
            threading.Thread(target=reply, daemon=True).start()
        else:
            reply()


def tcp_conn(c):
    try:
        while True:
            hdr = c.recv(2)
            if len(hdr) < 2:
                return
            (n,) = struct.unpack("!H", hdr)
            data = b""
            while len(data) < n:
                chunk = c.recv(n - len(data))
                if not chunk:
                    return
                data += chunk
            q = dns.message.from_wire(data)
            note(c.getpeername()[1], q)
            if mode in ("blackhole", "tc"):
                return
            if mode == "slow":
                time.sleep(delay)
            wire = answer_for(q, True)
            c.sendall(struct.pack("!H", len(wire)) + wire)
    except Exception:
        pass
    finally:
        c.close()


def tcp_loop():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, 53))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


threading.Thread(target=tcp_loop, daemon=True).start()
print("ready", flush=True)
udp_loop()
