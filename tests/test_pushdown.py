"""What reaches Lance: columns, filters answered by scalar indices, and LIMIT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest
import sqlglot

import lancesql
from lancesql.context import StatementContext
from lancesql.query import bind, to_sql
from lancesql.rewrite import rewrite
from lancesql.udfs import TABLE_FUNCTIONS


def read_bytes(con: lancesql.Connection, table: str, sql: str) -> int:
    """Bytes Lance read from ``table`` while ``sql`` ran to completion."""
    cur = con.cursor()
    cur.execute(f"SELECT count(*) FROM {table}").fetchall()  # open and cache the handle
    ds = con.catalog.latest(con.catalog.uri_for(table))
    ds.io_stats_incremental()
    cur.execute(sql).fetchall()
    return int(ds.io_stats_incremental().read_bytes)


def test_a_query_that_does_not_name_image_reads_no_image_bytes(con: lancesql.Connection) -> None:
    with_images = read_bytes(con, "mnist", "SELECT label, image FROM mnist")
    without = read_bytes(con, "mnist", "SELECT label FROM mnist")
    images = lance.dataset(con.catalog.uri_for("mnist")).to_table(columns=["image"])["image"]
    image_bytes = sum(len(b) for b in images.to_pylist())
    assert with_images - without >= image_bytes
    assert without < image_bytes / 10


def scanned(con: lancesql.Connection, sql: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The scanner calls a DuckDB query made on Lance datasets."""
    calls: list[dict[str, Any]] = []
    real = lance.LanceDataset.scanner

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(dict(kwargs, _dataset=self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(lance.LanceDataset, "scanner", spy)
    con.cursor().execute(sql).fetchall()
    return calls


def engine_plan(con: lancesql.Connection, sql: str) -> str:
    """The engine's physical plan for ``sql``, as lancesql would run it."""
    cur = con.cursor()
    ctx = StatementContext(con, cur._engine)
    tree = rewrite(sqlglot.parse_one(sql, read="duckdb"), con.engine.rules, functions=TABLE_FUNCTIONS)
    bind(ctx, tree)
    text, _ = to_sql(ctx, tree)
    plan = cur._engine.execute(f"EXPLAIN {text}", []).read_all().to_pylist()
    return "\n".join(str(v) for row in plan for v in row.values())


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT id FROM mnist WHERE label = 3", "label_idx(BTree)"),
        ("SELECT id FROM mnist WHERE label_name = '7'", "label_name_idx(Bitmap)"),
    ],
)
def test_filters_on_indexed_columns_are_answered_by_the_index(
    mnist_root: Path, engine: str, sql: str, index: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lancesql.connect(mnist_root, engine=engine) as con:
        if engine == "duckdb":
            calls = [c for c in scanned(con, sql, monkeypatch) if c.get("filter") is not None]
            assert calls, "DuckDB pushed no filter into Lance"
            call = calls[0]
            dataset = call["_dataset"]
            plan = lance.LanceDataset.scanner(dataset, columns=call["columns"], filter=call["filter"])
            text = plan.explain_plan(True)
            assert "ScalarIndexQuery" in text and index in text, text
        else:
            text = engine_plan(con, sql)
            assert "ScalarIndexExec" in text and "FilteredReadExec" in text, text
        assert len(con.cursor().execute(sql).fetchall()) == 500


def test_limit_stops_the_scan_early(mnist_root: Path, tmp_path: Path, engine: str) -> None:
    # ten fragments, so that reading all of them and reading one differ
    table = lance.dataset(mnist_root / "mnist.lance").to_table(columns=["id", "image", "label"])
    lance.write_dataset(table, tmp_path / "frag.lance", max_rows_per_file=500)
    with lancesql.connect(tmp_path, engine=engine) as con:
        full = read_bytes(con, "frag", "SELECT image FROM frag")
        assert read_bytes(con, "frag", "SELECT image FROM frag LIMIT 5") < full / 20
        assert read_bytes(con, "frag", "SELECT id, image FROM frag WHERE label = 3 LIMIT 5") < full / 5
        got = con.cursor().execute("SELECT id, label FROM frag WHERE label = 3 LIMIT 5").fetchall()
        assert len(got) == 5 and {lbl for _, lbl in got} == {3}
        assert len(con.cursor().execute("SELECT * FROM frag LIMIT 3 OFFSET 4998").fetchall()) == 2


def test_limit_with_an_order_still_sees_every_row(con: lancesql.Connection) -> None:
    got = con.cursor().execute("SELECT id FROM mnist ORDER BY id DESC LIMIT 2").fetchall()
    assert got == [(4999,), (4998,)]


def test_quoted_column_names_reach_lance_as_columns(tmp_path: Path, engine: str) -> None:
    # Lance reads "x" as the string 'x': filters handed to it must quote names its own way
    schema = pa.schema([("id", pa.int64()), ("Label", pa.int64()), ("v", pa.list_(pa.float32(), 2))])
    table = pa.table(
        {"id": range(100), "Label": [i % 5 for i in range(100)], "v": [[float(i), 1.0] for i in range(100)]},
        schema=schema,
    )
    lance.write_dataset(table, tmp_path / "t.lance")
    with lancesql.connect(tmp_path, engine=engine) as con:
        got = con.cursor().execute('SELECT id FROM t WHERE "Label" = 3 ORDER BY id LIMIT 3').fetchall()
        assert got == [(3,), (8,), (13,)]
        got = con.cursor().execute('SELECT id FROM t WHERE "Label" = 3 LIMIT 50').fetchall()
        assert sorted(got) == [(i,) for i in range(3, 100, 5)]
        found = (
            con.cursor()
            .execute("SELECT id FROM vector_search('t', 'v', [1.0, 1.0], 3, filter => \"Label\" = 3)")
            .fetchall()
        )
        assert len(found) == 3 and all(i % 5 == 3 for (i,) in found)


def test_a_plain_filtered_read_is_answered_by_lance_alone(con: lancesql.Connection) -> None:
    ds = lance.dataset(con.catalog.uri_for("mnist"))
    expected = ds.to_table(columns=["id", "label_name"], filter="label = 3 AND id < 2000")
    cur = con.cursor()
    got = cur.execute("SELECT id, label_name AS name FROM mnist WHERE label = ? AND id < 2000", [3])
    assert [d[0] for d in got.description or []] == ["id", "name"]
    assert sorted(got.fetchall()) == sorted(
        zip(expected["id"].to_pylist(), expected["label_name"].to_pylist(), strict=True)
    )
    plan = cur.execute("EXPLAIN SELECT id FROM mnist WHERE label = 3").fetchall()
    assert "without running the engine" in plan[0][1]
    # what Lance cannot evaluate alike goes to the engine, with the same answer
    upper = cur.execute("SELECT id FROM mnist WHERE upper(label_name) = '3' AND label = 3").fetchall()
    assert sorted(upper) == sorted((i,) for i in ds.to_table(filter="label = 3")["id"].to_pylist())


def test_explain_shows_what_a_plain_scan_hands_lance(con: lancesql.Connection) -> None:
    sql = "EXPLAIN SELECT id FROM mnist WHERE label_name = '4' LIMIT 100"
    plans = dict(con.cursor().execute(sql).fetchall())
    if con.engine.name == "duckdb":  # lancesql hands the LIMIT and filter to Lance itself
        lance_plan = next(p for s, p in plans.items() if s.startswith("lance_scan("))
        assert "LIMIT 100 pushed" in lance_plan and "fetch=100" in lance_plan
        assert "label_name_idx(Bitmap)" in lance_plan
    else:  # DataFusion's Lance provider takes them: its plan shows the index and the limit
        engine_plan = plans["engine (datafusion)"]
        assert "ScalarIndexExec" in engine_plan and "fetch=100" in engine_plan


@pytest.mark.parametrize(
    ("sql", "columns", "where", "limit", "offset"),
    [
        ("SELECT id FROM mnist LIMIT 3", ["id"], None, 3, None),
        ("SELECT id, label FROM mnist WHERE label = 3 LIMIT 2 OFFSET 1", ["id", "label"], "label = 3", 2, 1),
        ("SELECT id FROM mnist OFFSET 4998", ["id"], None, None, 4998),
        (
            "SELECT label_name AS n FROM mnist WHERE label_name = '7' LIMIT 0",
            ["label_name"],
            "label_name = '7'",
            0,
            None,
        ),
    ],
)
def test_a_limited_plain_read_skips_the_engine(
    con: lancesql.Connection,
    monkeypatch: pytest.MonkeyPatch,
    sql: str,
    columns: list[str],
    where: str | None,
    limit: int | None,
    offset: int | None,
) -> None:
    ds = lance.dataset(con.catalog.uri_for("mnist"))
    expected = ds.to_table(columns=columns, filter=where, limit=limit, offset=offset)
    cur = con.cursor()
    monkeypatch.setattr(cur._engine, "execute", lambda *a: pytest.fail("the engine ran"))
    got = cur.execute(sql).fetchall()
    assert got == list(zip(*(expected[c].to_pylist() for c in columns), strict=True))
