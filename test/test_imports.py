"""Imports inside the csmvanet package run downward only, and never in a circle.

The package's modules stand on floors, lowest first (:data:`FLOORS`). A module may import modules
of its own floor or of a lower one; an import from a lower floor to a higher one is forbidden, and
so is any import of the package itself (``import csmvanet`` / ``from csmvanet import __version__``
or ``Enhancer``: the lazy ``csmvanet/__init__`` is for users, the modules import what they need
from where it lives). Every ``import`` statement counts, also those inside functions (lazy imports
run all the same) and under ``TYPE_CHECKING``. The graph is read from the source with ``ast``;
nothing is imported. ``python test/test_imports.py`` prints the floors and the forbidden directions.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "csmvanet"

#: Floors, lowest first; a module (or a package, for all its modules) on each.
FLOORS = [
    ("base", ["csmvanet.base"]),
    ("audio", ["csmvanet.audio"]),
    ("data", ["csmvanet.data"]),
    ("metrics", ["csmvanet.metrics"]),
    ("nets", ["csmvanet.nets"]),
    ("experiment", ["csmvanet.experiment"]),
    ("engines", ["csmvanet.train", "csmvanet.infer"]),   # training and inference, side by side
    ("reports", ["csmvanet.reports"]),
    ("bin", ["csmvanet.bin"]),
    ("package", ["csmvanet"]),       # csmvanet/__init__: the public face (lazy Enhancer); imported by no module
]


def module_names() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def floor_of(module: str) -> int | None:
    best, best_len = None, -1
    for i, (_, members) in enumerate(FLOORS):
        for m in members:
            if (module == m or module.startswith(m + ".")) and len(m) > best_len:
                best, best_len = i, len(m)
    return best


def import_graph() -> dict[str, list[tuple[str, int]]]:
    """module -> [(imported package module, line)], from every import statement in its source."""
    mods = module_names()
    graph: dict[str, list[tuple[str, int]]] = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        edges = []
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:   # relative: resolve against this module's package
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - (node.level - 1)]
                    base_name = ".".join(base + ([node.module] if node.module else []))
                else:
                    base_name = node.module or ""
                for a in node.names:
                    sub = f"{base_name}.{a.name}"
                    targets.append(sub if sub in mods else base_name)
            for t in targets:
                if t == "csmvanet" or t.startswith("csmvanet."):
                    while t not in mods and "." in t:   # import csmvanet.x.y where y is not a module
                        t = t.rsplit(".", 1)[0]
                    if t != name:
                        edges.append((t, node.lineno))
        graph[name] = edges
    return graph


def upward_imports(graph) -> list[str]:
    bad = []
    for mod, edges in graph.items():
        for target, line in edges:
            fm, ft = floor_of(mod), floor_of(target)
            if target == "csmvanet":
                bad.append(f"{mod} (line {line}) imports the package csmvanet itself (its lazy __init__); "
                           "import from the module that defines the name")
            elif ft > fm:
                bad.append(f"{mod} (floor {FLOORS[fm][0]}, line {line}) imports {target} "
                           f"(floor {FLOORS[ft][0]}): upward")
    return bad


def cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w, _ in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def forbidden_directions() -> list[str]:
    """One line per floor: the floors it must not import (every higher one, and the package)."""
    lines = []
    for i, (name, members) in enumerate(FLOORS[:-1]):
        higher = [n for n, _ in FLOORS[i + 1:]]
        lines.append(f"{name} ({', '.join(m.replace('csmvanet.', '') for m in members)}) must not import: "
                     f"{', '.join(higher)}")
    return lines


# ----------------------------------------------------------------------------------------------- tests

def test_every_module_has_a_floor():
    missing = [m for m in module_names() if floor_of(m) is None]
    assert not missing, f"modules on no floor (add them to FLOORS in {__file__}): {missing}"


def test_no_upward_import():
    bad = upward_imports(import_graph())
    assert not bad, "imports that run upward:\n" + "\n".join(bad)


def test_no_circular_import():
    found = cycles(import_graph())
    assert not found, "circular imports: " + "; ".join(" <-> ".join(c) for c in found)


def test_floors_are_folders():
    """`ls csmvanet/` shows the architecture: one subpackage per floor, no loose modules beside them."""
    loose = sorted(p.name for p in PKG.glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules directly in csmvanet/ (put each in the subpackage of its floor): {loose}"
    for _, members in FLOORS[:-1]:
        for m in members:
            assert (PKG.parent / m.replace(".", "/") / "__init__.py").is_file(), f"floor {m} is not a package"


#: The longest a module of the package may be; a longer one holds more than one thing: split it.
MAX_MODULE_LINES = 450


def test_no_module_over_the_line_limit():
    long = {m: n for m, f in module_names().items() if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them): {long}"


def test_the_checks_see_imports():
    """The graph is not empty and sees lazy imports inside functions (so the tests above mean something)."""
    graph = import_graph()
    assert ("csmvanet.nets", 6) in graph["csmvanet.nets.summary"]
    lazy = {t for t, _ in graph["csmvanet.experiment.model_files"]}
    assert "csmvanet.experiment.checkpoint" in lazy and "csmvanet.nets" in lazy        # both imported inside functions
    assert sum(len(e) for e in graph.values()) > 50


if __name__ == "__main__":
    print("floors, lowest first; a module imports only its own floor or lower ones:")
    for line in forbidden_directions():
        print("  " + line)
    print("  no module imports the package csmvanet itself (csmvanet/__init__, the lazy Enhancer)")
    g = import_graph()
    print(f"{sum(len(e) for e in g.values())} package-internal imports in {len(g)} modules; "
          f"upward: {len(upward_imports(g))}; cycles: {len(cycles(g))}")
    for line in upward_imports(g):
        print("  UPWARD " + line)
    sys.exit(1 if upward_imports(g) or cycles(g) else 0)
