#!/usr/bin/env python3
"""Rewrites docker/kubernetes/pod.yaml for `podman kube play` (Podman 4.3) and prints what the
test needs to play the kubelet's part.

Podman 4.3 runs init containers to completion and refuses probes on them, so it cannot run a
native sidecar (an init container with restartPolicy: Always). The rewrite turns each such init
container into the first regular container (without restartPolicy and startupProbe); the test
then does what the kubelet does for a native sidecar: start it, run its startupProbe command
until it passes, and only then start the app containers.

Podman 4.3 also ignores the pod's securityContext.sysctls: they are printed too, for the test
to set on the pod's network namespace as the container runtime would.

usage: kube_for_podman.py IN OUT UPSTREAM IMAGE
  OUT gets the rewritten manifest, with every "--upstream X" argument replaced by UPSTREAM and
  the image localhost/loophole:latest by IMAGE; stdout gets tab-separated lines:
  sysctl     NAME  VALUE
  container  NAME  sidecar|app  startup-probe-command-as-json  readiness-probe-command-as-json
  (containers in start order).
"""
import json
import sys

import yaml


def probe(c, kind):
    p = c.get(kind) or {}
    return json.dumps((p.get("exec") or {}).get("command") or [])


def main():
    src, dst, upstream, image = sys.argv[1:5]
    with open(src) as f:
        docs = list(yaml.safe_load_all(f))
    lines = []
    for d in docs:
        if not d or d.get("kind") != "Pod":
            continue
        spec = d["spec"]
        for sc in (spec.get("securityContext") or {}).get("sysctls") or []:
            lines.append(("sysctl", sc["name"], str(sc["value"])))
        sidecars = []
        for c in spec.get("initContainers", []):
            if c.get("restartPolicy") != "Always":
                raise SystemExit(f"init container {c['name']}: not a native sidecar; not handled")
            sidecars.append(c)
        spec.pop("initContainers", None)
        for c in sidecars:
            lines.append(("container", c["name"], "sidecar", probe(c, "startupProbe"), probe(c, "readinessProbe")))
            del c["restartPolicy"]
            c.pop("startupProbe", None)
        for c in spec["containers"]:
            lines.append(("container", c["name"], "app", probe(c, "startupProbe"), probe(c, "readinessProbe")))
        spec["containers"] = sidecars + spec["containers"]
        for c in spec["containers"]:
            if c.get("image") == "localhost/loophole:latest":
                c["image"] = image
            args = c.get("args") or []
            for i, a in enumerate(args[:-1]):
                if a == "--upstream":
                    args[i + 1] = upstream
    with open(dst, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)
    for line in lines:
        print("\t".join(line))


if __name__ == "__main__":
    main()
