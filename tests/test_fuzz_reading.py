"""Random queries over the reading surface: each runs or raises a DB-API error, never an
internal one, and both engines agree (differential testing). Random names and values
never change a statement's meaning (injection)."""

from __future__ import annotations

import lance
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

import lancesql
from tests.conftest import fuzz_settings

FUZZ = fuzz_settings(60)


def literal(value: object) -> str:
    """A value as SQL, quoted by sqlglot."""
    return exp.convert(value).sql("duckdb")


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)

sources = st.sampled_from(
    [
        "mnist",
        "mnist AT (VERSION => {v})",
        "mnist VERSION AS OF {v}",
        "lance_scan('mnist', {v})",
        "mnist AT (VERSION => 99)",  # an unknown version: an error on both
    ]
).flatmap(lambda s: st.integers(1, 7).map(lambda v: s.format(v=v)))

predicates = st.one_of(
    st.integers(-2, 11).map(lambda n: f"label = {n}"),
    st.lists(st.integers(0, 9), min_size=1, max_size=3).map(
        lambda xs: f"label IN {tuple(xs)}".replace(",)", ")")
    ),
    st.integers(-5, 5200).map(lambda n: f"id < {n}"),
    st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda ab: f"label BETWEEN {min(ab)} AND {max(ab)}"),
    st.integers(0, 9).map(lambda n: f"NOT (label = {n})"),
    st.one_of(st.integers(0, 9).map(str), text).map(lambda s: f"label_name = {literal(s)}"),
    text.map(lambda s: f"label_name LIKE {literal(s + '%')}"),
    st.just("lbl = 3"),  # an unknown column: an error on both
)


@st.composite
def queries(draw: st.DrawFn) -> str:
    source = draw(sources)
    where = draw(st.lists(predicates, max_size=2))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    if draw(st.booleans()):
        group = draw(st.sampled_from(["", "label", "label_name"]))
        # distinct: DataFusion (not lancesql) refuses two identical unaliased select expressions
        aggregates = st.sampled_from(
            [
                "count(*)",
                "sum(label)",
                "min(id)",
                "max(id)",
                "avg(label)",
                "count(label_name)",
                "min(label_name)",
            ]
        )
        aggs = draw(st.lists(aggregates, min_size=1, max_size=3, unique=True))
        select = ", ".join(([group] if group else []) + aggs)
        tail = f" GROUP BY {group}" if group else ""
        if group and draw(st.booleans()):
            tail += f" ORDER BY {group}"
        return f"SELECT {select} FROM {source}{clause}{tail}"
    names = st.sampled_from(["id", "label", "label_name"])
    columns = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    limit = draw(st.one_of(st.none(), st.integers(0, 40)))
    offset = draw(st.one_of(st.none(), st.integers(0, 10)))
    tail = " ORDER BY id" if "id" in columns else f" ORDER BY {', '.join(columns)}"
    if limit is not None and "id" in columns:
        tail += f" LIMIT {limit}" + (f" OFFSET {offset}" if offset is not None else "")
    return f"SELECT {', '.join(columns)} FROM {source}{clause}{tail}"


def outcome(con: lancesql.Connection, sql: str) -> object:
    """The rows of ``sql`` (sorted: some queries leave their order open) or its error's type.

    Each query runs twice, and both runs must agree: a later run may take another path
    (a grouping is answered by Lance and Arrow once the engine has given its schema).
    """
    runs = []
    for _ in range(2):
        try:
            cur = con.cursor().execute(sql)
            runs.append((sorted(cur.fetchall(), key=repr), cur.description))
        except lancesql.Error as exc:
            runs.append((type(exc), None))
    assert runs[0] == runs[1], sql
    return runs[0][0]


@FUZZ
@given(sql=queries())
def test_random_queries_run_or_fail_cleanly_and_engines_agree(
    both: dict[str, lancesql.Connection], sql: str
) -> None:
    duck = outcome(both["duckdb"], sql)
    fusion = outcome(both["datafusion"], sql)
    if isinstance(duck, list) and isinstance(fusion, list):
        assert duck == fusion, sql
    else:
        assert not isinstance(duck, list) and not isinstance(fusion, list), (sql, duck, fusion)


@FUZZ
@given(value=text)
def test_bound_values_are_values(both: dict[str, lancesql.Connection], value: str) -> None:
    ds = lance.dataset(both["duckdb"].catalog.uri_for("mnist"))
    expected = sum(1 for v in ds.to_table(columns=["label_name"])["label_name"].to_pylist() if v == value)
    for con in both.values():
        got = con.cursor().execute("SELECT count(*) FROM mnist WHERE label_name = ?", [value]).fetchone()
        assert got == (expected,)


@FUZZ
@given(tag=text.filter(bool))
def test_a_tag_name_is_only_ever_a_tag_name(both: dict[str, lancesql.Connection], tag: str) -> None:
    for con in both.values():
        for sql in (
            f"SELECT count(*) FROM mnist AT (TAG => {literal(tag)})",
            f"SELECT count(*) FROM mnist VERSION AS OF {literal(tag)}",
        ):
            with pytest.raises(lancesql.ProgrammingError) as info:
                con.cursor().execute(sql)
            assert f"no tag {tag!r}" in str(info.value)


@FUZZ
@given(name=text.filter(lambda s: s.strip() != "" and not lancesql.catalog.is_uri(s)))
def test_a_quoted_table_name_is_only_ever_a_name(both: dict[str, lancesql.Connection], name: str) -> None:
    quoted = exp.to_identifier(name, quoted=True).sql("duckdb")
    for con in both.values():
        if name == "mnist":
            continue
        with pytest.raises(lancesql.ProgrammingError) as info:
            con.cursor().execute(f"SELECT count(*) FROM {quoted}")
        assert f"unknown table {name!r}" in str(info.value)
