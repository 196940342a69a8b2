"""The import graph points one way: ``envs`` and ``algorithms`` import nothing of ``rayexp``, and no module of the
three packages reaches itself through imports, counting the imports inside functions (they hide a cycle from
Python's import machinery, not from a reader)."""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("rayexp", "envs", "algorithms")


def module_names() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def import_graph() -> dict[str, set[str]]:
    """{module: the package modules it imports anywhere in its body}."""
    mods = module_names()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        graph[mod] = {o for o in map(owner, targets) if o and o != mod and not mod.startswith(f"{o}.")}
    return graph


def test_envs_and_algorithms_import_nothing_of_rayexp():
    wrong = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if not m.startswith("rayexp")
                   for t in ts if t.startswith("rayexp"))
    assert wrong == []


TOP = ("rayexp.cli", "rayexp.bench")
"""The layers above the families: the commands and the benchmarks."""


def test_the_core_reaches_families_only_through_the_plugin_contract():
    """No core module imports a family's modules; the core calls them by their ``Family`` hooks."""
    def is_core(m: str) -> bool:
        return m.startswith("rayexp") and not m.startswith(("rayexp.families.", *TOP))

    wrong = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if is_core(m)
                   for t in ts if t.startswith("rayexp.families."))
    assert wrong == []


def test_no_file_is_long():
    long = sorted(f"{f.relative_to(ROOT)}: {n}" for f in module_names().values()
                  if (n := len(f.read_text().splitlines())) > 420)
    assert long == []


def test_no_import_cycles():
    graph = import_graph()
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None


def test_the_graph_counts_imports_inside_functions():
    graph = import_graph()
    assert "rayexp.pipeline" in graph["rayexp.cli"]  # cli imports the pipeline only inside its commands
    graph["rayexp.errors"].add("rayexp.cli")  # so a back edge from a leaf module closes a cycle
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return
    raise AssertionError("a cycle through rayexp.cli went unseen")


def test_the_code_passes_its_linter():
    """`ruff check` with the project's configuration (pyproject.toml: pyflakes, syntax, import order)."""
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", *PACKAGES, "tests", "scripts"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
