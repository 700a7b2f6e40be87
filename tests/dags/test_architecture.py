"""The package's shape, read from its source with ``ast``: who imports Airflow, where SQL lives, that no
module or class is found from a string, and that the import graph has no circle and no upward arrow.

The layers, lowest first (a module may import its own layer and the layers below, never above):

0. domain: ``errors``, ``model``, ``config``, ``plan``, ``channel``, ``frames``, ``exports``, ``facts``,
   ``quality``, ``shards``: values, rules and parsers, no I/O of their own;
1. ``portal/``: the browser, profiles, sign-on and settings both portals share;
2. ``warehouse/``: every SQL statement of the package (the load, the audit, the status);
3. the channel folders ``rocket/`` and ``jet/``: one channel end to end (its portal's pages, its policy, its
   stages, which load through ``warehouse``), no Airflow;
4. ``airflow_glue/``: the only modules that import Airflow (hooks, operators, notifiers, the DAG builder);
5. commands a person runs (``sign_in``, ``cursors``, ``check_export``, ``warehouse.migrate``): entry points
   like the DAG files, which may reach an Airflow connection through the glue's hooks; nothing imports them.

Imports inside functions and under ``TYPE_CHECKING`` count: a circle through a function's import is
still a circle a reader has to follow. Run ``python -m pytest tests/dags/test_architecture.py -q`` to see
it; a failure names the modules and the line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "coupang_sales"
NAME = "coupang_sales"

DOMAIN = {"errors", "model", "config", "plan", "channel", "frames", "exports", "facts", "quality", "shards"}
COMMANDS = {"sign_in", "cursors", "check_export", "warehouse.migrate"}
LAYERS = ("domain", "portal", "warehouse", "channels", "airflow_glue", "commands")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for name, path in MODULES.items()}


def layer(module: str) -> str:
    inner = module.removeprefix(NAME).lstrip(".")
    top = inner.split(".", 1)[0]
    if inner in COMMANDS:
        return "commands"
    if inner == "" or inner in DOMAIN:
        return "domain"
    if top == "portal":
        return "portal"
    if top in ("rocket", "jet"):
        return "channels"
    if top in ("warehouse", "airflow_glue"):
        return top
    raise AssertionError(f"{module} is in no layer: add it to the docstring's list and to this test")


def imports(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported module, line) of every import in ``tree``, functions' and TYPE_CHECKING's included."""
    found = []
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((base, node.lineno))
            # `from coupang_sales.airflow_glue import operators`: the submodule is imported
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names
                      if f"{base}.{alias.name}" in MODULES]
    return found


def internal_edges() -> dict[str, set[tuple[str, int]]]:
    edges: dict[str, set[tuple[str, int]]] = {m: set() for m in MODULES}
    for module, tree in TREES.items():
        for target, line in imports(tree, module):
            if target == NAME or target.startswith(NAME + "."):
                while target not in MODULES:  # a name inside a module: the module
                    target = target.rpartition(".")[0]
                if target != module and target != NAME:
                    edges[module].add((target, line))
    return edges


def string_constants(tree: ast.AST):
    """The string literals of a module that are not docstrings."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node
        elif isinstance(node, ast.JoinedStr):  # an f-string's text parts, joined
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            yield ast.Constant(value=text, lineno=node.lineno)


def test_only_the_glue_imports_airflow():
    """The DAG files (``dags/``) and ``plugins/coupang_sales_plugin.py`` are outside the package."""
    offending = [f"{module}:{line} imports {target}" for module, tree in TREES.items()
                 if layer(module) != "airflow_glue"
                 for target, line in imports(tree, module) if target == "airflow" or target.startswith("airflow.")]
    assert offending == [], "Airflow imported outside coupang_sales.airflow_glue:\n" + "\n".join(offending)


SQL = re.compile(r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+[\w.\"]+(\s+AS\s+\w+)?\s+SET\b"
                 r"|\bDELETE\s+FROM\b|\bCREATE\s+(TABLE|VIEW|INDEX|FUNCTION|TRIGGER)\b|\bALTER\s+TABLE\b"
                 r"|\bSELECT\s+(set_config|pg_\w+|clock_timestamp|now)\s*\(")


def test_sql_only_in_the_warehouse_package():
    offending = [f"{module}:{node.lineno}: {node.value.strip()[:60]!r}" for module, tree in TREES.items()
                 if layer(module) != "warehouse" and module != f"{NAME}.warehouse.migrate"
                 for node in string_constants(tree) if SQL.search(node.value)]
    assert offending == [], "SQL outside coupang_sales.warehouse:\n" + "\n".join(offending)


def test_the_sql_detector_finds_sql():
    """The detector of the test above, on the statements the warehouse package holds."""
    found = [node.value for module, tree in TREES.items() if layer(module) == "warehouse"
             for node in string_constants(tree) if SQL.search(node.value)]
    assert len(found) >= 20
    for statement in ("SELECT conn_id FROM sales.accounts WHERE channel = %s", "INSERT INTO sales.x VALUES (1)",
                      "UPDATE sales.accounts SET active = false", "DELETE FROM sales.x", "SELECT set_config('a', 'b')"):
        assert SQL.search(statement), statement
    assert not SQL.search("Select the window from the params"), "prose is not SQL"


DOTTED = re.compile(rf"^{NAME}(\.[A-Za-z_]\w*)+$")


def names_a_module_or_class(text: str) -> bool:
    """'coupang_sales.rocket.stages' or 'coupang_sales.jet.wing.WingSession', not an Asset's name such as
    'coupang_sales.order_lines' (no module of that name, nor a class of the package's ``__init__``)."""
    if not DOTTED.match(text):
        return False
    return text in MODULES or text.rpartition(".")[0] in set(MODULES) - {NAME}


def module_aliases(tree: ast.AST, module: str) -> set[str]:
    """The local names under which ``module`` binds a module of the package (``from coupang_sales.airflow_glue
    import hooks``): a ``getattr`` on one of them with a name chosen at run time is a lookup from a string."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(NAME):
            bound |= {alias.asname or alias.name for alias in node.names if f"{node.module}.{alias.name}" in MODULES}
        elif isinstance(node, ast.Import):
            bound |= {alias.asname for alias in node.names if alias.asname and alias.name in MODULES}
    return bound


def test_no_module_or_class_is_found_from_a_string():
    """No ``importlib``/``import_module``/``__import__``, and no string naming a module or class of the
    package (a dotted path handed to something that would resolve it): a channel is a value
    (``coupang_sales.channel.Channel``), its session class and stages are reached through functions."""
    offending = []
    for module, tree in TREES.items():
        for target, line in imports(tree, module):
            if target == "importlib" or target.startswith("importlib."):
                offending.append(f"{module}:{line} imports {target}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in ("import_module",
                                                                                       "__import__"):
                offending.append(f"{module}:{node.lineno} calls {ast.unparse(node.func)}")
        offending += [f"{module}:{node.lineno} names {node.value!r}" for node in string_constants(tree)
                      if names_a_module_or_class(node.value)]
        aliases = module_aliases(tree, module)
        offending += [f"{module}:{node.lineno} looks up {ast.unparse(node)}" for node in ast.walk(tree)
                      if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                      and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in aliases]
    assert offending == [], "\n".join(offending)


def test_the_import_graph_has_no_upward_arrow():
    edges = internal_edges()
    upward = [f"{module} ({layer(module)}) imports {target} ({layer(target)}) at line {line}"
              for module, targets in edges.items() for target, line in sorted(targets)
              if LAYERS.index(layer(target)) > LAYERS.index(layer(module))]
    assert upward == [], "arrows up the layers (see this module's docstring):\n" + "\n".join(upward)
    commands = [f"{module} imports the command {target}" for module, targets in edges.items()
                for target, _ in targets if layer(target) == "commands" and layer(module) != "commands"]
    assert commands == [], "\n".join(commands)


def test_the_import_graph_has_no_circle():
    edges = {module: {target for target, _ in targets} for module, targets in internal_edges().items()}
    # a package's __init__ is imported with each of its modules: an arrow from it to its own module is not a
    # circle a reader follows, unless that module imports the package's __init__ back (then it is one)
    circles, state, path = [], {}, []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)
    assert circles == [], "import circles:\n" + "\n".join(circles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_is_in_a_layer(module):
    assert layer(module) in LAYERS
