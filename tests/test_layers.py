"""The import structure of the product: no import circles, and no layer importing one above it.

Imports are read with ast from every module of sigrl/ (and export/, bench/, cli/ as installed under
sigrl), at module level and inside functions alike; imports under `if TYPE_CHECKING:` are left out.
An import of a name from a package counts as an import of that package's submodule when the name is
one, else of the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"sigrl": "sigrl", "export": "sigrl.export", "bench": "sigrl.bench", "cli": "sigrl.cli"}

# The layers of sigrl.tagging, lowest first: a module may import only layers listed before its own.
# Layers on one row (inputs and runs; outputs and scoring) stand side by side and import neither
# each other, apart from the exceptions in ALLOWED_SIDEWAYS.
TAGGING_LAYERS = [
    ["decisions"],
    ["records"],
    ["inputs", "runs"],
    ["outputs", "scoring"],
    ["spec"],
    ["engines"],
    ["api", "calibrate"],
]
ALLOWED_SIDEWAYS = {("outputs", "runs")}  # merge writes the merged file's sidecar (runs.metafile)
# sigrl.tagging.decode is the old name of sigrl.decode, kept importable; __init__ only re-exports lazily.
UNLAYERED = {"decode", ""}
# Within a layer, module pairs that must stay apart.
FORBIDDEN_WITHIN = [
    ("sigrl.tagging.outputs.parquet", "sigrl.tagging.outputs.writer"),  # the writer imports Parquet, not back
    ("sigrl.tagging.engines.local", "sigrl.tagging.engines.ray_engine"),
    ("sigrl.tagging.engines.ray_engine", "sigrl.tagging.engines.local"),
]


def _module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    parts = [FOLDERS[folder], *path.relative_to(ROOT / folder).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return skip


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for folder in FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        skip = _type_checking_nodes(tree)
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for name in names:
                while name and name not in files:
                    name = name.rsplit(".", 1)[0] if "." in name else ""
                if name and name != mod:
                    targets.add(name)
        graph[mod] = targets
    return graph


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _tagging_part(module: str) -> str | None:
    if module == "sigrl.tagging":
        return ""
    if not module.startswith("sigrl.tagging."):
        return None
    return module.split(".")[2]


def _rank(part: str) -> int:
    return next(i for i, row in enumerate(TAGGING_LAYERS) if part in row)


def test_graph_sees_the_project():
    assert len(GRAPH) > 100 and "sigrl.tagging.engines.local" in GRAPH["sigrl.tagging.api"]


def test_no_import_circles():
    assert _cycles(GRAPH) == []


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_tagging_module_has_a_layer():
    parts = {_tagging_part(m) for m in GRAPH} - {None} - UNLAYERED
    assert parts <= {p for row in TAGGING_LAYERS for p in row}, "add the new part of sigrl.tagging to TAGGING_LAYERS"


def _violations() -> list[str]:
    bad = []
    for mod, targets in GRAPH.items():
        part = _tagging_part(mod)
        if part is None or part in UNLAYERED:
            continue
        for target in targets:
            other = _tagging_part(target)
            if other is None or other == part or other in UNLAYERED and target != "sigrl.tagging":
                continue
            if other == "" or _rank(other) > _rank(part):
                bad.append(f"{mod} imports {target}: a higher layer")
            elif _rank(other) == _rank(part) and (part, other) not in ALLOWED_SIDEWAYS:
                bad.append(f"{mod} imports {target}: a layer beside its own")
    bad += [f"{a} imports {b}" for a, b in FORBIDDEN_WITHIN if b in GRAPH[a]]
    return bad


def test_tagging_layers_import_only_downwards():
    assert _violations() == []


@pytest.mark.parametrize("prefix", ["sigrl.cli", "sigrl.bench"])
def test_the_library_imports_no_command_or_bench(prefix):
    library = [m for m in GRAPH if not m.startswith(("sigrl.cli", "sigrl.bench", "sigrl.export"))]
    assert [m for m in library if any(t.startswith(prefix) for t in GRAPH[m])] == []


def test_only_the_cli_and_the_tagger_reach_the_top_of_tagging():
    tops = ("sigrl.tagging.api", "sigrl.tagging.calibrate")
    users = {m for m, targets in GRAPH.items() if any(t in tops for t in targets)}
    assert {m for m in users if not m.startswith(("sigrl.cli", "sigrl.bench"))} <= {"sigrl.tagging", *tops}


def test_runtime_and_machine_facts_stay_below_the_install_report():
    assert "sigrl.environment" not in {t for m, ts in GRAPH.items() if m.startswith("sigrl.runtime") for t in ts}
    assert {t for t in GRAPH["sigrl.machine"] if t.startswith("sigrl")} == set()
    assert GRAPH["sigrl.runtime"] <= {m for m in GRAPH if m.startswith("sigrl.runtime.")}  # a face that re-exports


def test_scoring_knows_no_outputs_or_engines():
    scoring = {t for m, ts in GRAPH.items() if m.startswith("sigrl.tagging.scoring") for t in ts}
    assert not {t for t in scoring if t.startswith(("sigrl.tagging.outputs", "sigrl.tagging.engines", "sigrl.tagging.runs"))}


def test_the_product_never_imports_the_measurement_scripts():
    # scripts/bench/ is not installed; its modules have generic names (tagging, labels, head, ...).
    scripts = {p.stem for p in (ROOT / "scripts" / "bench").glob("*.py")}
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    assert not {a.name.split(".")[0] for a in node.names} & scripts, path
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    assert (node.module or "").split(".")[0] not in scripts, path
