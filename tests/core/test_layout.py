"""The layout of ``aomcore``: no import cycle, lower floors never import higher ones, no hidden imports.

The graph is built from the source (every ``import``, function-local ones included), so a
cycle hidden by a function-local import fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "aomcore"

#: Floors, lowest first: a module may import its own floor and those below, never above.
#: The three methods share floor 1; DeepEyes and Rauber et al. may use the paper's retraining
#: loop (aom) but never each other, and aom uses neither.
FLOORS = {"base": 0, "aom": 1, "deepeyes": 1, "rauber": 1, "store": 2, "jobs": 3, "cli": 4}
ALLOWED_SIDEWAYS = {("deepeyes", "aom"), ("rauber", "aom")}

#: Function-local imports of the project's own modules that defer a heavy library.
DEFERRED = {("aomcore.aom.maps", "aomcore.aom._l1")}  # numba


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, bool]]:
    """(importer, imported module, function-local?) for every project import."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        base = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                prefix = base
                for _ in range(node.level - 1):
                    prefix = prefix.rpartition(".")[0]
                module = (f"{prefix}.{node.module}" if node.module else prefix) if node.level else node.module or ""
                names = [module, *(f"{module}.{a.name}" for a in node.names)]
            else:
                continue
            for name in names:
                target = resolve(name) if name.split(".")[0] == "aomcore" else None
                if target and target != mod and not mod.startswith(target + "."):
                    edges.append((mod, target, id(node) not in top))
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle():
    mods = _modules()
    graph = {m: set() for m in mods}
    for a, b, _ in _imports(mods):
        if b != "aomcore":  # importing the package itself is not an edge
            graph[a].add(b)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_lower_floors_never_import_higher_ones():
    bad = []
    for a, b, _ in _imports(_modules()):
        pa, pb = a.split(".")[1:2], b.split(".")[1:2]
        if not pa or not pb or pa == pb or pa[0] not in FLOORS or pb[0] not in FLOORS:
            continue
        fa, fb = FLOORS[pa[0]], FLOORS[pb[0]]
        if fb > fa or (fb == fa and (pa[0], pb[0]) not in ALLOWED_SIDEWAYS):
            bad.append(f"{a} -> {b}")
    assert bad == []


def test_no_module_at_the_top_level_but_the_entry_points():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py"]
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(FLOORS)


def test_function_local_imports_only_defer_heavy_libraries():
    local = {(a, b) for a, b, is_local in _imports(_modules()) if is_local}
    assert local <= DEFERRED, sorted(local - DEFERRED)


def test_the_library_never_imports_streamlit():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_job_kinds_come_from_the_registry_with_labels():
    import aomcore

    expected = {"train", "maps", "retrain", "experiment", "criteria", "maps_snapshot", "run_import", "deepeyes",
                "embed", "trails"}
    assert set(aomcore.JOB_KINDS) == expected
    assert all(aomcore.job_label(k) != k for k in expected)


def test_every_aomcore_name_the_app_and_benchmarks_use_exists():
    """``aomcore.NAME`` (and ``aomcore.sub.NAME``) in the app, the pages, ui and benchmarks resolve."""
    import aomcore

    missing = []
    for folder in ("ui", "app_pages", "benchmarks"):
        for path in [*(REPO / folder).rglob("*.py"), REPO / "app.py"]:
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Attribute):
                    continue
                chain, inner = [node.attr], node.value
                while isinstance(inner, ast.Attribute):
                    chain.insert(0, inner.attr)
                    inner = inner.value
                if not (isinstance(inner, ast.Name) and inner.id == "aomcore"):
                    continue
                obj, where = aomcore, "aomcore"
                for part in chain:
                    if not hasattr(obj, part):
                        missing.append(f"{path.relative_to(REPO)}:{node.lineno} {where}.{part}")
                        break
                    obj, where = getattr(obj, part), f"{where}.{part}"
    assert missing == []


def test_the_dashboards_numbers_take_their_ranges_from_limits():
    """Seeds, batch sizes, epochs and snapshots: a widget's bounds are ``limits`` constants, never literals,
    so the dashboard accepts what the CLI accepts (issue #22: numbers validated at the boundary, one place)."""
    ranged = {"Seed": "SEED", "Batch size": "BATCH_SIZE", "Epochs": "EPOCHS", "Snapshots": "SNAPSHOTS",
              "Retraining epochs": "RETRAIN_EPOCHS"}
    seen = []
    for path in [*(REPO / "app_pages").rglob("*.py"), *(REPO / "ui").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "number_input"
                    and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in ranged):
                continue
            name = ranged[node.args[0].value]
            bounds = [ast.unparse(a) for a in node.args[1:3]]
            assert bounds == [f"limits.{name}_MIN", f"limits.{name}_MAX"], (path.name, node.args[0].value, bounds)
            seen.append(node.args[0].value)
    assert {"Seed", "Batch size", "Epochs", "Snapshots", "Retraining epochs"} <= set(seen)
