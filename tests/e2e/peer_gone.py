#!/usr/bin/python3
"""peer_gone.py - clients that go away before their answers are written (for the tests).

Usage: peer_gone.py tcp SERVER COUNT NAME...   (each NAME asked over one connection)
       peer_gone.py control SOCKET COUNT
       peer_gone.py idle SOCKET STATUSFILE POKEFILE
tcp: COUNT connections, each sends one A question per NAME and a FIN, and closes at once,
     reading nothing: the daemon's answers reach a closed socket, whose RST makes the next
     write on that connection fail with EPIPE.
control: COUNT connections to the control socket, each shuts its reading side down first
     (the daemon's write then fails with EPIPE at once) and then asks 'stats json'.
idle: one control connection that sends nothing; writes "connected" to STATUSFILE, then waits
     for the daemon to close it ("closed by the daemon"); when POKEFILE appears first (or after
     60 s) it asks 'stats' late ("asked late: ...").
Standard library only; bounded in count; loopback and a local socket only."""
import os, socket, struct, sys, time

kind, target = sys.argv[1], sys.argv[2]
if kind == "idle":
    status = open(sys.argv[3], "a", buffering=1)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(target)
    status.write("connected\n")
    s.settimeout(0.1)
    deadline = time.time() + 60
    while True:
        try:
            data = s.recv(100)
            status.write("closed by the daemon\n" if not data else "got %r\n" % data)
            break
        except socket.timeout:
            if not os.path.exists(sys.argv[4]) and time.time() < deadline:
                continue
            try:  # still open: ask late
                s.settimeout(5)
                s.sendall(b"stats\n")
                status.write("asked late: %r\n" % s.recv(100))
            except OSError as e:
                status.write("asked late: %s\n" % e)
            break
        except OSError as e:
            status.write("closed by the daemon (%s)\n" % e.strerror)
            break
    sys.exit(0)
count = int(sys.argv[3])


def question(name, qid):
    body = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        if label:
            body += bytes([len(label)]) + label.encode()
    body += b"\0" + struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(body)) + body


sent = 0
for i in range(count):
    if kind == "tcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect((target, 53))
        s.sendall(b"".join(question("c%d.%s" % (i, n), k + 1) for k, n in enumerate(sys.argv[4:])))
        s.shutdown(socket.SHUT_WR)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(target)
        s.shutdown(socket.SHUT_RD)
        s.sendall(b"stats json\n")
    s.close()
    sent += 1
print("sent", sent)
