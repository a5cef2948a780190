#!/usr/bin/env bash
# The real containers, when a container engine can run them: build docker/Dockerfile, start
# loophole, and an app container in its network namespace that resolves through 127.0.0.53.
# Without a working engine (CI machines have none) this reports itself skipped; the same
# contract is tested with plain namespaces by test_netns.sh.
. "$(dirname "$0")/lib.sh"
engine=""
for e in docker podman; do
    if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
done
if [ -z "$engine" ]; then
    echo "SKIP: no working container engine (docker/podman info failed); see test_netns.sh"
    exit 77
fi
tag="loophole-test:$$"
name="lh-test-$$"
trap 'lh_cleanup; $engine rm -f "$name" >/dev/null 2>&1; $engine rmi -f "$tag" >/dev/null 2>&1' EXIT
check "the image builds" "$engine" build -q -f "$LH_SRC/docker/Dockerfile" -t "$tag" "$LH_SRC"
echo '||blocked.container.test^' >"$LH_TMP/list.txt"
check "loophole starts" "$engine" run -d --name "$name" -v "$LH_TMP:/etc/loophole/lists:ro" \
    "$tag" serve --config /etc/loophole/loophole.conf --upstream 127.0.0.1:1
sleep 2
check "the health check passes" "$engine" exec "$name" loophole health --config /etc/loophole/loophole.conf
echo "nameserver 127.0.0.53" >"$LH_TMP/resolv.conf"
out=$("$engine" run --rm --network "container:$name" -v "$LH_TMP/resolv.conf:/etc/resolv.conf:ro" \
      --entrypoint getent "$tag" ahostsv4 x.blocked.container.test)
expect_match "the app resolves a blocked name through the sidecar" "$out" "^127.0.0.1"
lh_done
