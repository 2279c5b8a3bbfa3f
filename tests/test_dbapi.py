"""PEP 249 in full, plus Arrow out, pandas and polars."""

from __future__ import annotations

import warnings
from pathlib import Path

import pyarrow as pa
import pytest

import lancesql


def test_module_globals() -> None:
    assert lancesql.apilevel == "2.0"
    assert lancesql.threadsafety in (0, 1, 2, 3)
    assert lancesql.paramstyle == "qmark"


def test_exception_hierarchy() -> None:
    assert issubclass(lancesql.Error, Exception)
    assert issubclass(lancesql.Warning, Exception)
    assert issubclass(lancesql.InterfaceError, lancesql.Error)
    assert issubclass(lancesql.DatabaseError, lancesql.Error)
    for cls in (
        lancesql.DataError,
        lancesql.OperationalError,
        lancesql.IntegrityError,
        lancesql.InternalError,
        lancesql.ProgrammingError,
        lancesql.NotSupportedError,
    ):
        assert issubclass(cls, lancesql.DatabaseError)


def test_description_names_and_types(con: lancesql.Connection) -> None:
    cur = con.cursor()
    assert cur.description is None
    cur.execute("SELECT id, label_name, image, label FROM mnist LIMIT 1")
    desc = cur.description
    assert desc is not None and [d[0] for d in desc] == ["id", "label_name", "image", "label"]
    assert all(len(d) == 7 for d in desc)
    assert desc[0][1] == lancesql.NUMBER and desc[0][1] != lancesql.STRING
    assert desc[1][1] == lancesql.STRING
    assert desc[2][1] == lancesql.BINARY
    assert desc[3][1] == lancesql.NUMBER


def test_fetch_calls_walk_one_result(con: lancesql.Connection) -> None:
    cur = con.cursor()
    cur.execute("SELECT id FROM mnist WHERE id < 10 ORDER BY id")
    assert cur.rowcount == -1
    assert cur.fetchone() == (0,)
    assert cur.fetchmany() == [(1,)]  # arraysize 1
    cur.arraysize = 3
    assert cur.fetchmany() == [(2,), (3,), (4,)]
    assert cur.fetchmany(2) == [(5,), (6,)]
    assert cur.fetchall() == [(7,), (8,), (9,)]
    assert cur.fetchone() is None
    assert cur.fetchall() == []


def test_fetching_streams_large_results(con: lancesql.Connection) -> None:
    cur = con.cursor()
    cur.execute("SELECT a.id FROM mnist AS a, mnist AS b WHERE b.id < 200")  # a million rows
    first = cur.fetchmany(5)
    assert len(first) == 5
    # the reader has not been drained: what is buffered is one batch, not the result
    assert len(cur._rows) < 1_000_000
    cur.close()


def test_parameters_are_bound_not_pasted(con: lancesql.Connection) -> None:
    cur = con.cursor()
    assert cur.execute("SELECT count(*) FROM mnist WHERE label = ?", [3]).fetchone() == (500,)
    assert cur.execute("SELECT count(*) FROM mnist WHERE label_name = ?", ["7"]).fetchone() == (500,)
    hostile = "7' OR '1' = '1"
    assert cur.execute("SELECT count(*) FROM mnist WHERE label_name = ?", [hostile]).fetchone() == (0,)
    assert cur.execute("SELECT ? AS s", ["it's ? not a param"]).fetchone() == ("it's ? not a param",)
    got = cur.execute("SELECT count(*) FROM mnist WHERE label IN (?, ?) AND id < ?", (1, 2, 1000)).fetchone()
    assert got is not None and got[0] > 0


def test_wrong_parameter_counts_are_programming_errors(con: lancesql.Connection) -> None:
    cur = con.cursor()
    with pytest.raises(lancesql.ProgrammingError, match=r"1 parameter .* 2 values"):
        cur.execute("SELECT ? AS a", [1, 2])
    with pytest.raises(lancesql.ProgrammingError, match=r"2 parameters .* 0 values"):
        cur.execute("SELECT ? AS a, ? AS b")
    with pytest.raises(lancesql.ProgrammingError, match="sequence"):
        cur.execute("SELECT ? AS a", "x")


def test_executemany_runs_once_per_parameter_set(con: lancesql.Connection) -> None:
    cur = con.cursor()
    cur.executemany("SELECT count(*) FROM mnist WHERE label = ?", [[1], [2], [3]])
    assert cur.fetchall() == [(500,)]  # the last statement's result remains


def test_arrow_out(con: lancesql.Connection) -> None:
    cur = con.cursor()
    table = cur.execute("SELECT id, image_emb FROM mnist WHERE id < 100").fetch_arrow_table()
    assert table.num_rows == 100
    assert table.schema.field("image_emb").type == pa.list_(pa.float32(), 512)
    reader = cur.execute("SELECT id FROM mnist").fetch_record_batch(rows_per_batch=1000)
    assert isinstance(reader, pa.RecordBatchReader)
    sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 5000 and max(sizes) <= 1000
    cur.execute("SELECT id FROM mnist ORDER BY id")
    assert cur.fetchone() == (0,)
    assert cur.fetch_arrow_table().num_rows == 4999  # the rest, after what was fetched


def test_context_managers_close(mnist_root: Path, engine: str) -> None:
    with lancesql.connect(mnist_root, engine=engine) as con:
        with con.cursor() as cur:
            cur.execute("SELECT 1 AS one")
        with pytest.raises(lancesql.InterfaceError, match="cursor is closed"):
            cur.execute("SELECT 1 AS one")
    with pytest.raises(lancesql.InterfaceError, match="connection is closed"):
        con.cursor()


def test_commit_is_a_no_op_and_rollback_is_not_supported(con: lancesql.Connection) -> None:
    con.commit()
    with pytest.raises(lancesql.NotSupportedError, match="RESTORE TABLE"):
        con.rollback()


def test_fetch_without_a_result_is_an_error(con: lancesql.Connection) -> None:
    cur = con.cursor()
    with pytest.raises(lancesql.ProgrammingError, match="no result"):
        cur.fetchall()


def test_several_statements_keep_the_last_result(con: lancesql.Connection) -> None:
    cur = con.cursor()
    assert cur.execute("SELECT 1 AS a; SELECT count(*) FROM mnist WHERE label = 9").fetchall() == [(500,)]


def test_cursors_are_independent(con: lancesql.Connection) -> None:
    a, b = con.cursor(), con.cursor()
    a.execute("SELECT id FROM mnist WHERE label = 1 ORDER BY id")
    b.execute("SELECT id FROM mnist WHERE label = 2 ORDER BY id")
    assert a.fetchone() != b.fetchone()
    assert len(a.fetchall()) == 499 and len(b.fetchall()) == 499


def test_pandas_read_sql(con: lancesql.Connection) -> None:
    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' note that only sqlite3 is tested
        frame = pd.read_sql("SELECT label, count(*) AS n FROM mnist GROUP BY label ORDER BY label", con)
        assert list(frame.columns) == ["label", "n"]
        assert frame["n"].sum() == 5000 and len(frame) == 10
        frame = pd.read_sql("SELECT id FROM mnist WHERE label = ?", con, params=[4])
    assert len(frame) == 500


def test_polars_read_database(con: lancesql.Connection) -> None:
    pl = pytest.importorskip("polars")
    frame = pl.read_database("SELECT label, count(*) AS n FROM mnist GROUP BY label ORDER BY label", con)
    assert frame.columns == ["label", "n"] and frame["n"].sum() == 5000
