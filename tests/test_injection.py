"""Injection on the write paths, property-based: random tag names, values, column names
and filter values never change what a statement does. Names are quoted by sqlglot
and values bound with ``?``; each example checks the table after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import lance
import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlglot import exp

import lancesql
from tests.conftest import rows

EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)

#: Characters users can type: any code point but lone surrogates and NUL.
text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=20,
)
#: Text that looks like an attack on the statement it is pasted into.
payloads = st.sampled_from(
    [
        "x'; DELETE FROM t; --",
        "x\"; DROP TABLE t; --",
        "a' OR '1'='1",
        "v1 AS OF VERSION 1",
        "../../etc",
        "v1; ALTER TABLE t DROP COLUMN s",
        "`x`",
        "x)--",
        "é",
        "",
    ]
)
names = st.one_of(text, payloads, st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,15}", fullmatch=True))

VALID_TAG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def valid_tag(name: str) -> bool:
    """Lance's rule for tag names, as lancesql documents it (ASCII letters, digits, ``.-_``)."""
    return (
        bool(VALID_TAG.fullmatch(name))
        and ".." not in name
        and not name.endswith((".", ".lock"))
        and len(name) <= 200
    )


def quoted(name: str) -> str:
    """``name`` as a quoted identifier, through sqlglot."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def literal(value: str) -> str:
    """``value`` as a string literal, through sqlglot."""
    return exp.Literal.string(value).sql("duckdb")


@pytest.fixture
def small(tmp_path: Path, engine: str) -> Iterator[lancesql.Connection]:
    """A root holding table ``t`` (id, s, b): 3 rows."""
    with lancesql.connect(tmp_path, engine=engine) as con:
        cur = con.cursor()
        cur.execute("CREATE TABLE t (id BIGINT, s VARCHAR, b BLOB)")
        cur.execute("INSERT INTO t VALUES (1, 'a', ?), (2, 'b', ?), (3, 'c', ?)", [b"x", b"y", b"z"])
        yield con


def state(con: lancesql.Connection) -> tuple:
    """What a statement must not change by accident: versions, rows, columns."""
    return (
        rows(con, "SELECT max(version) FROM lance_versions('t')"),
        rows(con, "SELECT * FROM t ORDER BY id"),
        [r[0] for r in rows(con, "DESCRIBE t")],
    )


@EXAMPLES
@given(name=names, how=st.sampled_from(["literal", "identifier"]))
def test_tag_names(small: lancesql.Connection, name: str, how: str) -> None:
    """Only valid names make a tag, and a tag statement does nothing but make or drop it."""
    before = state(small)
    spelled = literal(name) if how == "literal" else quoted(name)
    cur = small.cursor()
    try:
        cur.execute(f"ALTER TABLE t CREATE TAG {spelled}")
    except lancesql.Error as exc:
        assert isinstance(exc, lancesql.ProgrammingError), exc
        assert rows(small, "SHOW TAGS FROM t") == []
    else:
        tags = [r[0] for r in rows(small, "SHOW TAGS FROM t")]
        assert tags == [name] and valid_tag(name)
        cur.execute(f"ALTER TABLE t DROP TAG {spelled}")
        assert rows(small, "SHOW TAGS FROM t") == []
    assert state(small) == before


@EXAMPLES
@given(value=st.one_of(text, payloads), blob=st.binary(max_size=40), number=st.integers(-(2**63), 2**63 - 1))
def test_bound_values_round_trip(small: lancesql.Connection, value: str, blob: bytes, number: int) -> None:
    """Whatever a value holds, ``?`` stores exactly it, in exactly one new row."""
    before = rows(small, "SELECT count(*) FROM t")[0][0]
    cur = small.cursor()
    assert cur.execute("INSERT INTO t (id, s, b) VALUES (?, ?, ?)", [number, value, blob]).rowcount == 1
    assert rows(small, "SELECT count(*) FROM t")[0][0] == before + 1
    found = rows(small, "SELECT id, b FROM t WHERE s = ? AND id = ?", [value, number])
    assert found == [(number, blob)]
    cur.execute("DELETE FROM t WHERE id = ? AND s = ?", [number, value])
    assert rows(small, "SELECT count(*) FROM t")[0][0] == before


@EXAMPLES
@given(name=names)
def test_quoted_column_names(small: lancesql.Connection, name: str) -> None:
    """``ADD COLUMN "<any name>" AS (...)`` adds exactly that column, or refuses it."""
    assume(name.lower() not in {"id", "s", "b"})
    versions, data, columns = state(small)
    cur = small.cursor()
    try:
        cur.execute(f"ALTER TABLE t ADD COLUMN {quoted(name)} AS (id * 10)")
    except lancesql.Error as exc:
        assert isinstance(exc, lancesql.ProgrammingError | lancesql.NotSupportedError), exc
        assert state(small) == (versions, data, columns)
        return
    assert [r[0] for r in rows(small, "DESCRIBE t")] == [*columns, name]
    assert rows(small, f"SELECT {quoted(name)} FROM t ORDER BY id") == [(10,), (20,), (30,)]
    assert rows(small, "SELECT id, s, b FROM t ORDER BY id") == data
    cur.execute(f"ALTER TABLE t DROP COLUMN {quoted(name)}")
    assert [r[0] for r in rows(small, "DESCRIBE t")] == columns


@pytest.fixture(scope="module")
def mnist_ds(mnist_root: Path) -> lance.LanceDataset:
    return lance.dataset(str(mnist_root / "mnist.lance"))


@EXAMPLES
@given(value=st.one_of(text, payloads, st.integers(0, 9).map(str)), seed=st.integers(0, 4999))
def test_bound_search_filter(
    con: lancesql.Connection, mnist_ds: lance.LanceDataset, value: str, seed: int
) -> None:
    """``filter => label_name = ?`` keeps the rows pylance keeps for that value."""
    query = mnist_ds.take([seed], columns=["image_emb"]).column(0)[0].values.to_numpy()
    found = rows(
        con,
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 10, filter => label_name = ?)",
        [query, value],
    )
    expected = mnist_ds.to_table(
        columns=["id"],
        nearest={"column": "image_emb", "q": query, "k": 10, "metric": "cosine", "use_index": False},
        filter=pc.field("label_name") == value,
        prefilter=True,
    )
    assert sorted(r[0] for r in found) == sorted(expected.column("id").to_pylist())
    assert len(found) == (10 if value in {str(d) for d in range(10)} else 0)
    assert np.isfinite(query).all()
