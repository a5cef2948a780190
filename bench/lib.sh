# bench/lib.sh - shared by the bench scripts (sourced).

# bench_setup NAME: the work folder $W (/tmp/lh-NAME-*) and the list PIDS of what to stop,
# both cleaned up on exit; then loophole built in Release into build-bench.
bench_setup() {
    W=$(mktemp -d "/tmp/lh-$1-XXXXXX")
    chmod 755 "$W"
    PIDS=()
    trap bench_cleanup EXIT
    echo "== build (Release)" >&2
    lh_build "$LH_ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
}
bench_cleanup() {
    # `|| true`: under set -e a process already gone (a tcpdump stopped by its round) would end
    # the trap here, with status 1 and $W left behind.
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}

# bench_answers ADDR NAME [DIG-ARGS...]: waits (at most 600 tries) until ADDR answers NAME with
# 192.0.2.1, the address of the benchmarks' wildcard zones.
bench_answers() {
    local a=$1 n=$2
    shift 2
    for _ in $(seq 600); do
        dig @"$a" "$n" +time=1 +tries=1 +short "$@" 2>/dev/null | grep -q '^192.0.2.1$' && return 0
        sleep 0.1
    done
    echo "no answer from $a for $n" >&2
    return 1
}

# bench_names PREFIX COUNT: writes a query file of COUNT names in miss.bench never asked before
# to $Q (not to be called in a subshell: the sequence number SEQ must advance).
SEQ=0
bench_names() {
    SEQ=$((SEQ + 1))
    Q="$W/q$SEQ"
    /usr/bin/python3 -c "
import random, sys
r = random.Random($SEQ)
sys.stdout.write(''.join('$1$SEQ-%d-%x.miss.bench A\\n' % (i, r.getrandbits(32)) for i in range($2)))
" >"$Q"
}

# bench_cpu_ticks PID: the process's user + system CPU time so far, in clock ticks (CLK_TCK).
bench_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# bench_tls_ca NAME: in the current folder, a throw-away CA (ca.pem, ca.key) and a server key
# and certificate for the DNS name NAME signed by it (server.key, server.pem), valid two days.
bench_tls_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
        -days 2 -subj "/CN=bench CA" >/dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
        -out server.csr -subj "/CN=$1" >/dev/null 2>&1
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$1" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
        -days 2 -extfile server.ext >/dev/null 2>&1
}

# bench_unbound_daemon DIR: the server-clause lines every Unbound of the benchmarks has: in the
# foreground, no chroot, user or pidfile, logging to stderr, files in DIR, loopback clients.
bench_unbound_daemon() {
    cat <<U
  do-daemonize: no
  chroot: ""
  username: ""
  pidfile: ""
  use-syslog: no
  directory: "$1"
  access-control: 127.0.0.0/8 allow
U
}

# bench_unbound_stub: the stub-zone by which an Unbound never recurses past loopback.
bench_unbound_stub() {
    cat <<U
stub-zone:
  name: "."
  stub-addr: 127.0.0.1@1
U
}

# bench_auth_conf ADDR TLD ZONE ZONEFILE DIR: an Unbound config that serves ZONE from ZONEFILE
# authoritatively on ADDR:53 (the shared upstream of the benchmarks), never recursing past
# loopback. Printed on stdout.
bench_auth_conf() {
    cat <<U
server:
  interface: $1
$(bench_unbound_daemon "$5")
  local-zone: "$2." nodefault
$(bench_unbound_stub)
auth-zone:
  name: "$3."
  zonefile: "$4"
U
}

# bench_unbound_conf ADDR DIR ZONE UPSTREAM [INCLUDE]: the Unbound under test: one thread on
# ADDR:53, forwarding ZONE to UPSTREAM, never recursing past loopback, with the local-zones of
# the file INCLUDE when one is named. Printed on stdout.
bench_unbound_conf() {
    cat <<U
server:
  interface: $1
  num-threads: 1
$(bench_unbound_daemon "$2")
  do-not-query-localhost: no
  local-zone: "bench." nodefault
  module-config: "iterator"
${5:+include: \"$5\"}
$(bench_unbound_stub)
forward-zone:
  name: "$3."
  forward-addr: $4
U
}
