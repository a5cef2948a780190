#!/usr/bin/python3
"""peer_gone.py - clients that go away before their answers are written (for the tests).

Usage: peer_gone.py tcp SERVER COUNT NAME...   (each NAME asked over one connection)
       peer_gone.py control SOCKET COUNT
tcp: COUNT connections, each sends one A question per NAME and a FIN, and closes at once,
     reading nothing: the daemon's answers reach a closed socket, whose RST makes the next
     write on that connection fail with EPIPE.
control: COUNT connections to the control socket, each shuts its reading side down first
     (the daemon's write then fails with EPIPE at once) and then asks 'stats json'.
Standard library only; bounded in count; loopback and a local socket only."""
import socket, struct, sys

kind, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])


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
