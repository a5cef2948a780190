# tests/e2e/tls_lib.sh - what the DoT and DoH tests share (sourced after lib.sh): a throw-away
# CA with a server certificate, the Unbound lines of their TLS servers, and a burst client.

# tls_make_ca NAME [IP...]: in $LH_TMP, a throw-away CA (ca.pem), a server key and certificate
# for the DNS name NAME and the IP addresses IP signed by it (server.key, server.csr,
# server.ext, server.pem), a CA nobody trusts (other.pem), and the server's SPKI pin in PIN and
# the untrusted CA's in WRONGPIN. Leaves the working folder at $LH_TMP.
tls_make_ca() {
    local name=$1 san="DNS:$1" ip
    shift
    for ip in "$@"; do san+=",IP:$ip"; done
    cd "$LH_TMP" || exit 1
    tls_ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj "/CN=loophole test CA"
    tls_ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
        -out other.pem -days 2 -subj "/CN=an untrusted CA"
    tls_ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
        -out server.csr -subj "/CN=$name"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
    tls_ossl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 2 -extfile server.ext
    chmod 644 ./*.pem ./*.key
    PIN=$(tls_spki_pin server.pem)
    WRONGPIN=$(tls_spki_pin other.pem)
}
# tls_ossl ARGS...: openssl, its output kept in openssl.out and shown (the test ends) on failure.
tls_ossl() { openssl "$@" >>"$LH_TMP/openssl.out" 2>&1 || { cat "$LH_TMP/openssl.out"; exit 1; }; }
# tls_spki_pin CERT: the base64 SHA-256 of the certificate's public key (pin-sha256).
tls_spki_pin() {
    openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64
}

# tls_big_txt ZONE: 30 local-data lines of TXT records at big.ZONE, over 3 KB in all.
tls_big_txt() {
    local i
    for i in $(seq 30); do
        printf "  local-data: 'big.%s. 60 IN TXT \"%s-%s\"'\n" "$1" "$(printf 'x%.0s' $(seq 100))" "$i"
    done
}

# tls_unbound_server NAME: the server-clause lines both test servers have: in the foreground,
# files in $LH_TMP, its log in $LH_TMP/unbound-NAME.log with every query, loopback clients.
tls_unbound_server() {
    cat <<U
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$LH_TMP"
  pidfile: ""
  use-syslog: no
  logfile: "$LH_TMP/unbound-$1.log"
  log-queries: yes
  verbosity: 1
  module-config: "iterator"
  access-control: 127.0.0.0/8 allow
  incoming-num-tcp: 64
U
}
# tls_unbound_tail: the clauses after the server's: never recursing past loopback (anything
# outside the test zones goes to a closed local port) and unbound-control on $LH_TMP/unbound.ctl.
tls_unbound_tail() {
    cat <<U
stub-zone:
  name: "."
  stub-addr: 127.0.0.1@1
remote-control:
  control-enable: yes
  control-interface: "$LH_TMP/unbound.ctl"
U
}

# tls_burst_py: writes $LH_TMP/burst.py. burst.py ADDR N ZONE WANT: N distinct names under
# ZONE sent at once; prints how many were answered with the address WANT.
tls_burst_py() {
    cat >"$LH_TMP/burst.py" <<'PY'
import socket, sys, time, dns.message
addr, n, zone, want = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
ok = set()
def take(r):
    if r.answer and r.answer[0][0].address == want:
        ok.add(r.id)
# All sent before any answer is waited for; answers already back are drained between sends so
# that the socket's buffer never overflows.
s.setblocking(False)
for i in range(n):
    q = dns.message.make_query("n%d.%s" % (i, zone), "A")
    q.id = i
    s.sendto(q.to_wire(), (addr, 53))
    try:
        while True:
            take(dns.message.from_wire(s.recv(4096)))
    except BlockingIOError:
        pass
s.settimeout(5)
end = time.time() + 20
while len(ok) < n and time.time() < end:
    try:
        take(dns.message.from_wire(s.recv(4096)))
    except socket.timeout:
        break
print(len(ok))
PY
}

# ede ARGS...: the EDE code of the answer to `d ARGS...` (lib.sh's query helper), or nothing.
ede() { d "$@" | grep -o 'EDE: [0-9]*' | head -1; }
