"""Every SQL statement the package sends is a fixed text with %s/%(name)s parameters.

Checked on the source itself: the first argument of each ``execute``/``executemany``/
``copy`` call must be a string literal, a module constant, a shipped migration file, a
``psycopg.sql`` composition, an SQLAlchemy ``select()``, or an f-string whose only
interpolations are column lists built from module constants. Values (account ids,
dates, run ids) can then only travel as parameters. The end-to-end counterpart, an
account id holding quotes and SQL, is in tests/integration/test_secrets.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for folder in ("plugins", "dags", "include", "scripts", "bench") for p in (ROOT / folder).rglob("*.py")]
SQL_CALLS = {"execute", "executemany", "copy"}
# Locals holding a column list joined from a module constant (cols = ", ".join(ORDER_LINE_COLUMNS)).
COLUMN_LISTS = {"cols"}


def _is_constant_name(name: str) -> bool:
    return name.strip("_").isupper()


def _interpolation_is_constant(node: ast.expr) -> bool:
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    return all(_is_constant_name(name) or name in COLUMN_LISTS for name in names)


def unsafe_sql_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS and node.args):
            continue
        statement = node.args[0]
        if isinstance(statement, ast.Constant) and isinstance(statement.value, str):
            continue
        if isinstance(statement, ast.Name) and _is_constant_name(statement.id):
            continue
        if isinstance(statement, ast.IfExp) and all(
                isinstance(branch, ast.Name) and _is_constant_name(branch.id)
                for branch in (statement.body, statement.orelse)):
            continue  # one of two module constants (a statement's probed or joined form)
        if isinstance(statement, ast.Call) and ast.unparse(statement).startswith("select("):
            continue  # an SQLAlchemy select() binds its values
        if ast.unparse(statement) == "migration.sql":
            continue  # a shipped migration file (warehouse/migrations/NNNN_slug.sql)
        if isinstance(statement, ast.JoinedStr) and all(
                _interpolation_is_constant(part.value) for part in statement.values
                if isinstance(part, ast.FormattedValue)):
            continue
        if isinstance(statement, ast.Call) and "sql." in ast.unparse(statement.func):
            continue  # psycopg.sql.SQL(...).format(sql.Identifier(...)): quoted by the driver
        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(statement)[:80]}")
    return found


def test_sources_are_found():
    assert any(p.name == "__init__.py" and p.parent.name == "warehouse" for p in SOURCES)


def test_every_statement_is_fixed_text_with_parameters():
    assert [hit for path in SOURCES for hit in unsafe_sql_calls(path)] == []


def test_the_check_catches_values_spliced_into_sql(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(conn, account_id):\n'
                   '    conn.execute(f"DELETE FROM sales.order_lines WHERE account_id = \'{account_id}\'")\n'
                   '    conn.execute("SELECT * FROM t WHERE a = " + account_id)\n'
                   '    conn.execute("SELECT * FROM t WHERE a = %s" % account_id)\n', encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert len(unsafe_sql_calls(bad)) == 3
    finally:
        ROOT = saved
