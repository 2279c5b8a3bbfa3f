"""Each rewrite rule against its fixture file of input/output SQL pairs
(tests/fixtures/rewrite/<rule>.sql), as sqlglot's tests/fixtures/optimizer/*.sql are:
statements in pairs, input then expected output, ``#`` lines are comments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlglot

from lancesql.parse import DIALECT
from lancesql.rewrite.qualify_tables import qualify_tables

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "rewrite"
RULES = {"qualify_tables": qualify_tables}


def pairs(rule: str) -> Iterator[tuple[str, str]]:
    text = "\n".join(
        line for line in (FIXTURES / f"{rule}.sql").read_text().splitlines() if not line.startswith("#")
    )
    statements = [s.strip() for s in text.split(";\n") if s.strip()]
    assert len(statements) % 2 == 0, f"{rule}.sql: statements must come in pairs"
    for given, expected in zip(statements[::2], statements[1::2], strict=True):
        yield given.rstrip(";"), expected.rstrip(";")


CASES = [(rule, given, expected) for rule in RULES for given, expected in pairs(rule)]


@pytest.mark.parametrize(("rule", "given", "expected"), CASES, ids=[c[1][:60] for c in CASES])
def test_rule_fixture(rule: str, given: str, expected: str) -> None:
    tree = sqlglot.parse_one(given, read=DIALECT)
    assert RULES[rule](tree).sql("duckdb") == sqlglot.parse_one(expected, read=DIALECT).sql("duckdb")
