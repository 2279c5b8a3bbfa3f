"""A WHERE reaches Lance only when Lance reads it as the engine does, literal types
included (issue 12): every column type against literals of other types, on every path a
filter can take (the engine's own scan, a pushed LIMIT, a plain read Lance answers, a
grouped count, DELETE), compared with the plain engine over the same rows as an Arrow
table (no lancesql): the oracle."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import datafusion
import duckdb
import lance
import pyarrow as pa
import pytest

import lancesql

D = decimal.Decimal
MOMENTS = [
    dt.datetime(2026, 1, 1),
    dt.datetime(2026, 1, 2),
    None,
    dt.datetime(2026, 1, 2, 12),
    dt.datetime(2025, 12, 31),
    dt.datetime(2026, 3, 1),
]
TABLE = pa.table(
    {
        "id": pa.array([1, 2, 3, 4, 5, 6], pa.int64()),
        "i8": pa.array([1, 3, -1, None, 3, 100], pa.int8()),
        "i16": pa.array([1, 3, -1, None, 3, 300], pa.int16()),
        "i32": pa.array([1, 3, -1, None, 3, 70000], pa.int32()),
        "i64": pa.array([1, 3, -1, None, 3, 2**40], pa.int64()),
        "u8": pa.array([1, 3, 0, None, 3, 255], pa.uint8()),
        "f32": pa.array([0.1, 1.0, 0.04, None, 3.0, 2.5], pa.float32()),
        "f64": pa.array([0.1, 1.0, 0.04, None, 3.0, 2.5], pa.float64()),
        "dec": pa.array([D("0.04"), D("1.00"), D("0.10"), None, D("3.00"), D("2.50")], pa.decimal128(15, 2)),
        "day": pa.array(
            [
                dt.date(2026, 1, 1),
                dt.date(2026, 1, 2),
                None,
                dt.date(2026, 1, 2),
                dt.date(2025, 12, 31),
                dt.date(2026, 3, 1),
            ]
        ),
        "ts": pa.array(
            MOMENTS,
            pa.timestamp("us"),
        ),
        "tstz": pa.array(
            MOMENTS,
            pa.timestamp("us", tz="UTC"),
        ),
        "s": pa.array(["abc", "1", "it's", None, "abc", "ü"], pa.string()),
        "b": pa.array([b"abc", b"1", b"", None, b"abc", b"\x00"], pa.large_binary()),
        "flag": pa.array([True, False, None, True, False, True]),
    }
)
TIMES = TABLE.append_column(
    "tm", pa.array([dt.time(1), dt.time(2), None, dt.time(1, 30), dt.time(0), dt.time(23)], pa.time64("us"))
)

LITERALS = [
    "1",
    "0.04",
    "0.1",
    "-1",
    "300",
    "'1'",
    "NULL",
    "true",
    "DATE '2026-01-02'",
    "TIMESTAMP '2026-01-02 00:00:00'",
    "TIMESTAMPTZ '2026-01-02 00:00:00+00'",
]
COLUMNS = [n for n in TABLE.column_names if n != "id"]


_PLAIN: dict[tuple[str, int], Any] = {}


def _oracle(engine: str, table: pa.Table, sql: str, name: str = "t") -> list[int] | type[Exception]:
    plain = _PLAIN.get((engine, id(table)))
    if plain is None:
        if engine == "duckdb":
            plain = duckdb.connect()
            plain.register(name, table)
        else:
            plain = datafusion.SessionContext()
            plain.register_record_batches(name, [table.to_batches()])
        _PLAIN[engine, id(table)] = plain
    try:
        if engine == "duckdb":
            return sorted(r[0] for r in plain.sql(sql).fetchall())
        return sorted(plain.sql(sql).to_arrow_table().column(0).to_pylist())
    except Exception:
        return Exception


def _lancesql(con: lancesql.Connection, sql: str) -> list[int] | type[Exception]:
    try:
        return sorted(r[0] for r in con.execute(sql).fetchall())
    except lancesql.Error:
        return Exception


@pytest.fixture(scope="module")
def typed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("typed")
    lance.write_dataset(TABLE, root / "t.lance", max_rows_per_file=4)  # two fragments
    lance.write_dataset(TIMES, root / "times.lance")
    return root


@pytest.mark.parametrize("column", COLUMNS)
def test_every_filter_path_agrees_with_the_engine(typed_root: Path, engine: str, column: str) -> None:
    with lancesql.connect(typed_root, engine=engine) as con:
        for literal in LITERALS:
            for op in ("=", ">"):
                where = f"{column} {op} {literal}"
                queries = [f"SELECT id FROM t WHERE {where} LIMIT 100"]  # the pushed LIMIT
                if op == "=":
                    queries += [
                        f"SELECT id FROM t WHERE {where}",  # a plain read (Lance answers when alike)
                        f"SELECT id FROM t WHERE {where} ORDER BY id",  # the engine's own scan
                        f"SELECT count(*) FROM t WHERE {where} GROUP BY flag",  # a grouped count
                    ]
                for sql in queries:
                    expected = _oracle(engine, TABLE, sql)
                    assert _lancesql(con, sql) == expected, sql


def test_the_issue_12_decimal_limit(typed_root: Path, engine: str) -> None:
    # was: "Received literal Float64(0.04) and could not convert to literal of type Decimal128"
    with lancesql.connect(typed_root, engine=engine) as con:
        assert con.execute("SELECT id FROM t WHERE dec = 0.04 LIMIT 5").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM times WHERE id = 2",
        "SELECT id, tm FROM times WHERE id < 3 ORDER BY id",
        "SELECT id FROM times WHERE tm IS NULL",
        "SELECT count(*) FROM times WHERE s = 'abc'",
        "SELECT id FROM times WHERE i8 = 3 LIMIT 10",
        "SELECT id FROM times WHERE tm > CAST('01:15:00' AS TIME)",
    ],
)
def test_a_table_with_a_time_column_filters(typed_root: Path, engine: str, sql: str) -> None:
    # issue 12: on DuckDB any filtered query failed ("Unsupported Substrait type: Time")
    with lancesql.connect(typed_root, engine=engine) as con:
        got = _lancesql(con, sql)
    assert got == _oracle(engine, TIMES, sql, "times")
    if engine == "duckdb":
        assert got is not Exception


def test_delete_with_a_literal_lance_reads_otherwise(tmp_path: Path, engine: str) -> None:
    lance.write_dataset(TABLE, tmp_path / "t.lance")
    with lancesql.connect(tmp_path, engine=engine) as con:
        con.execute("DELETE FROM t WHERE dec = 0.04 OR f32 = 0.1")
    expected = _oracle(engine, TABLE, "SELECT id FROM t WHERE NOT (dec = 0.04 OR f32 = 0.1) OR dec IS NULL")
    assert sorted(lance.dataset(tmp_path / "t.lance").to_table()["id"].to_pylist()) == expected
