"""The import graph follows the layers that the table of docs/architecture.md draws, and has no circles.

Every module's imports are read with ``ast`` (those inside functions too), so a
lazy import cannot hide an import from a higher layer; ``importlib.import_module``
and ``__import__`` of a literal name count as imports, and one of a computed name
is refused, so no loop can hide behind a dynamic import either.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recsys24"
LAYERS = ROOT / "docs" / "architecture.md"

# Imports allowed to break the rules (none since issue18b put the model inputs in one folder).
KNOWN: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package is its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


DYNAMIC = {"import_module", "__import__"}  # importlib.import_module(...), __import__(...)


def dynamic_imports(tree: ast.AST) -> list[tuple[int, str | None]]:
    """(line, module name) of each ``import_module``/``__import__`` call; the name is None when computed."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if func in DYNAMIC and node.args:
                arg = node.args[0]
                literal = isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                found.append((node.lineno, arg.value if literal else None))
    return sorted(found, key=lambda f: f[0])


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports: ``from a import b`` is module ``a.b`` when there is
    one, else ``a``; a name that is not a module resolves to the module that holds it; a dynamic import
    of a literal name is an import of that module."""

    def module_of(dotted: str) -> str:
        while dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    tree = ast.parse(path.read_text(), str(path))
    found = {module_of(m) for _, m in dynamic_imports(tree) if m and m.split(".")[0] == "recsys24"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {module_of(a.name) for a in node.names if a.name.split(".")[0] == "recsys24"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "recsys24":
                continue
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else module_of(base) for a in node.names}
    return found - {name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def layers() -> dict[str, int]:
    """Top-level entry (``data/``, ``config.py``) -> its row in the Layers table of ``LAYERS``, 0 at the top."""
    text = LAYERS.read_text()
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # past the head and the rule
    return {entry: i for i, row in enumerate(rows) for entry in re.findall(r"`([^`]+)`", row.split("|")[2])}


def entry(module: str) -> str:
    """The top-level entry a module belongs to: ``recsys24.models.cgh`` -> ``models/``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    return f"{parts[1]}/" if (PACKAGE / parts[1]).is_dir() else f"{parts[1]}.py"


def test_every_module_has_a_layer_in_the_architecture_doc():
    table = layers()
    assert table, f"{LAYERS}: no Layers table"
    missing = sorted({entry(m) for m in modules()} - set(table))
    assert not missing, f"add {', '.join(missing)} to the Layers table in {LAYERS}"


def test_no_module_imports_from_a_higher_layer():
    table = layers()
    upward = sorted(
        f"{a} ({entry(a)}) imports {b} ({entry(b)})"
        for a, targets in graph().items() for b in targets
        if table[entry(b)] > table[entry(a)] and (a, b) not in KNOWN
    )
    assert not upward, f"imports against the layers of {LAYERS}:\n" + "\n".join(upward)


def test_no_import_circles():
    edges = {a: {b for b in targets if (a, b) not in KNOWN} for a, targets in graph().items()}
    state: dict[str, str] = {}  # "open" while on the path, "done" after

    def circle_from(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := circle_from(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(edges):
        if start not in state:
            found = circle_from(start, [start])
            assert found is None, "import circle: " + " -> ".join(found)


def test_no_module_imports_a_computed_name():
    computed = sorted(f"{path.relative_to(ROOT)}:{line}" for path in modules().values()
                      for line, module in dynamic_imports(ast.parse(path.read_text())) if module is None)
    assert not computed, ("a dynamic import of a computed name hides its edge from this test; import the module "
                          "by name:\n" + "\n".join(computed))


def test_a_loop_through_a_dynamic_import_is_seen(tmp_path):
    # the loop cli.py had: cli loads the command modules with importlib, commands/data.py imports cli back
    known = modules()
    cli = tmp_path / "cli.py"
    cli.write_text('import importlib\nfor _name in ["recsys24.commands.data"]:\n    importlib.import_module(_name)\n'
                   'importlib.import_module("recsys24.commands.data")\n')
    assert imports("recsys24.cli", cli, known) == {"recsys24.commands.data"}
    assert dynamic_imports(ast.parse(cli.read_text()))[0] == (3, None)  # the computed one, which the test above refuses


def test_known_violations_are_still_there():
    edges = graph()
    fixed = sorted(f"{a} -> {b}" for a, b in KNOWN if b not in edges.get(a, ()))
    assert not fixed, "fixed, so remove from KNOWN in tests/test_architecture.py: " + ", ".join(fixed)
