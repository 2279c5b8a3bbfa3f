"""Each rewrite rule against its fixture file of input and output SQL, as sqlglot's own
optimizer tests read ``tests/fixtures/optimizer/<rule>.sql``.

A fixture file ``tests/fixtures/rewrite/<rule>.sql`` holds pairs of statements, each
ending with ``;``: the input (DuckDB SQL) and the rule's output. A line starting with
``#`` is a comment on the next pair. For ``project_table_functions``, which writes only
the placeholders' ``meta``, the output lists the columns each placeholder's function
is asked for (``*`` for all).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from lancesql.engines.duckdb import DUCKDB_RULES
from lancesql.parse import DIALECT
from lancesql.rewrite import RULES
from lancesql.rewrite.bind_table_functions import META_KEY, bind_table_functions
from lancesql.rewrite.project_table_functions import COLUMNS_KEY, project_table_functions
from lancesql.udfs import TABLE_FUNCTIONS

FIXTURES = Path(__file__).parent / "fixtures" / "rewrite"


def _pairs(path: Path) -> list[tuple[str, str, str]]:
    statements = [s.strip() for s in path.read_text().split(";\n")]
    statements = [s.removesuffix(";").strip() for s in statements if s.strip()]
    cleaned = []
    for text in statements:
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        cleaned.append(" ".join(line.strip() for line in lines if line.strip()))
    assert len(cleaned) % 2 == 0, f"{path.name}: an input without its output"
    return [
        (path.stem, cleaned[i], cleaned[i + 1]) for i in range(0, len(cleaned), 2)
    ]


#: The rules that rewrite SQL, by name (the engines' rule lists are made of these).
SQL_RULES = {rule.__name__: rule for rule in (*RULES, *DUCKDB_RULES)}

CASES = [case for path in sorted(FIXTURES.glob("*.sql")) for case in _pairs(path)]


def _run(rule: str, tree: exp.Expression) -> str:
    if rule == "bind_table_functions":
        return bind_table_functions(tree, TABLE_FUNCTIONS).sql("duckdb")
    if rule == "project_table_functions":
        bound = project_table_functions(bind_table_functions(tree, TABLE_FUNCTIONS))
        return ", ".join(
            f"{t.name}: {'*' if t.meta[COLUMNS_KEY] is None else ' '.join(t.meta[COLUMNS_KEY])}"
            for t in bound.find_all(exp.Table)
            if META_KEY in t.meta
        )
    return SQL_RULES[rule](tree).sql("duckdb")


def test_every_rule_has_a_fixture_file() -> None:
    assert set(SQL_RULES) <= {path.stem for path in FIXTURES.glob("*.sql")}


@pytest.mark.parametrize(
    ("rule", "given", "expected"), CASES, ids=[f"{case[0]}-{i}" for i, case in enumerate(CASES)]
)
def test_rule(rule: str, given: str, expected: str) -> None:
    if rule != "project_table_functions":  # the others' output is SQL: compare it as sqlglot writes it
        expected = sqlglot.parse_one(expected, read=DIALECT).sql("duckdb")
    assert _run(rule, sqlglot.parse_one(given, read=DIALECT)) == expected
