"""dnsclient.py - raw DNS helpers for the end-to-end tests: build queries byte by byte, send
them over UDP or TCP, read answers. Standard library only, so any python3 runs it."""
import socket
import struct


def name_wire(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(name, qtype=1, qid=0x4242, flags=0x0100, qdcount=1, edns=None, qclass=1):
    """A query; edns=(udp_size, version, do) adds an OPT record."""
    arcount = 1 if edns else 0
    msg = struct.pack("!HHHHHH", qid, flags, qdcount, 0, 0, arcount)
    msg += name_wire(name) + struct.pack("!HH", qtype, qclass)
    if edns:
        size, version, do = edns
        msg += b"\0" + struct.pack("!HHBBHH", 41, size, 0, version, 0x8000 if do else 0, 0)
    return msg


def header(resp):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", resp[:12])
    return {"id": qid, "flags": flags, "rcode": flags & 0xF, "tc": bool(flags & 0x200),
            "qd": qd, "an": an, "ns": ns, "ar": ar}


def udp(addr, payload, timeout=2.0, port=53):
    """Sends one datagram; returns the answer or None on timeout."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, (addr, port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def tcp_connect(addr, timeout=3.0, port=53):
    s = socket.create_connection((addr, port), timeout=timeout)
    return s


def frame(msg):
    return struct.pack("!H", len(msg)) + msg


def read_frame(sock):
    """Reads one length-prefixed message; None when the server closed the connection."""
    hdr = read_exact(sock, 2)
    if hdr is None:
        return None
    (n,) = struct.unpack("!H", hdr)
    return read_exact(sock, n)


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
