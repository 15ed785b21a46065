"""The training services hold together by module-level imports that form no loop: read off the source
(AST), so a function-local import added to dodge a cycle fails here unless it is one of the
documented exceptions below."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted((ROOT / "training" / "services").glob("*.py"))
CHECKED = [*SERVICES, *(ROOT / "training" / name for name in ("selectors.py", "runner.py", "tasks.py"))]
# (file, function) -> why it imports training code at call time.
DOCUMENTED = {
    # The registry names the handlers, and cai_revise's handler starts its chained SFT run through runs.
    ("training/services/runs.py", "_spec"): "training.kinds",
    # The services import training.tasks to enqueue; the tasks reach the runner and services when run.
    ("training/tasks.py", "on_failure"): "training.services.runs",
    ("training/tasks.py", "run_execute"): "training.runner",
    ("training/tasks.py", "sweep_runs"): "training.services.runs",
    # Sweeps start runs (sweeps -> runs -> tasks): the tasks reach the sweep service when run.
    ("training/tasks.py", "advance_sweep"): "training.services.sweeps",
    ("training/tasks.py", "advance_sweeps"): "training.services.sweeps",
}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names (``from training.services import runs`` names the
    package's module ``training.services.runs``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _function_local_imports(tree: ast.Module) -> list[tuple[str, str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found += [(node.name, name, inner.lineno) for name in _imported(inner)[:1]]
    return found


def _load_time_imports(node: ast.AST):
    """The import statements that run when the module loads: all but those inside functions (an
    ``if TYPE_CHECKING:`` block counts too: a loop there is a loop for the reader)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _load_time_imports(child)


def _module_level_graph() -> dict[str, set[str]]:
    names = {_module_name(p) for p in SERVICES}
    graph = {}
    for path in SERVICES:
        edges = set()
        for node in _load_time_imports(ast.parse(path.read_text())):
            edges |= {name for name in _imported(node) if name in names}
        graph[_module_name(path)] = edges - {_module_name(path)}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_level_import_cycle_among_the_training_services():
    graph = _module_level_graph()
    assert "training.services.runs" in graph and graph["training.services.cai"]  # the walk sees the modules
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_local_training_import_but_the_documented_ones(path):
    relative = str(path.relative_to(ROOT))
    for function, module, line in _function_local_imports(ast.parse(path.read_text())):
        if not module.startswith("training"):
            continue
        assert DOCUMENTED.get((relative, function)) == module, (
            f"{relative}:{line} imports {module} inside {function}(); import it at module level "
            "(tests/training/test_service_imports.py lists the documented exceptions)"
        )


def test_every_documented_exception_is_still_there():
    seen = set()
    for path in CHECKED:
        relative = str(path.relative_to(ROOT))
        local = _function_local_imports(ast.parse(path.read_text()))
        seen |= {(relative, function) for function, module, _ in local if module.startswith("training")}
    assert set(DOCUMENTED) == seen
