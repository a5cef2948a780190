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
Prints "ready" once listening."""
import base64
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
        r = dns.message.make_response(q)
        r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "192.0.2.99"))
        body = r.to_wire()
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
