"""The shape of the house (issue 10): no import cycle in lab/, one place that steps an optimizer on
model parameters, no Streamlit in lab/, files small enough to read at once, pages that only
arrange, panels and sessions registered once."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB, APP = ROOT / "lab", ROOT / "app"
MAX_LINES, MAX_PAGE_LINES = 400, 80
# Where lab/ may call `<optimizer>.step()`: the engine's one loop, the optimizers themselves (a hybrid
# steps its parts), and the toys and equivalence checks that compare optimizers on toy problems.
STEP_ALLOWED = {("lab/engine.py", "Run._update"), ("lab/optim/hybrid.py", "HybridOptimizer.step")}
STEP_ALLOWED_FILES = {"lab/optim/toys.py", "lab/assoc/equivalences.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def lab_modules() -> dict[str, Path]:
    return {module_name(p): p for p in LAB.rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The lab modules `path` imports anywhere in it (module level or inside functions)."""
    out = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    out.add(sub)
                elif base in modules:
                    out.add(base)
    return out - {module_name(path)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None
    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_there_is_no_import_cycle_in_lab():
    modules = lab_modules()
    graph = {name: imports_of(path, modules) for name, path in modules.items()}
    assert graph["lab.engine"] and "lab.models" in graph["lab.engine"]       # the walk sees imports at all
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _step_calls(path: Path):
    """(qualified function, line) of every `x.step()` call without arguments: an optimizer's step
    (a Run's `step(n)` and a scheduler's are called with arguments in lab/)."""
    tree = ast.parse(path.read_text())
    found = []

    def walk(node, where):
        for child in ast.iter_child_nodes(node):
            name = where
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{where}.{child.name}" if where else child.name
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and child.func.attr == "step"
                    and not child.args and not child.keywords):
                found.append((where, child.lineno))
            walk(child, name)
    walk(tree, "")
    return found


def test_exactly_one_place_steps_an_optimizer_on_model_parameters():
    places = set()
    for path in LAB.rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        if rel in STEP_ALLOWED_FILES or rel.startswith("lab/optim/m3"):
            continue
        for where, line in _step_calls(path):
            places.add((rel, where))
    assert places == STEP_ALLOWED, f"optimizer steps outside the engine's loop: {sorted(places - STEP_ALLOWED)}"


def test_lab_never_imports_streamlit():
    offenders = [str(p.relative_to(ROOT)) for p in LAB.rglob("*.py")
                 if any(isinstance(n, (ast.Import, ast.ImportFrom)) and "streamlit" in ast.unparse(n)
                        for n in ast.walk(ast.parse(p.read_text())))]
    assert not offenders


@pytest.mark.parametrize("folder", [LAB, APP], ids=["lab", "app"])
def test_files_stay_small_enough_to_read_at_once(folder):
    long = {str(p.relative_to(ROOT)): n for p in folder.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_pages_only_arrange():
    from app.components.registry import PAGES

    for page in PAGES:
        lines = page.path.read_text().splitlines()
        assert len(lines) <= MAX_PAGE_LINES, f"{page.file}: {len(lines)} lines"
        tree = ast.parse(page.path.read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.While)], f"{page.file} runs a work loop"
        assert not any("import torch" in ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Import)), page.file


def test_nothing_reads_a_private_attribute_of_another_object():
    offenders = []
    for path in [*LAB.rglob("*.py"), *APP.rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and ast.unparse(node.value) not in ("self", "cls")):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, offenders


def test_every_panel_draws_a_registered_session_and_says_what_it_is():
    from app.panels import PANELS
    from lab.sessions import SESSIONS

    assert {"loss_accuracy", "update_timeline", "level_activations", "level_drift", "memory_gates",
            "forgetting_curves", "accuracy_matrix", "knowledge_map", "memory_recall", "optimizer_buffers"} <= set(PANELS)
    for name, panel in PANELS.items():
        assert panel.session in SESSIONS, f"panel {name} draws an unknown session {panel.session!r}"
        assert panel.title and panel.doc, f"panel {name} needs a title and a docstring"
    assert set(SESSIONS) == {"playground", "forgetting", "deployment", "sleep", "memory", "claims", "lesson"}
