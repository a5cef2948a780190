#!/usr/bin/env python3
"""Prints the `podman run` options that a Compose service's settings amount to, one per line, so
the test runs the image with exactly what docker/compose.yaml says (Compose itself is not
available here: Debian's podman-compose 1.0.3 lacks `network_mode: service:`).

usage: compose_args.py COMPOSE_FILE SERVICE
Every key of the service is either translated or explicitly not a run-time setting of this
container; an unknown key is an error, so a setting added to compose.yaml cannot be silently
left out of the test.
"""
import os
import sys

import yaml

NOT_RUN_OPTIONS = {"build", "image", "command", "depends_on", "healthcheck"}


def as_list(v):
    return v if isinstance(v, list) else [v]


def main():
    path, service = sys.argv[1:3]
    with open(path) as f:
        svc = yaml.safe_load(f)["services"][service]
    base = os.path.dirname(os.path.abspath(path))
    out = []
    user = str(svc.get("user", ""))
    for key, val in svc.items():
        if key in NOT_RUN_OPTIONS:
            continue
        if key == "user":
            out.append(f"--user={val}")
        elif key in ("cap_drop", "cap_add"):
            out += [f"--{key.replace('_', '-')}={c}" for c in as_list(val)]
        elif key == "read_only":
            # Docker mounts nothing writable by itself; Podman would add tmpfs on /run, /tmp.
            out += [f"--read-only={str(bool(val)).lower()}", "--read-only-tmpfs=false"]
        elif key == "security_opt":
            out += [f"--security-opt={o}" for o in as_list(val)]
        elif key == "sysctls":
            items = val.items() if isinstance(val, dict) else (s.split("=", 1) for s in val)
            out += [f"--sysctl={k}={v}" for k, v in items]
        elif key == "dns":
            out += [f"--dns={d}" for d in as_list(val)]
        elif key == "tmpfs":
            for t in as_list(val):
                target, _, opts = t.partition(":")
                kept = []
                owner = {}
                for o in filter(None, opts.split(",")):
                    k, _, v = o.partition("=")
                    if k in ("uid", "gid"):
                        owner[k] = v
                    else:
                        kept.append(o)
                if owner:
                    # Podman 4.3 rejects uid=/gid= on tmpfs; its "U" gives the tmpfs to the
                    # container's user, which must then be the same owner.
                    uid, _, gid = user.partition(":")
                    if owner != {"uid": uid, "gid": gid or uid}:
                        sys.exit(f"{service}: tmpfs {target} owner {owner} is not user {user}")
                    kept.append("U")
                out.append(f"--tmpfs={target}:{','.join(kept)}" if kept else f"--tmpfs={target}")
        elif key == "volumes":
            for v in as_list(val):
                src, _, rest = v.partition(":")
                if src.startswith("."):
                    src = os.path.normpath(os.path.join(base, src))
                out.append(f"--volume={src}:{rest}")
        else:
            sys.exit(f"{path}: service {service}: '{key}' is not translated to podman run")
    print("\n".join(out))


if __name__ == "__main__":
    main()
