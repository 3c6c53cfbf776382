#!/usr/bin/env python3
"""Import cycles between the source files of each crate, by reading the code (no build).

    python3 scripts/import_cycles.py            # the repository this script is in

A file imports another when its code (comments left out) names a path into it: `crate::a::b`,
`super::x`, or `use child::...` in a module with children. `mod` declarations and the crate
root's re-exports (its public facade) do not count. Prints each crate's files, imports and
cycles; exits 1 when there is a cycle.
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
found = False
for crate in sorted(os.listdir(f"{root}/crates")):
    src = f"{root}/crates/{crate}/src"
    files = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.relpath(os.path.join(d, f), src)
                mod = p[:-3].replace("/mod", "").replace("/", "::")
                if mod in ("lib", "main"): mod = ""
                files[mod] = open(os.path.join(d, f)).read()
    def resolve(frm, path):
        # longest module prefix of path that is a file
        parts = path.split("::")
        for n in range(len(parts), 0, -1):
            cand = "::".join(parts[:n])
            if cand in files: return cand
        return None
    edges = {m: set() for m in files}
    for m, text in files.items():
        text = re.sub(r"//.*", "", text)
        for mm in re.finditer(r"crate::([a-z_0-9:]+)", text):
            t = resolve(m, mm.group(1))
            if t is not None and t != m: edges[m].add(t)
        for mm in re.finditer(r"super::([a-z_0-9:{}, A-Z]+)", text):
            parent = m.rsplit("::", 1)[0] if "::" in m else ""
            # super::name -> parent module file, or parent::name when that is a file
            name = re.match(r"[a-z_0-9]+", mm.group(1))
            t = None
            if name and (f"{parent}::{name.group(0)}" if parent else name.group(0)) in files:
                t = f"{parent}::{name.group(0)}" if parent else name.group(0)
            elif parent in files:
                t = parent
            if t is not None and t != m: edges[m].add(t)
        # `use child::...` in a module file (the crate root's re-exports are its facade: skipped)
        if m:
            for mm in re.finditer(r"\buse (?:self::)?([a-z_0-9]+)::", text):
                t = f"{m}::{mm.group(1)}"
                if t in files: edges[m].add(t)
    # cycles via DFS
    cycles = set()
    def dfs(start, node, path):
        for n in edges[node]:
            if n == start: cycles.add(tuple(sorted(path)))
            elif n not in path and len(path) < 8: dfs(start, n, path + [n])
    for m in files: dfs(m, m, [m])
    found |= bool(cycles)
    print(f"{crate}: {len(files)} files, {sum(len(e) for e in edges.values())} imports, cycles: {sorted(cycles) or 'none'}")
sys.exit(1 if found else 0)
