"""Parsing reads the tokens once: ``?`` markers are numbered in the token list the
parser reads, with the same trees as parsing the numbered text, and errors placed in
the user's text."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

import lancesql
from lancesql.parse import DIALECT, parse, preprocess

STATEMENTS = [
    "SELECT ?::FLOAT[2], ? FROM t WHERE a = ? AND b = '?'",
    "SELECT ?::/* d */FLOAT[2] FROM t",
    "SELECT * FROM vector_search('t', 'e', ?, 10, filter => 'a < 3') -- note\n",
    "SELECT 1; SELECT ? /* c */ + 1",
    "SELECT * FROM t AT (TAG => 'v') WHERE x = ?",
    "SELECT count(*) AS n FROM t AT (TAG => 'v')",
    "SELECT * FROM t AT (TAG => ?) AS a JOIN t AT (VERSION => 2) AS b USING (id)",
    "SHOW INDEXES FROM t AT (TAG => 'v')",
    "ALTER TABLE t CREATE OR REPLACE TAG 'v' AS OF VERSION 3",
    "SELECT * FROM t AT (BRANCH => 'exp', VERSION => ?)",
    "ALTER TABLE t CREATE TAG ? AS OF VERSION ?",
    "RESTORE TABLE t TO VERSION ?",
    "SHOW TABLES",
    "INSERT INTO t VALUES (?, ?), (?, X'00')",
]


def _texts(trees: list[exp.Expression]) -> list[tuple[str, str]]:
    return [(repr(t), t.sql(dialect=DIALECT)) for t in trees]


@pytest.mark.parametrize("sql", STATEMENTS)
def test_parsed_as_the_numbered_text(sql: str) -> None:
    text, count = preprocess(sql)
    trees = sqlglot.parse(text + " ", read=DIALECT)
    expected = [t for t in trees if t is not None and not isinstance(t, exp.Semicolon)]
    parsed = parse(sql)
    assert parsed.parameters == count
    assert _texts(parsed.statements) == _texts(expected)


def test_a_command_keeps_its_numbered_parameters() -> None:
    (tree,) = parse("ALTER TABLE t CREATE TAG ?").statements
    assert "$1" in tree.sql(dialect=DIALECT)


def test_parse_errors_after_a_parameter_point_at_the_users_text() -> None:
    sql = "SELECT id FROM mnist WHERE label = ? AND"
    with pytest.raises(lancesql.ProgrammingError) as caught:
        parse(sql)
    message = str(caught.value)
    assert message.startswith(f"SQL does not parse at line 1, column {len(sql)} near 'AND'")
    assert message.endswith(f"LINE 1: {sql}\n" + " " * (8 + sql.index("AND")) + "^^^")
