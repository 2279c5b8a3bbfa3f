"""Grouped counts answered by Lance and Arrow: the same rows, names and types as the engine."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest

import lancesql


class EngineSpy:
    """Counts the statements a cursor hands its engine."""

    def __init__(self, cursor: lancesql.Cursor, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        engine = cursor._engine
        execute = engine.execute

        def counted(sql: str, params: Any) -> pa.RecordBatchReader:
            self.calls += 1
            return execute(sql, params)

        monkeypatch.setattr(engine, "execute", counted)


@pytest.fixture
def cur(con: lancesql.Connection) -> Iterator[lancesql.Cursor]:
    with con.cursor() as cursor:
        yield cursor


def sorted_rows(table: pa.Table) -> list[tuple]:
    return sorted(
        (tuple(row.values()) for row in table.to_pylist()),
        key=lambda r: [(v is None, v) for v in r],
    )


def same(a: list[tuple], b: list[tuple]) -> bool:
    """Equal rows, floats to the last few bits (summation order differs)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, float) and isinstance(v, float):
                if not math.isclose(u, v, rel_tol=1e-12):
                    return False
            elif u != v:
                return False
    return True


GROUPED = [
    "SELECT label, count(*) FROM mnist GROUP BY label",
    "SELECT count(*) FROM mnist",
    "SELECT count(*) AS n FROM mnist WHERE label_name = '7'",
    "SELECT label_name, count(*) AS n FROM mnist WHERE label > 100 GROUP BY label_name",
    "SELECT m.label, count(*) FROM mnist AS m GROUP BY m.label",
    "SELECT count(*) AS n, label FROM mnist AT (VERSION => 2) GROUP BY label",
    "SELECT label, label_name, count(*), count(label_name), sum(label) AS s, avg(label), "
    "min(label_name), max(id), min(id) FROM mnist WHERE label < 5 GROUP BY label, label_name",
    "SELECT max(label_name), sum(label), avg(label) FROM mnist WHERE id < 100",
    "SELECT count(*) FROM mnist GROUP BY label",
]


@pytest.mark.parametrize("sql", GROUPED)
def test_later_runs_skip_the_engine_and_give_its_result(
    cur: lancesql.Cursor, monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    spy = EngineSpy(cur, monkeypatch)
    first = cur.execute(sql).fetch_arrow_table()
    description = cur.description
    assert spy.calls == 1  # the first run is the engine's: its schema is the one to give
    second = cur.execute(sql).fetch_arrow_table()
    assert spy.calls == 1, "the second run went to the engine"
    assert second.schema == first.schema and cur.description == description
    assert same(sorted_rows(second), sorted_rows(first))


def test_counts_match_pylance(cur: lancesql.Cursor, mnist_root: Path) -> None:
    ds = lance.dataset(str(mnist_root / "mnist.lance"))
    expected = ds.to_table(columns=["label"]).group_by("label").aggregate([("label", "count")])
    want = sorted(zip(expected["label"].to_pylist(), expected["label_count"].to_pylist(), strict=True))
    for _ in range(2):
        assert sorted(cur.execute("SELECT label, count(*) FROM mnist GROUP BY label").fetchall()) == want


def test_parameters_in_the_where_are_bound_on_every_run(cur: lancesql.Cursor, mnist_root: Path) -> None:
    ds = lance.dataset(str(mnist_root / "mnist.lance"))
    sql = "SELECT label, count(*) FROM mnist WHERE label = ? GROUP BY label"
    for label in (3, 4, 3, 99, 4):
        want = ds.count_rows(filter=f"label = {label}")
        assert cur.execute(sql, [label]).fetchall() == ([(label, want)] if want else [])
    sql = "SELECT count(*) FROM mnist WHERE id < ?"
    for bound in (10, 2000, 10, 0):
        assert cur.execute(sql, [bound]).fetchall() == [(ds.count_rows(filter=f"id < {bound}"),)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT label, count(*) AS n FROM mnist GROUP BY label HAVING count(*) > 400",
        "SELECT label, count(*) FROM mnist GROUP BY label ORDER BY label",
        "SELECT label, count(*) FROM mnist GROUP BY label ORDER BY 2 DESC, 1 LIMIT 3",
        "SELECT count(DISTINCT label) FROM mnist",
        "SELECT label, sum(id) FROM mnist GROUP BY label",  # a 64-bit sum may overflow in Arrow
        "SELECT label + 1 AS l, count(*) FROM mnist GROUP BY label + 1",
        "SELECT label, count(*) FROM mnist WHERE label / 2 = 1 GROUP BY label",  # Lance divides otherwise
        "SELECT label FROM mnist GROUP BY label",
    ],
)
def test_other_shapes_go_to_the_engine(
    cur: lancesql.Cursor, monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    spy = EngineSpy(cur, monkeypatch)
    first = cur.execute(sql).fetchall()
    second = cur.execute(sql).fetchall()
    assert spy.calls == 2 and sorted(first) == sorted(second)


def test_a_new_version_and_deleted_rows_are_counted(wcon: lancesql.Connection, root: Path) -> None:
    cur = wcon.cursor()
    sql = "SELECT label, count(*) FROM mnist GROUP BY label"
    before = dict(cur.execute(sql).fetchall())
    assert dict(cur.execute(sql).fetchall()) == before
    ds = lance.dataset(str(root / "mnist.lance"))  # another writer
    ds.insert(ds.to_table(filter="label = 3", limit=10), mode="append")
    after = dict(cur.execute(sql).fetchall())
    assert after[3] == before[3] + 10 and sum(after.values()) == sum(before.values()) + 10
    lance.dataset(str(root / "mnist.lance")).delete("label = 4")
    assert 4 not in dict(cur.execute(sql).fetchall())
    assert cur.execute("SELECT count(*) FROM mnist").fetchall() == [(sum(after.values()) - after[4],)]


def test_a_changed_column_type_is_asked_of_the_engine_again(wcon: lancesql.Connection, root: Path) -> None:
    cur = wcon.cursor()
    sql = "SELECT label, sum(label) AS s FROM mnist GROUP BY label"
    before = cur.execute(sql).fetch_arrow_table()
    cur.execute(sql)
    ds = lance.dataset(str(root / "mnist.lance"))
    ds.drop_index("label_idx")
    ds.alter_columns({"path": "label", "data_type": pa.int64()})
    after = cur.execute(sql).fetch_arrow_table()
    again = cur.execute(sql).fetch_arrow_table()
    assert after.schema == again.schema
    assert after.schema.field("label").type == pa.int64() != before.schema.field("label").type
    assert sorted_rows(again) == sorted_rows(after) == sorted_rows(before)


def test_explain_says_a_grouping_skips_the_engine(cur: lancesql.Cursor) -> None:
    plan = cur.execute("EXPLAIN SELECT label, count(*) FROM mnist GROUP BY label").fetchall()
    assert "aggregates them with Arrow" in plan[0][1]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT k, min(b), max(b), min(d), max(d), sum(f), avg(f), count(f), max(s) FROM t GROUP BY k",
        "SELECT b, count(*), count(s) FROM t GROUP BY b",
        "SELECT d, sum(k) AS total, avg(k) FROM t GROUP BY d",
        "SELECT s, count(*) FROM t WHERE k IS NULL OR k > 1 GROUP BY s",
    ],
)
def test_nulls_nans_booleans_and_dates_agree_with_the_engine(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch, sql: str
) -> None:
    table = pa.table(
        {
            "k": pa.array([1, 1, 2, None, None], pa.int16()),
            "b": [True, False, None, True, None],
            "d": pa.array([dt.date(2020, 1, i) for i in (1, 2, 3, 4, 4)]),
            "f": [1.5, None, float("nan"), 2.0, None],
            "s": ["a", "b", None, "c", None],
        }
    )
    lance.write_dataset(table, tmp_path / "t.lance")
    with lancesql.connect(tmp_path, engine=engine) as con:
        cur = con.cursor()
        spy = EngineSpy(cur, monkeypatch)
        first = cur.execute(sql).fetch_arrow_table()
        second = cur.execute(sql).fetch_arrow_table()
        assert spy.calls == 1 and second.schema == first.schema
        # repr: NaN equals itself only as text
        assert sorted(map(repr, second.to_pylist())) == sorted(map(repr, first.to_pylist()))


# Each pair: a statement run first (on the engine), then one of the same shape but for its
# dataset's version, tag or WHERE, which skips the engine on its first run.
SAME_SHAPE = [
    ("SELECT count(*) AS rows FROM mnist", "SELECT count(*) AS rows FROM mnist AT (TAG => 'two')"),
    ("SELECT count(*) FROM mnist AT (VERSION => 3)", "SELECT count(*) FROM mnist WHERE label = 4"),
    (
        "SELECT label, count(*), max(id) FROM mnist GROUP BY label",
        "SELECT label, count(*), max(id) FROM mnist AT (VERSION => 2) WHERE id > 100 GROUP BY label",
    ),
]


@pytest.mark.parametrize(("first", "then"), SAME_SHAPE)
def test_a_statement_of_a_shape_already_run_skips_the_engine_on_its_first_run(
    wcon: lancesql.Connection, root: Path, monkeypatch: pytest.MonkeyPatch, first: str, then: str
) -> None:
    lance.dataset(str(root / "mnist.lance")).tags.create("two", 2)
    with lancesql.connect(root, engine=wcon.engine.name) as fresh:  # the engine's own answer
        want = fresh.execute(then).fetch_arrow_table()
    cur = wcon.cursor()
    spy = EngineSpy(cur, monkeypatch)
    cur.execute(first).fetchall()
    got = cur.execute(then).fetch_arrow_table()
    assert spy.calls == 1, "the statement of a known shape went to the engine"
    assert got.schema == want.schema and same(sorted_rows(got), sorted_rows(want))


def test_a_count_at_a_tag_is_pylances_count_at_that_version(wcon: lancesql.Connection, root: Path) -> None:
    ds = lance.dataset(str(root / "mnist.lance"))
    cur = wcon.cursor()
    for version in (1, 3, 2):
        ds.tags.create(f"v{version}", version)
        cur.execute(f"SELECT count(*) AS rows FROM mnist AT (TAG => 'v{version}')")
        assert cur.fetchall() == [(ds.checkout_version(version).count_rows(),)]


@pytest.mark.parametrize(
    ("first", "then"),
    [
        # the same text but for the alias: DataFusion names sum(label) by it
        ("SELECT sum(label) FROM mnist", "SELECT sum(label) FROM mnist AS m"),
        ("SELECT count(*) FROM mnist", "SELECT COUNT(*) AS n FROM mnist"),
        ("SELECT label, count(*) FROM mnist GROUP BY label", "SELECT label, count(*) FROM mnist GROUP BY 1"),
        # the same alias, another aggregate: the engine's type for it
        ("SELECT sum(label) AS x FROM mnist", "SELECT avg(label) AS x FROM mnist"),
        ('SELECT count(*) AS n FROM mnist', 'SELECT count(*) AS "N" FROM mnist'),
    ],
)
def test_a_different_shape_gets_the_engines_names(
    con: lancesql.Connection, mnist_root: Path, first: str, then: str
) -> None:
    cur = con.cursor()
    cur.execute(first).fetchall()
    got = cur.execute(then).fetch_arrow_table()
    with lancesql.connect(mnist_root, engine=con.engine.name) as fresh:
        want = fresh.execute(then).fetch_arrow_table()
    assert got.schema == want.schema and sorted_rows(got) == sorted_rows(want)
