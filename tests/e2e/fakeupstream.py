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
  ttl        A records with TTLs chosen by the first label: "huge" 0x7fffffff, "top" 0x80000000,
             "mixed" three records with TTLs 300, 20 and 100; anything else one record, TTL 60
  size       a TXT answer (with an OPT) of the size the first label names ("s600": 600 bytes);
             "tc..." names get TC=1 over UDP and the whole answer over TCP; "formerr..." names
             get FORMERR without an OPT when asked with EDNS (as a server that does not know
             EDNS) and no answer at all when asked without
The log line ends with the transport: "udp" or "tcp".
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


def note(port, q, tcp=False):
    with lock:
        name = q.question[0].name.to_text() if q.question else "-"
        rtype = dns.rdatatype.to_text(q.question[0].rdtype) if q.question else "-"
        log.write("%d %s %s %s\n" % (port, name, rtype, "tcp" if tcp else "udp"))


def cloak_records(r, qn):
    """Fills r for the cloak mode's names; False when the name is not one of them."""
    if qn.to_text().lower().startswith("private."):  # rebinding: a public name, a LAN address
        r.answer.append(dns.rrset.from_text(qn, 60, "IN", "A", "10.1.2.3"))
        return True
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


def question_bytes(data):
    """The question section of a raw query, byte for byte (its 0x20 case kept)."""
    o = 12
    while data[o]:
        o += data[o] + 1
    return data[12:o + 5]


def raw_records(data, records, flags=0x8180, opt=False):
    """An answer to the raw query `data`: records = [(type, ttl, rdata)], each owned by the
    question name (a compression pointer to it)."""
    hdr = struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], flags, 1, len(records), 0,
                      1 if opt else 0)
    body = question_bytes(data)
    for rtype, ttl, rdata in records:
        body += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata
    if opt:
        body += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return hdr + body


def ttl_answer(data, q):
    label = q.question[0].name.labels[0].decode().lower()
    a = lambda i: socket.inet_aton("192.0.2.%d" % i)
    if label == "huge":
        return raw_records(data, [(1, 0x7FFFFFFF, a(1))])
    if label == "top":
        return raw_records(data, [(1, 0x80000000, a(1))])
    if label == "mixed":
        return raw_records(data, [(1, 300, a(1)), (1, 20, a(2)), (1, 100, a(3))])
    return raw_records(data, [(1, 60, a(1))])


def size_answer(data, q, tcp):
    label = q.question[0].name.labels[0].decode().lower()
    if label.startswith("formerr"):
        return raw_records(data, [], flags=0x8181) if q.edns >= 0 else None
    if label.startswith("tc") and not tcp:
        return raw_records(data, [], flags=0x8380, opt=True)
    want = int(label.lstrip("stc") or "600")
    base = len(raw_records(data, [(16, 60, b"")], opt=True))
    pad = want - base
    chunks = []
    while pad > 0:  # TXT strings of up to 255 bytes, each with its length byte
        n = min(255, pad - 1) if pad > 1 else 1
        chunks.append(bytes([n]) + b"x" * n)
        pad -= n + 1
    return raw_records(data, [(16, 60, b"".join(chunks))], opt=True)


def answer_for(q, tcp, data=None):
    if mode == "ttl":
        return ttl_answer(data, q)
    if mode == "size":
        return size_answer(data, q, tcp)
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
            wire = answer_for(q, False, data)
            if wire is None:
                return
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
            note(c.getpeername()[1], q, True)
            if mode in ("blackhole", "tc"):
                return
            if mode == "slow":
                time.sleep(delay)
            wire = answer_for(q, True, data)
            if wire is None:
                continue
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
