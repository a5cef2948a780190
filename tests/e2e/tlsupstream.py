#!/usr/bin/python3
"""tlsupstream.py - a scripted DNS over TLS upstream for the tests, misbehaving on purpose.

Usage: tlsupstream.py ADDR PORT CERT KEY MODE LOGFILE
Answers A 192.0.2.99 for any name. Logs "conn N" for each accepted connection, "query NAME
LENGTH" for each query and "batch N" for each group of answers it sends. Modes:
  reorder    collects the queries that arrive within 200 ms of each other and answers them in
             reverse order, each answer split over two TLS records
  dropfirst  closes its first connection, without answering, once 5 queries are in on it;
             answers normally on later connections
  stall      accepts TCP connections and never starts the TLS handshake
  lateid     before each answer, sends one with the same ID for another question (what a late
             answer to a timed-out query whose ID was drawn again looks like)
  mute       answers the first query on its first connection, then reads on and never answers
             there again (the connection stays open); answers normally on later connections
Prints "ready" once listening.
"""
import socket, ssl, struct, sys, threading, time

import dns.message
import dns.rrset

addr, port, cert, key, mode, logfile = sys.argv[1:7]
log = open(logfile, "a", buffering=1)
lock = threading.Lock()
nconn = 0


def note(text):
    with lock:
        log.write(text + "\n")


def answer(wire):
    q = dns.message.from_wire(wire)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.99"))
    return q, r.to_wire()


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def other_question(wire):
    q = dns.message.from_wire(wire)
    o = dns.message.make_query("late.other.test.", "A")
    o.id = q.id
    r = dns.message.make_response(o)
    r.answer.append(dns.rrset.from_text("late.other.test.", 60, "IN", "A", "192.0.2.66"))
    return r.to_wire()


def send_split(conn, wire):
    framed = struct.pack("!H", len(wire)) + wire
    conn.sendall(framed[:3])  # two TLS records for one answer
    conn.sendall(framed[3:])


def serve(raw, n):
    if mode == "stall":
        time.sleep(30)
        raw.close()
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        return
    pending = []
    seen = 0
    try:
        while True:
            conn.settimeout(0.2 if pending else 30)
            try:
                head = read_exact(conn, 2)
            except socket.timeout:
                head = b""
            if head is None:
                return
            if head:
                wire = read_exact(conn, struct.unpack("!H", head)[0])
                if wire is None:
                    return
                q, a = answer(wire)
                note("query %s %d" % (q.question[0].name.to_text(), len(wire)))
                seen += 1
                if mode == "dropfirst" and n == 1:
                    if seen == 5:
                        note("dropping")
                        conn.close()
                        return
                    continue
                if mode == "mute" and n == 1 and seen > 1:
                    note("muted")
                    continue
                if mode == "lateid":
                    pending.append(other_question(wire))
                pending.append(a)
                if mode == "reorder":
                    continue
            if pending:
                note("batch %d" % len(pending))
                for a in (pending if mode == "lateid" else reversed(pending)):
                    send_split(conn, a)
                pending = []
    except (ssl.SSLError, OSError):
        return


def main():
    global nconn
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(64)
    print("ready", flush=True)
    while True:
        raw, _ = s.accept()
        nconn += 1
        note("conn %d" % nconn)
        threading.Thread(target=serve, args=(raw, nconn), daemon=True).start()


main()
