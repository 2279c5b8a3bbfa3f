"""CREATE TABLE [AS SELECT], DROP TABLE — on both engines."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows


def test_ctas_under_root_with_stable_row_ids(wcon, root):
    cur = wcon.execute(
        "CREATE TABLE four_nine AS SELECT id, image, label FROM mnist WHERE label IN (4, 9)"
    )
    assert cur.rowcount == 1000
    ds = lance.dataset(str(root / "four_nine.lance"))
    assert ds.version == 1 and ds.count_rows() == 1000
    assert ds.has_stable_row_ids
    assert str(ds.schema.field("image").type) == "large_binary"
    got = rows(wcon, "SELECT label, count(*) FROM four_nine GROUP BY label ORDER BY label")
    assert got == [(4, 500), (9, 500)]
    assert "four_nine" in [r[0] for r in rows(wcon, "SHOW TABLES")]


def test_ctas_at_a_quoted_path_from_an_old_version(wcon, root, tmp_path):
    target = tmp_path / "elsewhere" / "sub" / "train.lance"
    wcon.execute(f"CREATE TABLE '{target}' AS SELECT id, label FROM mnist AT (VERSION => 2) WHERE label = 1")
    expected = rows(wcon, "SELECT count(*) FROM mnist VERSION AS OF 2 WHERE label = 1")
    assert expected[0][0] > 0
    assert rows(wcon, f"SELECT count(*) FROM '{target}'") == expected
    assert lance.dataset(str(target)).has_stable_row_ids


def test_ctas_exists_replace_if_not_exists(wcon, root):
    wcon.execute("CREATE TABLE small AS SELECT id FROM mnist WHERE id < 10")
    with pytest.raises(lancesql.ProgrammingError, match=r"already exists.*OR REPLACE"):
        wcon.execute("CREATE TABLE small AS SELECT id FROM mnist")
    wcon.execute("CREATE TABLE IF NOT EXISTS small AS SELECT id FROM mnist")
    assert rows(wcon, "SELECT count(*) FROM small") == [(10,)]
    wcon.execute("CREATE OR REPLACE TABLE small AS SELECT id, label FROM mnist WHERE id < 20")
    ds = lance.dataset(str(root / "small.lance"))
    assert ds.version == 2  # one new version; the old one is kept
    assert rows(wcon, "SELECT count(*), max(label) IS NOT NULL FROM small") == [(20, True)]
    assert rows(wcon, "SELECT count(*) FROM small VERSION AS OF 1") == [(10,)]


def test_ctas_failure_leaves_no_dataset(wcon, root):
    with pytest.raises(lancesql.DatabaseError):
        wcon.execute("CREATE TABLE broken AS SELECT CAST(label_name || 'x' AS INTEGER) AS n FROM mnist")
    assert not os.path.exists(root / "broken.lance")
    assert "broken" not in [r[0] for r in rows(wcon, "SHOW TABLES")]


def test_create_empty_table_with_schema_and_insert(wcon, root):
    wcon.execute("CREATE TABLE t (id BIGINT NOT NULL, emb FLOAT[4], img BLOB, name VARCHAR, tags VARCHAR[])")
    ds = lance.dataset(str(root / "t.lance"))
    assert ds.count_rows() == 0 and ds.has_stable_row_ids
    schema = ds.schema
    assert str(schema.field("emb").type) == "fixed_size_list<item: float>[4]"
    assert str(schema.field("img").type) == "large_binary"
    assert str(schema.field("tags").type) == "list<item: string>"
    assert not schema.field("id").nullable
    wcon.execute("INSERT INTO t VALUES (1, [1, 2, 3, 4], 'abc', 'x', ['a', 'b'])")
    assert rows(wcon, "SELECT id, name FROM t") == [(1, "x")]
    with pytest.raises(lancesql.NotSupportedError, match=r"HUGEINT|INT128|not supported"):
        wcon.execute("CREATE TABLE u (x HUGEINT)")
    assert not os.path.exists(root / "u.lance")


def test_drop_table(wcon, root):
    wcon.execute("CREATE TABLE gone AS SELECT 1 AS x")
    assert rows(wcon, "SELECT x FROM gone") == [(1,)]
    wcon.execute("DROP TABLE gone")
    assert not os.path.exists(root / "gone.lance")
    with pytest.raises(lancesql.ProgrammingError, match="unknown table 'gone'"):
        wcon.execute("SELECT * FROM gone")
    with pytest.raises(lancesql.ProgrammingError, match="unknown table"):
        wcon.execute("DROP TABLE gone")
    wcon.execute("DROP TABLE IF EXISTS gone")
    # The name can be used again at once: the cache forgot the old dataset.
    wcon.execute("CREATE TABLE gone AS SELECT 2 AS y")
    assert rows(wcon, "SELECT * FROM gone") == [(2,)]


def test_writes_to_read_only_root_are_refused(tmp_path: Path):
    con = lancesql.connect("hf://datasets/someone/mnist-lance")
    with pytest.raises(lancesql.OperationalError, match="read-only"):
        con.execute("CREATE TABLE subset AS SELECT 1 AS x")
    with pytest.raises(lancesql.OperationalError, match="read-only"):
        con.execute("DROP TABLE train")


@pytest.mark.parametrize(
    "query",
    [
        "SELECT id, label * 2 AS twice, label_name AS name FROM mnist WHERE label IN (1, 2) LIMIT 300",
        "SELECT * FROM mnist VERSION AS OF 3 WHERE id < ?",
        "SELECT label, count(*) AS n FROM mnist GROUP BY label",
    ],
)
def test_ctas_same_rows_with_or_without_lance_scanner(wcon, root, query):
    params = [1000] if "?" in query else None
    wcon.execute(f"CREATE TABLE a AS {query}", params)
    wcon.execute("SET lancesql.direct_scan = false")
    wcon.execute(f"CREATE TABLE b AS {query}", params)
    a = lance.dataset(str(root / "a.lance")).to_table()
    b = lance.dataset(str(root / "b.lance")).to_table()
    assert a.schema.names == b.schema.names
    key = a.schema.names[0]
    assert a.sort_by(key).to_pylist() == b.sort_by(key).to_pylist()
    assert a.num_rows > 0


@pytest.mark.parametrize(
    ("sql_type", "arrow_type", "value", "expected"),
    [
        ("TIMESTAMP", "timestamp[us]", "TIMESTAMP '2026-11-01 10:00:00'", "2026-11-01 10:00:00"),
        ("DATETIME", "timestamp[us]", "TIMESTAMP '2026-11-01 10:00:00'", "2026-11-01 10:00:00"),
        ("TIMESTAMP_MS", "timestamp[ms]", "TIMESTAMP '2026-11-01 10:00:00'", "2026-11-01 10:00:00"),
        ("TIMESTAMPTZ", "timestamp[us, tz=UTC]", "TIMESTAMPTZ '2026-11-01 10:00:00+00'", "2026-11-01 10:00:00+00:00"),  # noqa: E501
        ("TIMESTAMP WITH TIME ZONE", "timestamp[us, tz=UTC]", "TIMESTAMPTZ '2026-11-01 10:00:00+00'", None),
        ("TIME", "time64[us]", "TIME '10:30:00'", "10:30:00"),
        ("DATE", "date32[day]", "DATE '2026-11-01'", "2026-11-01"),
        ("DECIMAL(15,2)", "decimal128(15, 2)", "0.04", "0.04"),
        ("NUMERIC(10,3)", "decimal128(10, 3)", "1.5", "1.500"),
        ("INTEGER", "int32", "7", "7"),
        ("INT8", "int64", "7", "7"),
        ("SMALLINT", "int16", "7", "7"),
        ("TINYINT", "int8", "7", "7"),
        ("UBIGINT", "uint64", "7", "7"),
        ("REAL", "float", "0.5", "0.5"),
        ("DOUBLE PRECISION", "double", "0.5", "0.5"),
        ("STRING", "string", "'x'", "x"),
        ("BYTEA", "large_binary", "NULL", None),
        ("BOOL", "bool", "true", "True"),
    ],
)
def test_create_table_maps_each_sql_type_to_its_arrow_type(wcon, root, sql_type, arrow_type, value, expected):
    # issue 12: TIMESTAMP and DATETIME were refused (sqlglot reads them as TIMESTAMPNTZ)
    wcon.execute(f"CREATE TABLE typed (a {sql_type})")
    assert str(lance.dataset(str(root / "typed.lance")).schema.field("a").type) == arrow_type
    wcon.execute(f"INSERT INTO typed SELECT {value}")
    (got,) = rows(wcon, "SELECT a FROM typed")[0]
    if expected is not None:
        assert str(got) == expected


def test_ctas_of_bytes_reads_through_a_handle_of_its_own(wcon, root):
    """A copy of image bytes scans the same version through a handle whose metadata
    cache is bounded, so what it learns of each page is not kept by the catalog's
    handle (memory flat in the rows copied), and hands free heap memory back."""
    from lancesql import memory
    from lancesql.writes import ONE_PASS_METADATA_CACHE_BYTES, _one_pass

    ds = lance.dataset(str(root / "mnist.lance"), version=2)
    copy = _one_pass(ds)
    assert copy is not ds and not copy.session().is_same_as(ds.session())
    assert copy.version == 2 and copy.count_rows() == ds.count_rows()
    before = ds.session().size_bytes()
    scanned = copy.scanner(columns=["id", "image"], batch_size=256).to_table()
    assert scanned.num_rows == ds.count_rows()
    assert ds.session().size_bytes() == before
    assert copy.session().size_bytes() <= ONE_PASS_METADATA_CACHE_BYTES
    if platform.libc_ver()[0] == "glibc":  # elsewhere there is nothing to hand back
        assert memory._TRIM is not None
    wcon.execute("CREATE TABLE old AS SELECT id, image FROM mnist AT (VERSION => 2) WHERE label = 3")
    expected = rows(wcon, "SELECT count(*) FROM mnist VERSION AS OF 2 WHERE label = 3")
    assert rows(wcon, "SELECT count(*) FROM old") == expected
