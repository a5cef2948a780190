#!/usr/bin/python3
"""tcp_hog.py - a client that tries to hold every TCP slot of a DNS server (for the tests).

Usage: tcp_hog.py SERVER SOURCE COUNT STATUSFILE DONEFILE
Opens COUNT connections from the address SOURCE (or from each of a comma-separated list of
addresses in turn; IPv4 or IPv6, as SERVER is) to SERVER:53 and sends a 2-byte empty frame
(length 0: no query) on each, again every 0.2 s, as long as DONEFILE does not exist (at most
180 s). Writes "opened N" and then, once per round, "round K open N" to STATUSFILE (a
connection counts as open until the server closes it). Standard library only; bounded in
connections, rounds and time; loopback only."""
import errno, os, resource, select, socket, sys, time

server, source, count, status_path, done_path = sys.argv[1:6]
count = int(count)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 256), hard))
status = open(status_path, "a", buffering=1)

family = socket.AF_INET6 if ":" in server else socket.AF_INET
sources = source.split(",")
conns = []
for i in range(count):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((sources[i % len(sources)], 0))
    s.setblocking(False)
    r = s.connect_ex((server, 53))
    if r not in (0, errno.EINPROGRESS):
        s.close()
        continue
    conns.append(s)
# Wait (bounded) for the handshakes: a connection still in the listen backlog is established
# from here already, so this is quick.
deadline = time.time() + 10
pending = {s.fileno(): s for s in conns}
poller = select.poll()  # not select(): descriptors above 1024
for fd in pending:
    poller.register(fd, select.POLLOUT)
while pending and time.time() < deadline:
    for fd, _ in poller.poll(500):
        poller.unregister(fd)
        pending.pop(fd, None)
status.write("opened %d\n" % (len(conns) - len(pending)))

EMPTY = b"\x00\x00"
open_set = set(range(len(conns)))
t0 = time.time()
rnd = 0
while not os.path.exists(done_path) and time.time() - t0 < 180:
    rnd += 1
    for i in list(open_set):
        s = conns[i]
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":  # EOF: the server closed it
                open_set.discard(i)
                continue
        except BlockingIOError:
            pass
        except OSError:
            open_set.discard(i)
            continue
        try:
            s.send(EMPTY)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            open_set.discard(i)
    status.write("round %d open %d\n" % (rnd, len(open_set)))
    time.sleep(0.2)
status.write("open at the end %d; first connection %s\n"
             % (len(open_set), "open" if 0 in open_set else "closed"))
for s in conns:
    s.close()
