"""The layers import only downwards, and each role stays in its place."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports_and_calls(path: Path) -> tuple[list[str], list[str]]:
    """The modules a file imports (absolute imports) and the names it calls."""
    imported: list[str] = []
    called: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append(node.module)
            imported.extend(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Name):
                called.append(function.id)
            elif isinstance(function, ast.Attribute):
                called.append(function.attr)
    return imported, called


def test_the_cli_only_parses_and_prints_it_runs_no_sql_and_makes_no_engine() -> None:
    """Queries live in store/, engines come from `ops.store_session`: cli.py formats what
    store/ and ops return."""
    imported, called = _imports_and_calls(ROOT / "worker" / "cli.py")
    assert [name for name in imported if name.split(".")[0] == "sqlalchemy"] == []
    assert [name for name in imported if name.startswith("store.tables")] == []
    assert "make_engine" not in called
    assert "make_engine" not in {name.rsplit(".", 1)[-1] for name in imported}
