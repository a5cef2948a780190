"""dohupstream.py ADDR PORT CERT KEY MODE LOGFILE - a scripted DNS over HTTPS server (HTTP/1.1 over
TLS, Python's standard library) for the misbehaviours a real server will not show on demand.
Every request is logged as "req METHOD PATH CONTENT-TYPE ACCEPT QUERY-LENGTH QUERY-ID" (the
query as received: from the POST body or GET's dns= parameter). Modes:
  ok      answer A 192.0.2.99 for any name (the answer's ID is the query's, as RFC 8484 wants)
  status  HTTP 500
  ctype   a DNS answer with Content-Type text/plain
  big     a body of 70000 bytes (more than any DNS message)
  short   a body of 5 bytes
  stall   the request read, and no answer ever
  close   a good answer, then the connection closed (Connection: close) after every response
  reset   every other request: headers and half the body, then the connection reset (RST);
          the others answered as in ok
  wrongq  a well-formed answer to another question (www.other.test)
  bighdr  a good body after one response header line of 150 KB
Prints "ready" once listening."""
import base64
import itertools
import socket
import struct
import http.server
import socketserver
import ssl
import sys
import time
import urllib.parse

import dns.message
import dns.rrset

addr, port, cert, key, mode, logfile = sys.argv[1:7]
log = open(logfile, "a", buffering=1)
counter = itertools.count()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def query(self):
        if self.command == "POST":
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))
        qs = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        b = qs.get("dns", [""])[0]
        return base64.urlsafe_b64decode(b + "=" * (-len(b) % 4))

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_one(self):
        wire = self.query()
        log.write("req %s %s %s %s %d %d\n" % (
            self.command, urllib.parse.urlparse(self.path).path,
            self.headers.get("Content-Type", "-"), self.headers.get("Accept", "-"), len(wire),
            int.from_bytes(wire[:2], "big") if len(wire) >= 2 else -1))
        if mode == "stall":
            log.write("stalled\n")
            time.sleep(3600)
        if mode == "status":
            return self.reply(500, "text/plain", b"no")
        if mode == "big":
            return self.reply(200, "application/dns-message", b"\0" * 70000)
        if mode == "short":
            return self.reply(200, "application/dns-message", b"\0" * 5)
        q = dns.message.from_wire(wire)
        if mode == "wrongq":
            q = dns.message.make_query("www.other.test", "A")
            q.id = 0
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.99"))
        body = r.to_wire()
        if mode == "reset" and next(counter) % 2 == 0:
            self.send_response(200)
            self.send_header("Content-Type", "application/dns-message")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            raw = self.connection  # an SSL socket: RST on close, no close_notify
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.wfile.close()
            self.rfile.close()
            raw.close()
            self.close_connection = True
            return
        if mode == "bighdr":
            self.send_response(200)
            self.send_header("X-Filler", "x" * 150000)
            self.send_header("Content-Type", "application/dns-message")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "close":
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/dns-message")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.reply(200, "text/plain" if mode == "ctype" else "application/dns-message", body)

    do_GET = handle_one
    do_POST = handle_one


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server((addr, int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
