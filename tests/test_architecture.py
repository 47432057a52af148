"""The package's layout holds: every import inside tinycnn resolves, no module imports
itself back through others (imports inside functions counted), and reading a run directory
does not load torch."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import tinycnn

ROOT = Path(tinycnn.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of every tinycnn import in the file, wherever it stands."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base == "tinycnn" or base.startswith("tinycnn."):
                found.append((base, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("tinycnn")]
    return found


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def edges() -> dict[str, set[str]]:
    """module -> the tinycnn modules it imports (a name that is a submodule counts as that module)."""
    graph = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, names, _ in imports_of(path):
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            graph[module].update(subs or [target])
            if len(subs) < len(names):  # names taken from the module itself
                graph[module].add(target)
    for module in graph:
        graph[module].discard(module)
    return graph


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_tinycnn_import_resolves(module):
    if module.endswith("__main__"):
        pytest.skip("runs the command when imported")
    for target, names, line in imports_of(MODULES[module]):
        imported = importlib.import_module(target)
        for name in names:
            assert hasattr(imported, name) or f"{target}.{name}" in MODULES, f"{module}:{line}: {target} has no {name}"


def test_no_import_cycles():
    graph = edges()
    # Package __init__ files only document (or re-export their own modules): a package's
    # __init__ importing its child is not a cycle of the architecture.
    cycles, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue  # a package re-exporting its own module
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


LAYERS = ["foundation", "data", "models", "speed", "engine", "seeds", "analysis", "deploy", "nas", "course", "api", "cli"]
FOUNDATION = {"tinycnn", "tinycnn.errors", "tinycnn.atomic", "tinycnn.config", "tinycnn.device", "tinycnn.recipes", "tinycnn.specs"}


def layer(module: str) -> int:
    if module == "tinycnn.__main__":
        return LAYERS.index("cli")
    if module == "tinycnn.api":
        return LAYERS.index("api")
    if module in FOUNDATION:
        return 0
    part = module.split(".")[1]
    return LAYERS.index(part) if part in LAYERS else 0


def test_packages_import_only_downwards():
    """foundation < data, models < speed < engine < seeds < analysis < course < cli: a package
    may import its own layer and those below it, never one above."""
    # The package's own __init__ hands out the API on first use (a lazy re-export, not a dependency).
    wrong = [f"{m} imports {t}" for m, targets in edges().items() for t in targets
             if layer(t) > layer(m) and m != "tinycnn"]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", ["tinycnn.engine.rundir", "tinycnn.specs", "tinycnn.seeds.stats", "tinycnn.cli"])
def test_reading_runs_does_not_load_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
