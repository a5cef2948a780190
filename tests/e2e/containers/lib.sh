# containers/lib.sh - Podman for the container tests, sourced after ../lib.sh.
#
# Everything lives in a private Podman store under the build folder
# ($LH_BUILD_DIR/container-cache): the base images made here with debootstrap (no registry is
# reachable), the build's layer cache, and nothing of the machine's own /var/lib/containers. A
# second run reuses the cache; `rm -rf build` (after the tests) forgets it. Every container, pod
# and image a test makes is removed by lhc_cleanup, also on failure.
#
# What is made only of Debian's packages and no file of this tree - the debootstrap tarball of
# the base image, the systemd test image - is also kept machine-wide, in $LHC_SHARED
# (LH_CONTAINER_SHARED_CACHE, default /var/cache/loophole-tests), keyed by what goes into it:
# a fresh clone (CI's) then imports it in seconds instead of running debootstrap and apt for
# minutes, and the image of this tree is still built from its Dockerfile every time. Delete
# the folder to start cold; files appear there whole (written aside, then renamed).

LHC_CONF="$LH_SRC/tests/e2e/containers/containers.conf"
: "${LH_BUILD_DIR:=$(dirname "$LOOPHOLE")}"
LHC_CACHE="$LH_BUILD_DIR/container-cache"
LHC_SHARED=${LH_CONTAINER_SHARED_CACHE:-/var/cache/loophole-tests}
# The Dockerfile's FROM: made here from the machine's Debian mirror, never pulled.
LHC_BASE=docker.io/library/debian:bookworm-slim
# Build-cache tags kept in the store between runs (see test_container.sh).
LHC_CACHE_TAG=localhost/loophole-cache:last
LHC_CONTAINERS=()
LHC_PODS=()
LHC_IMAGES=()
LHC_VOLUMES=()
LHC_NETWORKS=()

# lhc_skip REASON: the engine cannot work on this machine; say why, report skipped.
lhc_skip() {
    echo "SKIP: $*"
    exit 77
}

# pmb ARGS...: podman build in Docker format (OCI drops HEALTHCHECK), never pulling, with the
# machine-wide download cache of apt mounted where apt keeps the packages it fetched: a RUN
# apt-get install then downloads only what no earlier build did. A mount is not part of the
# image (what it holds is not in any layer), and apt locks the folder, so that builds running
# at once take turns for it.
pmb() {
    pm build --format docker --pull=never -v "$LHC_SHARED/apt-archives:/var/cache/apt/archives" "$@"
}

# pm ARGS...: podman with the test configuration and the private store.
pm() {
    CONTAINERS_CONF="$LHC_CONF" podman --root "$LHC_CACHE/storage" --runroot "$LHC_RUN/runroot" \
        --tmpdir "$LHC_RUN/tmp" "$@"
}

lhc_init() {
    local t
    for t in podman runc debootstrap nsenter; do
        command -v "$t" >/dev/null || lhc_skip "no $t (scripts/deps.sh installs it as root)"
    done
    [ "$(id -u)" -eq 0 ] || lhc_skip "the container tests run as root (rootful Podman)"
    mkdir -p "$LHC_CACHE" || lhc_skip "cannot create $LHC_CACHE"
    mkdir -p "$LHC_SHARED" 2>/dev/null || LHC_SHARED=$LHC_CACHE # then per build folder only
    mkdir -p "$LHC_SHARED/apt-archives/partial"
    # Run-time state on tmpfs, one folder per cache (so two build folders never share it).
    LHC_RUN="/run/lh-podman-$(printf '%s' "$LHC_CACHE" | cksum | cut -d' ' -f1)"
    mkdir -p "$LHC_RUN"
    local err
    err=$(pm info 2>&1 >/dev/null) || lhc_skip "podman info fails: $err"
    trap 'lhc_cleanup; lh_cleanup' EXIT
    trap 'exit 143' TERM INT # so that the EXIT trap cleans up on a timeout or ^C too
}

# lhc_cleanup: remove what this test made (pods, containers, volumes, networks, images).
lhc_cleanup() {
    local i
    for i in "${LHC_PODS[@]}"; do pm pod rm -f -t 0 "$i" >/dev/null 2>&1; done
    for i in "${LHC_CONTAINERS[@]}"; do pm rm -f -t 0 "$i" >/dev/null 2>&1; done
    for i in "${LHC_VOLUMES[@]}"; do pm volume rm -f "$i" >/dev/null 2>&1; done
    for i in "${LHC_NETWORKS[@]}"; do pm network rm -f "$i" >/dev/null 2>&1; done
    for i in "${LHC_IMAGES[@]}"; do pm rmi -f "$i" >/dev/null 2>&1; done
    # Dangling layers of this run's builds (the cached base images stay tagged).
    pm image prune -f >/dev/null 2>&1
    LHC_PODS=() LHC_CONTAINERS=() LHC_IMAGES=() LHC_VOLUMES=() LHC_NETWORKS=()
}

# quiet CMD...: CMD without its output (Podman's complaints about the missing systemd).
quiet() { "$@" >/dev/null 2>&1; }
# fails CMD...: CMD fails (quietly).
fails() { ! "$@" >/dev/null 2>&1; }

# lhc_mirror: the machine's Debian mirror (the one apt uses for bookworm main), or
# $LH_DEBIAN_MIRROR.
lhc_mirror() {
    if [ -n "${LH_DEBIAN_MIRROR:-}" ]; then echo "$LH_DEBIAN_MIRROR"; return; fi
    apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' \
        2>/dev/null | awk '$2 == "bookworm" && $3 == "main" { print $1; exit }'
}

# lhc_base_image: $LHC_BASE in the store, made once per cache: debootstrap --variant=minbase
# bookworm from the machine's mirror, stripped like Debian's -slim images, kept as a tarball in
# $LHC_SHARED and imported with PATH set (an imported root has no ENV). Locks serialise test
# scripts that ask for it at once (the store's, then the machine-wide folder's).
lhc_base_image() {
    (
        flock 9
        pm image exists "$LHC_BASE" && exit 0
        local tar="$LHC_SHARED/bookworm-minbase-2.tar" # -N: bump when what goes in changes
        (
            flock 8
            [ -s "$tar" ] && exit 0
            # One made by a build folder before the cache was machine-wide.
            if [ -s "$LHC_CACHE/bookworm-minbase-2.tar" ]; then
                cp "$LHC_CACHE/bookworm-minbase-2.tar" "$tar.tmp.$$" && mv "$tar.tmp.$$" "$tar"
                exit
            fi
            local mirror root="$LHC_CACHE/rootfs.tmp"
            mirror=$(lhc_mirror)
            [ -n "$mirror" ] || { echo "no Debian bookworm mirror in the apt sources" >&2; exit 1; }
            rm -rf "$root"
            echo "# debootstrap --variant=minbase bookworm $mirror (cached in $LHC_SHARED)"
            debootstrap --variant=minbase bookworm "$root" "$mirror" >"$LHC_CACHE/debootstrap.log" 2>&1 ||
                { tail -20 "$LHC_CACHE/debootstrap.log" >&2; exit 1; }
            # What Debian's -slim images leave out, and nothing apt fetched.
            printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
                'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
                'path-exclude /usr/share/locale/*' >"$root/etc/dpkg/dpkg.cfg.d/slim"
            # No fsync per unpacked file in image builds: a build that dies is thrown away
            # anyway, and apt-get install in the Dockerfile takes half the time.
            echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/unsafe-io"
            find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
            rm -rf "$root"/usr/share/{man,info,locale}/* "$root"/var/lib/apt/lists/* \
                "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
            tar -C "$root" --numeric-owner -cf "$tar.tmp.$$" . && mv "$tar.tmp.$$" "$tar" && rm -rf "$root"
        ) 8>"$LHC_SHARED/lock" || exit 1
        pm import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["bash"]' "$tar" "$LHC_BASE" >/dev/null
    ) 9>"$LHC_CACHE/lock"
}

# lhc_fixture_image NAME CONTAINERFILE CONTEXT: prints the tag of an image built from
# CONTAINERFILE on the base image - a fixture made only of Debian's packages: no COPY, nothing
# of this tree. Its tag carries a hash of the Containerfile and the base tarball's name, so a
# change to either builds a new one; built once, it is saved in $LHC_SHARED and a fresh store
# loads it from there.
lhc_fixture_image() {
    local name=$1 file=$2 ctx=$3 key tag saved
    key=$( (cat "$file"; echo bookworm-minbase-2) | sha256sum | cut -c1-16)
    tag="localhost/loophole-fixture:$name-$key"
    saved="$LHC_SHARED/$name-$key.tar"
    (
        flock 9
        pm image exists "$tag" && exit 0
        if [ -s "$saved" ] && pm load -q -i "$saved" >/dev/null 2>&1 && pm image exists "$tag"; then
            exit 0
        fi
        pmb -q -t "$tag" -f "$file" "$ctx" >&2 || exit 1
        (
            flock 8
            [ -s "$saved" ] && exit 0
            pm save -q --format docker-archive -o "$saved.tmp.$$" "$tag" >&2 &&
                mv "$saved.tmp.$$" "$saved"
        ) 8>"$LHC_SHARED/lock"
        exit 0
    ) 9>"$LHC_CACHE/lock" || return 1
    echo "$tag"
}

# lhc_build TAG FILE CONTEXT [ARGS...]: podman build in Docker format (OCI drops HEALTHCHECK),
# never pulling; the image is removed at clean-up.
lhc_build() {
    local tag=$1 file=$2 ctx=$3; shift 3
    LHC_IMAGES+=("$tag")
    pmb -q -f "$file" -t "$tag" "$@" "$ctx"
}

# lhc_run NAME ARGS...: podman run -d --name NAME ARGS...; removed at clean-up.
lhc_run() {
    local name=$1; shift
    LHC_CONTAINERS+=("$name")
    pm run -d --name "$name" "$@"
}

# lhc_pid NAME: the host PID of a container's first process.
lhc_pid() { pm inspect -f '{{.State.Pid}}' "$1"; }

# lhc_wait_answer NAME ADDR: up to 10 s until ADDR answers localhost inside NAME's network
# namespace (asked from the host, entering the namespace).
lhc_wait_answer() {
    local pid
    for _ in $(seq 100); do
        pid=$(lhc_pid "$1" 2>/dev/null)
        if [ -n "$pid" ] && [ "$pid" != 0 ] &&
            nsenter -n -t "$pid" dig @"$2" localhost +short +time=1 +tries=1 2>/dev/null | grep -q '^127.0.0.1$'; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing answers on $2 in $1; its log:" >&2
    pm logs "$1" >&2
    return 1
}
