#!/usr/bin/env python3
"""The module graph of src/: prints it by layer and fails on an include cycle
between modules or on a layer that includes a later one.

A module is a .c file in src/LAYER/ together with the header of the same name in
include/loophole/ (or beside it in src/LAYER/, e.g. dnssec_private.h). The layers, lowest first, are the
order below; a module may include headers of its own layer and of earlier layers
only. main.c is the top and may use everything.

Usage: tests/layers.py [SOURCE_DIR]   (exit 0 clean, 1 on a violation)
"""
import os
import re
import sys

LAYERS = ["base", "dns", "conf", "policy", "dnssec", "resolve", "daemon", "tools"]
# Headers that front several .c files of one layer, with that layer.
HEADER_ONLY = {"leak": "tools", "canary": "policy", "reply": "base"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"(?:loophole/)?([A-Za-z0-9_]+)\.h"', re.M)


def modules(root):
    """module name -> (layer, [files])"""
    mods = {}
    for layer in LAYERS:
        d = os.path.join(root, "src", layer)
        for f in sorted(os.listdir(d)):
            name, ext = os.path.splitext(f)
            name = name.removesuffix("_private")  # a module's private header is part of it
            if ext in (".c", ".h"):
                mods.setdefault(name, (layer, []))[1].append(os.path.join(d, f))
    hdrs = os.path.join(root, "include", "loophole")
    for f in sorted(os.listdir(hdrs)):
        name, ext = os.path.splitext(f)
        if ext != ".h":
            continue
        if name not in mods and name in HEADER_ONLY:
            mods[name] = (HEADER_ONLY[name], [])
        if name not in mods:
            sys.exit(f"layers: include/loophole/{f} has no module in src/<layer>/ "
                     f"(add {name}.c to a layer or list the header in HEADER_ONLY)")
        mods[name][1].append(os.path.join(hdrs, f))
    return mods


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mods = modules(root)
    edges = {m: set() for m in mods}
    for m, (_, files) in mods.items():
        for path in files:
            with open(path, encoding="utf-8") as fh:
                for dep in INCLUDE.findall(fh.read()):
                    dep = dep.removesuffix("_private")
                    if dep in mods and dep != m:
                        edges[m].add(dep)
    bad = []
    rank = {l: i for i, l in enumerate(LAYERS)}
    for layer in LAYERS:
        print(f"[{layer}]")
        for m in sorted(x for x in mods if mods[x][0] == layer):
            deps = sorted(edges[m], key=lambda d: (rank[mods[d][0]], d))
            print(f"  {m:18} -> {' '.join(deps) if deps else '-'}")
            for d in deps:
                if rank[mods[d][0]] > rank[layer]:
                    bad.append(f"upward: {layer}/{m} includes {mods[d][0]}/{d}")
    # Cycles: a depth-first search that reports each back edge's loop once.
    state, stack, cycles = {}, [], set()

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                loop = stack[stack.index(d):]
                i = loop.index(min(loop))
                cycles.add(" -> ".join(loop[i:] + loop[:i] + [min(loop)]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m)
    bad += [f"cycle: {c}" for c in sorted(cycles)]
    for b in bad:
        print("layers: " + b, file=sys.stderr)
    print(f"layers: {len(mods)} modules, {sum(map(len, edges.values()))} edges, "
          f"{len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
