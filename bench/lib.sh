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
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$W"
}

# bench_auth_conf ADDR TLD ZONE ZONEFILE DIR: an Unbound config that serves ZONE from ZONEFILE
# authoritatively on ADDR:53 (the shared upstream of the benchmarks), never recursing past
# loopback. Printed on stdout.
bench_auth_conf() {
    cat <<U
server:
  interface: $1
  do-daemonize: no
  chroot: ""
  username: ""
  pidfile: ""
  use-syslog: no
  directory: "$5"
  access-control: 127.0.0.0/8 allow
  local-zone: "$2." nodefault
stub-zone:              # never recurse past loopback
  name: "."
  stub-addr: 127.0.0.1@1
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
  do-daemonize: no
  chroot: ""
  username: ""
  pidfile: ""
  use-syslog: no
  directory: "$2"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  local-zone: "bench." nodefault
  module-config: "iterator"
${5:+include: \"$5\"}
stub-zone:
  name: "."
  stub-addr: 127.0.0.1@1
forward-zone:
  name: "$3."
  forward-addr: $4
U
}
