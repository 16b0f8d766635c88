"""The direction of dependency: every import of the package, module-level and
function-local, against the table in docs/ARCHITECTURE.md ("Layers")."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "analog_ep"


def allowed_table() -> dict[str, set[str]]:
    """part -> the parts it may import, read from the table in docs/ARCHITECTURE.md."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    below: list[str] = []                       # parts whose row says "everything below"
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        part = cells[0].strip("`")
        table[part] = set(re.findall(r"`(\w+)`", cells[2]))
        if "everything below" in cells[2]:
            below.append(part)
    order = list(table)
    for part in below:
        table[part] = set(order[order.index(part) + 1:])
    parts = set(table)
    assert parts and all(may <= parts for may in table.values()), table
    return table


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def part_of(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file (or in ``text`` read as that
    file), wherever it stands."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            out += [(node.lineno, m) for m in names]
    return out


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


def internal_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (a name imported from a package counts as
    that package, or as its submodule when one exists)."""
    modules = {module_name(p) for p in SOURCES}
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        mod = module_name(path)
        targets = set()
        for _, target in imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("analog_ep.") and target != mod:
                targets.add(target)
        graph[mod] = targets
    return graph


def test_the_table_names_every_part_of_the_package():
    parts = {part_of(module_name(p)) for p in SOURCES}
    assert parts <= set(allowed_table()), parts - set(allowed_table())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_import_follows_the_table(path):
    table = allowed_table()
    part = part_of(module_name(path))
    wrong = [(line, target) for line, target in imports(path)
             if target.startswith("analog_ep.") and part_of(target) not in table[part] | {part}]
    assert not wrong, f"{path.relative_to(ROOT)} imports above or beside its layer: {wrong}"


def test_no_module_imports_by_name_at_run_time():
    """Every dependency is an import statement the reader (and this test) can see."""
    for path in SOURCES:
        text = path.read_text()
        assert "import_module(" not in text and "__import__(" not in text, path


def test_no_cycle_between_modules():
    graph = internal_graph()
    state: dict[str, int] = {}

    def visit(mod, trail):
        state[mod] = 1
        for nxt in graph.get(mod, ()):
            # a package's __init__ re-exporting its own submodules is not a cycle
            if mod.startswith(nxt + ".") or nxt.startswith(mod + "."):
                continue
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[mod] = 2

    for mod in graph:
        if mod not in state:
            visit(mod, [mod])


def test_the_check_sees_a_forbidden_arrow():
    """A function-local, relative import that goes up a layer is found and refused."""
    path = PACKAGE / "physics" / "equilibrium.py"
    text = path.read_text() + "\n\ndef _up():\n    from ..learning import rules\n"
    found = [t for _, t in imports(path, text)]
    assert "analog_ep.learning" in found
    assert "learning" not in allowed_table()["physics"]
