# bench/lib.sh - shared by the bench scripts (sourced).

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
