#!/usr/bin/env bash
# The real containers, with Podman (rootful, offline; see tests/e2e/containers/lib.sh):
#  1. the image: docker/Dockerfile builds (Docker format, multi-stage) on a Debian base made here
#     with debootstrap; no compiler in it; under LH_IMAGE_MAX_MB; user 10053 and HEALTHCHECK;
#  2. compose.yaml's loophole service, its settings read from the file and applied to
#     `podman run`: uid 10053, no capability at all, no_new_privs, read-only root, a working
#     control socket; `podman healthcheck run` passes while it answers and fails while it
#     cannot; the sidecar contract: an app in its network namespace resolves localhost, a
#     blocked name and a forwarded name (a fake upstream inside that namespace), and nothing
#     outside the namespace reaches loophole;
#  3. docker/kubernetes/pod.yaml with `podman kube play` (upstream replaced by a test one): the
#     native sidecar started, probed and ready before the app, lists from the ConfigMap, the
#     app's first lookup answered.
# Every container, pod and image made here is removed at the end, also on failure.
. "$(dirname "$0")/lib.sh"
. "$LH_SRC/tests/e2e/containers/lib.sh"
lhc_init
LH_IMAGE_MAX_MB=${LH_IMAGE_MAX_MB:-130}
TAG="localhost/loophole-test:$$"
SIDE="lh-side-$$"
BASE=$LHC_BASE
UPSTREAM=127.0.0.2

t0=$SECONDS
if ! lhc_base_image; then not_ok "the base image ($BASE) can be made"; lh_done; fi
echo "# base image ready after $((SECONDS - t0)) s"
t1=$SECONDS
# The build stage first, tagged as cache: it keeps the layer with the -dev packages, so a later
# run only recompiles (the tag moves to each new build; what it leaves is pruned at clean-up).
if ! pmb -q --target build -t "$LHC_CACHE_TAG-build" \
        -f "$LH_SRC/docker/Dockerfile" "$LH_SRC" >"$LH_TMP/build.log" 2>&1 ||
    ! lhc_build "$TAG" "$LH_SRC/docker/Dockerfile" "$LH_SRC" >>"$LH_TMP/build.log" 2>&1; then
    tail -30 "$LH_TMP/build.log"
    not_ok "the image builds from docker/Dockerfile"
    lh_done
fi
pm tag "$TAG" "$LHC_CACHE_TAG-image" # the runtime stage's layers, the same way
ok "the image builds from docker/Dockerfile ($((SECONDS - t1)) s)"

# 1. The image.
size=$(pm image inspect -f '{{.Size}}' "$TAG")
echo "# image size: $((size / 1000000)) MB (bound ${LH_IMAGE_MAX_MB} MB)"
check "the image is smaller than ${LH_IMAGE_MAX_MB} MB" [ "$size" -lt $((LH_IMAGE_MAX_MB * 1000000)) ]
expect_eq "the image runs as uid/gid 10053" "$(pm image inspect -f '{{.Config.User}}' "$TAG")" "10053:10053"
expect_match "the image keeps its HEALTHCHECK (Docker format)" \
    "$(pm image inspect -f '{{.HealthCheck.Test}}' "$TAG" 2>&1)" "loophole health"
tools=$(pm run --rm --network none --entrypoint sh "$TAG" -c \
    'for t in cc gcc c99 clang cpp ld as make cmake pkg-config; do command -v $t; done; ls /usr/include 2>/dev/null | head -3' 2>/dev/null)
expect_eq "no compiler, build tool or header in the final image" "$tools" ""

# 2. compose.yaml's loophole service, as written in the file.
mapfile -t compose < <("$LH_PY" "$LH_SRC/tests/e2e/containers/compose_args.py" "$LH_SRC/docker/compose.yaml" loophole)
check "compose.yaml's loophole settings translate to podman run" [ ${#compose[@]} -gt 0 ]
printf '# compose settings: %s\n' "${compose[*]}"
# Its command, with the upstream replaced by the fake one started below in its namespace.
mapfile -t cmd < <("$LH_PY" -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))["services"]["loophole"]["command"]
c[c.index("--upstream") + 1] = sys.argv[2]
print("\n".join(c))' "$LH_SRC/docker/compose.yaml" "$UPSTREAM")
lhc_run "$SIDE" "${compose[@]}" "$TAG" "${cmd[@]}" >/dev/null 2>"$LH_TMP/run.err"
check "loophole starts with exactly compose.yaml's settings" lhc_wait_answer "$SIDE" 127.0.0.53
status=$(pm exec "$SIDE" cat /proc/1/status)
expect_eq "... as uid 10053" "$(awk '/^Uid:/ {print $2 $3 $4 $5}' <<<"$status")" "10053100531005310053"
expect_eq "... with no capability in any set (Inh Prm Eff Bnd Amb)" \
    "$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb):/ {printf "%s ", $2}' <<<"$status")" \
    "0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000 "
expect_eq "... and no_new_privs" "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")" "1"
check "... on a read-only root filesystem" fails pm exec "$SIDE" touch /etc/loophole/x
check "... with its control socket on the tmpfs (loophole stats)" \
    pm exec "$SIDE" loophole stats --config /etc/loophole/loophole.conf
check "... and lists from compose.yaml's volume (docker/lists)" \
    grep -q "blocklist /etc/loophole/lists/example.list: 1 rules" <(pm logs "$SIDE" 2>&1)

check "podman healthcheck run passes while loophole answers" pm healthcheck run "$SIDE"
pid=$(lhc_pid "$SIDE")
kill -STOP "$pid"
check "podman healthcheck run fails while it cannot answer (stopped)" fails pm healthcheck run "$SIDE"
kill -CONT "$pid"
check "... and passes again once it answers" pm healthcheck run "$SIDE"

# The fake upstream inside loophole's network namespace (nothing leaves it).
nsenter -n -t "$pid" "$LH_PY" "$LH_SRC/tests/e2e/fakeupstream.py" "$UPSTREAM" answer \
    "$LH_TMP/fake.log" >"$LH_TMP/fake.out" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$LH_TMP/fake.out" 2>/dev/null && break; sleep 0.1; done
echo "hosts: dns" >"$LH_TMP/nsswitch.conf"
app() { # the app container: loophole's network namespace (and its resolv.conf), nothing else
    pm run --rm --network "container:$SIDE" -v "$LH_TMP/nsswitch.conf:/etc/nsswitch.conf:ro" \
        "$BASE" "$@" 2>/dev/null
}
expect_eq "app: resolv.conf names loophole only" "$(app grep nameserver /etc/resolv.conf)" "nameserver 127.0.0.53"
expect_eq "app: localhost (both families)" "$(app getent ahosts localhost | awk '{print $1}' | sort -u | tr '\n' ' ')" "127.0.0.1 ::1 "
expect_eq "app: a blocked name (compose's list) is sinkholed" "$(app getent ahostsv4 x.tracker.example | awk 'NR==1{print $1}')" "127.0.0.1"
expect_eq "app: a forwarded name resolves through the upstream" "$(app getent ahostsv4 www.example.pod | awk 'NR==1{print $1}')" "192.0.2.1"
expect_eq "the upstream saw the forwarded name" "$(grep -ci www.example.pod "$LH_TMP/fake.log")" "1"
ip=$(pm inspect -f '{{.NetworkSettings.IPAddress}}' "$SIDE")
expect_eq "nothing outside the namespace reaches loophole (host → 127.0.0.53)" \
    "$(dig @127.0.0.53 x.tracker.example +short +time=1 +tries=1 2>/dev/null | grep -c '^127.0.0.1$')" "0"
expect_eq "... nor the container's own address ($ip) on Podman's network" \
    "$(dig @"$ip" x.tracker.example +short +time=1 +tries=1 2>/dev/null | grep -c '^127.0.0.1$')" "0"
pm stop -t 10 "$SIDE" >/dev/null 2>&1
expect_eq "loophole stops with exit code 0" "$(pm inspect -f '{{.State.ExitCode}}' "$SIDE")" "0"

# 3. The Kubernetes pod. Podman 4.3 knows neither native sidecars nor pod sysctls: the test
# plays the kubelet's and the runtime's part with what the manifest says (kube_for_podman.py).
POD=app-with-loophole
"$LH_PY" "$LH_SRC/tests/e2e/containers/kube_for_podman.py" "$LH_SRC/docker/kubernetes/pod.yaml" \
    "$LH_TMP/pod.yaml" "$UPSTREAM" "$TAG" >"$LH_TMP/pod.plan"
if pm pod exists "$POD"; then
    not_ok "a pod named $POD already exists (another run?)"
    lh_done
fi
LHC_PODS+=("$POD")
# What kube play makes besides the pod: the ConfigMap's volume and its default network.
LHC_VOLUMES+=(loophole-lists)
pm network exists podman-default-kube-network || LHC_NETWORKS+=(podman-default-kube-network)
check "podman kube play creates the pod" quiet pm kube play --start=false "$LH_TMP/pod.yaml"
infra=$(pm pod inspect -f '{{.InfraContainerID}}' "$POD")
pm start "$infra" >/dev/null
ipid=$(lhc_pid "$infra")
while IFS=$'\t' read -r kind name value; do
    [ "$kind" = sysctl ] && nsenter -n -t "$ipid" sysctl -qw "$name=$value"
done <"$LH_TMP/pod.plan"
nsenter -n -t "$ipid" "$LH_PY" "$LH_SRC/tests/e2e/fakeupstream.py" "$UPSTREAM" answer \
    "$LH_TMP/fake-pod.log" >"$LH_TMP/fake-pod.out" 2>&1 &
LH_PIDS+=($!)
for _ in $(seq 100); do grep -q ready "$LH_TMP/fake-pod.out" 2>/dev/null && break; sleep 0.1; done
# Start order and gates, as the kubelet does: a sidecar starts, its startupProbe must pass
# (within periodSeconds 1 x failureThreshold 30), then the next container starts.
while IFS=$'\t' read -r kind name role startup readiness; do
    [ "$kind" = container ] || continue
    pm start "$POD-$name" >/dev/null
    [ "$role" = sidecar ] || continue
    mapfile -t probe < <("$LH_PY" -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])))' "$startup")
    passed=0
    for _ in $(seq 30); do
        if pm exec "$POD-$name" "${probe[@]}" >/dev/null 2>&1; then passed=1; break; fi
        sleep 1
    done
    expect_eq "pod: the $name sidecar's startupProbe passes" "$passed" "1"
    mapfile -t probe < <("$LH_PY" -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])))' "$readiness")
    check "pod: ... and its readinessProbe is green" pm exec "$POD-$name" "${probe[@]}"
done <"$LH_TMP/pod.plan"
logs=$(pm logs "$POD-loophole" 2>&1)
expect_match "pod: lists from the ConfigMap" "$logs" "blocklist /etc/loophole/lists/blocklist.txt: 2 rules"
expect_match "pod: ... allowlist too" "$logs" "blocklist /etc/loophole/lists/allowlist.txt: 1 rules"
check "pod: the control socket on the emptyDir (loophole stats)" \
    pm exec "$POD-loophole" loophole stats --config /etc/loophole/loophole.conf
first=""
for _ in $(seq 100); do
    first=$(pm logs "$POD-app" 2>/dev/null | head -1)
    [ -n "$first" ] && break
    sleep 0.1
done
expect_match "pod: the app's first lookup is answered (tracker.example, blocked by the ConfigMap)" "$first" "^(127\.0\.0\.1|::1) +STREAM tracker\.example"
expect_eq "pod: a name under the ConfigMap's blocklist is sinkholed" \
    "$(pm exec "$POD-app" getent ahostsv4 x.tracker.example 2>/dev/null | awk 'NR==1{print $1}')" "127.0.0.1"
expect_eq "pod: ... and its allowlisted name is forwarded" \
    "$(pm exec "$POD-app" getent ahostsv4 ok.tracker.example 2>/dev/null | awk 'NR==1{print $1}')" "192.0.2.1"
expect_eq "pod: the app resolves a forwarded name through loophole" \
    "$(pm exec "$POD-app" getent ahostsv4 www.example.pod 2>/dev/null | awk 'NR==1{print $1}')" "192.0.2.1"
expect_eq "pod: the upstream saw it" "$(grep -ci www.example.pod "$LH_TMP/fake-pod.log")" "1"
status=$(pm exec "$POD-loophole" cat /proc/1/status)
expect_eq "pod: loophole runs as uid 10053 with no capability" \
    "$(awk '/^Uid:/ {print $2} /^Cap(Prm|Eff|Bnd|Amb):/ {print $2}' <<<"$status" | tr '\n' ' ')" \
    "10053 0000000000000000 0000000000000000 0000000000000000 0000000000000000 "

echo "# container test: $((SECONDS - t0)) s in all"
lhc_cleanup
expect_eq "clean-up: no container or pod of this test is left" \
    "$(pm ps -a --format '{{.Names}}' | grep -c -e "$SIDE" -e "$POD")" "0"
expect_eq "clean-up: the test image is gone" "$(pm images -q "$TAG" | wc -l)" "0"
expect_eq "clean-up: no volume or network of this test is left" \
    "$(pm volume ls -q | grep -c loophole-lists; pm network ls --format '{{.Name}}' | grep -c podman-default-kube-network)" "0
0"
lh_done
