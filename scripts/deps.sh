#!/usr/bin/env bash
# Installs the Debian 12 packages loophole needs to build ("build") or to run its whole
# test suite ("test"), skipping what is already there. Sourced by run.sh and test.sh.
set -euo pipefail

LH_BUILD_PKGS=(build-essential cmake pkg-config libuv1-dev libc-ares-dev libldns-dev libpcre2-dev
               libcurl4-openssl-dev libmicrohttpd-dev libssl-dev)
# Test peers and clients: dig (dnsutils), kdig (knot-dnsutils), drill (ldnsutils), Unbound as a
# real upstream, dnspython for scripted misbehaving upstreams, clang for the fuzz targets and
# the sanitizer runtime, iproute2/util-linux for namespaces, curl and the Prometheus client's
# parser to scrape and check the metrics endpoint, nftables for the leak test's intercepting
# router (DNAT), python3-jsonschema to check leak-check --json against its schema, Knot DNS to
# serve the signed test tree and dns-root-data for the root trust anchor (the DNSSEC tests),
# openssl to make the DNS over TLS and HTTPS tests' CA (Unbound serves both with it);
# Chromium, its WebDriver and Selenium to drive the dashboard in a real (headless) browser.
# The container tests (test_container.sh, test_systemd_unit.sh): Podman with runc (crun 1.8
# refuses the hybrid cgroup layout of these machines) and the CNI plugins, catatonit for the
# pods' pause image, debootstrap to make the base images from the Debian mirror (no registry is
# reachable), PyYAML to read compose.yaml and pod.yaml.
LH_TEST_PKGS=(dnsutils knot-dnsutils ldnsutils unbound python3-dnspython clang
              libclang-rt-14-dev iproute2 util-linux procps curl python3-prometheus-client
              nftables python3-jsonschema knot dns-root-data openssl ca-certificates
              podman runc containernetworking-plugins catatonit debootstrap python3-yaml
              chromium chromium-driver python3-selenium)

lh_install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "loophole: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        return 1
    fi
    echo "loophole: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# lh_build DIR CMAKE_ARGS... : configure and build into DIR.
lh_build() {
    local dir=$1; shift
    cmake -S "$LH_ROOT" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}
