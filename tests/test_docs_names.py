"""Names the docs give an operator exist in the code, and what the code offers is documented:
`CONVLIFE_*` variables, metric names, dead-letter reasons."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from events.parsing import REASON_CODES
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OPERATIONS = ROOT / "docs" / "operations.md"

TEST_SUITE_VARIABLES = {"CONVLIFE_TEST_REDIS", "CONVLIFE_TEST_REDIS_DB", "CONVLIFE_TEST_POSTGRES"}
"""Read by tests/conftest.py, not by convlife."""

NOT_METRICS = {"convlife_bench"}
"""Backticked `convlife_…` words that are something else (the benchmark's database)."""


def text_of(paths: list[Path]) -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in paths)


def variables_named_in(text: str) -> set[str]:
    # `CONVLIFE_DEFAULT_*` names a family, not a variable: a name ending in `_` is a prefix.
    # A header spelled as an environment key (Rack's HTTP_X_CONVLIFE_…) is not a variable.
    found = re.findall(r"(?<![A-Za-z0-9_])CONVLIFE_[A-Z0-9_]+", text)
    return {name for name in found if not name.endswith("_")}


def settings_variables() -> set[str]:
    return {f"CONVLIFE_{name.upper()}" for name in Settings.model_fields}


def test_every_variable_the_docs_name_is_a_setting() -> None:
    unknown = variables_named_in(text_of(DOCS)) - settings_variables() - TEST_SUITE_VARIABLES
    assert not unknown, f"docs name variables convlife does not read: {sorted(unknown)}"
    conftest = (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")
    assert all(name in conftest for name in TEST_SUITE_VARIABLES)


def test_every_setting_is_documented_in_operations_md() -> None:
    undocumented = settings_variables() - variables_named_in(text_of([OPERATIONS]))
    assert not undocumented, f"operations.md misses {sorted(undocumented)}"


def metrics_in_code() -> set[str]:
    """Metric family names in observability/metrics.py, as Prometheus exposes them (`_total` on
    counters)."""
    tree = ast.parse((ROOT / "observability" / "metrics.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith("convlife_"):
                suffix = "_total" if node.func.id == "CounterMetricFamily" else ""
                names.add(f"{first.value}{suffix}")
    return names


def metrics_in_docs() -> set[str]:
    found = re.findall(r"`(convlife_[a-z_]+)(?:\{[^}`]*\})?`", text_of(DOCS))
    return set(found) - NOT_METRICS


def test_every_metric_the_docs_name_exists_and_every_metric_is_documented() -> None:
    assert metrics_in_code(), "no metric found in observability/metrics.py: has it moved?"
    assert metrics_in_docs() == metrics_in_code()


def dead_letter_reasons_in_code() -> set[str]:
    """The reason codes a dead letter (and the metric's label) can carry."""
    return set(REASON_CODES)


def dead_letter_reasons_in_docs() -> set[str]:
    [row] = [
        line
        for line in OPERATIONS.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `convlife_dead_letters_total")
    ]
    named = set(re.findall(r"`([a-z_]+)`", row.split("|")[3]))
    return {name for name in named if not name.startswith("convlife_")}


def test_every_dead_letter_reason_the_docs_name_exists_and_back() -> None:
    assert dead_letter_reasons_in_code()
    assert dead_letter_reasons_in_docs() == dead_letter_reasons_in_code()
