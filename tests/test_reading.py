"""Reading by name, path and version, in every form the SPEC lists, on both engines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows

# The example dataset: versions 1..4 appended 1,250 rows each, 5..7 built indices.
ROWS_AT = {1: 1250, 2: 2500, 3: 3750, 4: 5000, 7: 5000}


@pytest.mark.parametrize("version", sorted(ROWS_AT))
def test_at_version(con: lancesql.Connection, version: int) -> None:
    assert rows(con, f"SELECT count(*) FROM mnist AT (VERSION => {version})") == [(ROWS_AT[version],)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM mnist VERSION AS OF 2",
        "SELECT count(*) FROM mnist FOR VERSION AS OF 2",
        "SELECT count(*) FROM lance_scan('mnist', 2)",
        "SELECT count(*) FROM lance_scan('{uri}', 2)",
        "SELECT count(*) FROM lance_scan('{uri}', version => 2)",
    ],
)
def test_version_forms_agree(con: lancesql.Connection, sql: str) -> None:
    uri = con.catalog.uri_for("mnist")
    assert rows(con, sql.format(uri=uri)) == [(2500,)]


def test_quoted_path_and_lance_scan_read_any_dataset(con: lancesql.Connection) -> None:
    uri = con.catalog.uri_for("mnist")
    assert rows(con, f"SELECT count(*) FROM '{uri}'") == [(5000,)]
    assert rows(con, f"SELECT count(*) FROM lance_scan('{uri}')") == [(5000,)]


def test_a_relative_path_means_the_root_for_reads_and_writes(
    root: Path, engine: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue 12: CTAS resolved 'subsets/x.lance' against the root, SELECT against the cwd
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    with lancesql.connect(root, engine=engine) as con:
        con.execute("CREATE TABLE 'subsets/x.lance' AS SELECT id, label FROM mnist WHERE label = 4")
        assert (root / "subsets" / "x.lance").is_dir() and not Path("subsets").exists()
        expected = lance.dataset(root / "mnist.lance").count_rows("label = 4")  # pylance: the oracle
        for sql in (
            "SELECT count(*) FROM 'subsets/x.lance'",
            "SELECT count(*) FROM './subsets/x.lance'",
            "SELECT count(*) FROM lance_scan('subsets/x.lance')",
            "SELECT count(*) FROM 'subsets/x.lance' VERSION AS OF 1",
        ):
            assert rows(con, sql) == [(expected,)], sql
        con.execute("INSERT INTO 'subsets/x.lance' SELECT id, label FROM mnist WHERE id = 0")
        assert lance.dataset(root / "subsets" / "x.lance").count_rows() == expected + 1
        assert rows(con, f"SELECT count(*) FROM '{root}/mnist.lance'") == [(5000,)]  # absolute: as written


def test_tags_work_everywhere_a_version_does(root: Path, engine: str) -> None:
    lance.dataset(root / "mnist.lance").tags.create("first-batch", 1)
    with lancesql.connect(root, engine=engine) as con:
        for sql in (
            "SELECT count(*) FROM mnist AT (TAG => 'first-batch')",
            "SELECT count(*) FROM mnist VERSION AS OF 'first-batch'",
            "SELECT count(*) FROM lance_scan('mnist', 'first-batch')",
        ):
            assert rows(con, sql) == [(1250,)], sql


def test_timestamps_pick_the_version_current_at_that_time(con: lancesql.Connection) -> None:
    ds = lance.dataset(con.catalog.uri_for("mnist"))
    when = {v["version"]: v["timestamp"] for v in ds.versions()}
    # a moment after version 2 was written and before version 3
    t = when[2] + (when[3] - when[2]) / 2
    stamp = t.isoformat(sep=" ")
    assert rows(con, f"SELECT count(*) FROM mnist AT (TIMESTAMP => TIMESTAMP '{stamp}')") == [(2500,)]
    assert rows(con, f"SELECT count(*) FROM mnist TIMESTAMP AS OF '{stamp}'") == [(2500,)]
    assert rows(con, f"SELECT count(*) FROM lance_scan('mnist', TIMESTAMP '{stamp}')") == [(2500,)]
    assert rows(con, "SELECT count(*) FROM lance_scan('mnist', ?)", [t]) == [(2500,)]


def test_a_time_before_the_table_existed_is_an_error(con: lancesql.Connection) -> None:
    before = dt.datetime(2000, 1, 1)
    with pytest.raises(lancesql.ProgrammingError, match="did not exist at 2000-01-01"):
        rows(con, "SELECT count(*) FROM lance_scan('mnist', ?)", [before])


def test_label_distribution_of_several_versions_in_one_query(con: lancesql.Connection) -> None:
    got = rows(
        con,
        """
        SELECT v, label, count(*) AS n FROM (
            SELECT 1 AS v, label FROM mnist AT (VERSION => 1)
            UNION ALL SELECT 4 AS v, label FROM mnist AT (VERSION => 4)
        ) GROUP BY v, label ORDER BY v, label
        """,
    )
    ds = lance.dataset(con.catalog.uri_for("mnist"))
    for version in (1, 4):
        labels = ds.checkout_version(version).to_table(columns=["label"])["label"].to_pylist()
        expected = [(version, lbl, labels.count(lbl)) for lbl in sorted(set(labels))]
        assert [r for r in got if r[0] == version] == expected


def test_rows_added_since_version_one_by_anti_join(con: lancesql.Connection) -> None:
    got = rows(
        con,
        """
        SELECT count(*) FROM mnist AS new
        WHERE NOT EXISTS (SELECT 1 FROM mnist AT (VERSION => 1) AS old WHERE old.id = new.id)
        """,
    )
    assert got == [(5000 - 1250,)]
    got = rows(
        con,
        "SELECT count(*) FROM mnist AS n LEFT JOIN mnist VERSION AS OF 1 AS o USING (id) WHERE o.id IS NULL",
    )
    assert got == [(3750,)]


def test_self_join_of_two_versions(con: lancesql.Connection) -> None:
    got = rows(
        con,
        """
        SELECT count(*), sum(CASE WHEN a.label = b.label THEN 1 ELSE 0 END)
        FROM mnist AT (VERSION => 2) AS a JOIN mnist AT (VERSION => 4) AS b ON a.id = b.id
        """,
    )
    assert got == [(2500, 2500)]


def test_ctes_are_not_mistaken_for_tables(con: lancesql.Connection) -> None:
    got = rows(con, "WITH mnist AS (SELECT 1 AS x) SELECT * FROM mnist")
    assert got == [(1,)]
    got = rows(con, "WITH threes AS (SELECT id FROM mnist WHERE label = 3) SELECT count(*) FROM threes")
    assert got == [(500,)]


def test_queries_without_tables_run_on_the_engine(con: lancesql.Connection) -> None:
    assert rows(con, "SELECT 1 + 1 AS two") == [(2,)]


def test_describe_shows_lance_types_at_any_version(con: lancesql.Connection) -> None:
    got = rows(con, "DESCRIBE mnist")
    assert [(name, typ) for name, typ, _ in got] == [
        ("id", "int64"),
        ("image", "large_binary"),
        ("label", "int32"),
        ("label_name", "string"),
        ("image_emb", "fixed_size_list<item: float>[512]"),
    ]
    assert rows(con, "DESCRIBE mnist AT (VERSION => 1)") == got
    assert [r[0] for r in rows(con, "DESCRIBE SELECT id, label FROM mnist")] == ["id", "label"]


def test_lance_scan_is_a_native_datafusion_table_function(mnist_root: Path) -> None:
    with lancesql.connect(mnist_root, engine="datafusion") as con:
        ctx = con.cursor()._engine.ctx  # SQL sent to DataFusion directly, past the rewriter
        got = ctx.sql("SELECT count(*) AS n FROM lance_scan('mnist', 2)").to_pydict()
        assert got == {"n": [2500]}
        got = ctx.sql("SELECT count(*) AS n FROM lance_scan('mnist') WHERE label = 3").to_pydict()
        assert got == {"n": [500]}


def test_an_aware_timestamp_is_compared_in_local_time(con: lancesql.Connection) -> None:
    ds = lance.dataset(con.catalog.uri_for("mnist"))
    when = {v["version"]: v["timestamp"] for v in ds.versions()}
    naive = when[2] + (when[3] - when[2]) / 2
    aware = naive.astimezone(dt.timezone(dt.timedelta(hours=-5)))  # the same instant, elsewhere
    assert rows(con, "SELECT count(*) FROM lance_scan('mnist', ?)", [aware]) == [(2500,)]


def _plain_duckdb(mnist_root: Path, sql: str) -> list[tuple]:
    """The oracle: DuckDB itself, no lancesql, over the same rows as an Arrow table."""
    import duckdb

    mnist = lance.dataset(mnist_root / "mnist.lance").to_table(columns=["id", "label", "label_name"])
    db = duckdb.connect()
    db.register("mnist", mnist)
    return sorted(db.sql(sql).fetchall())


@pytest.mark.parametrize(
    "sql",
    [
        # issue 12: the CTE inside the subquery hid the Lance table outside it
        "SELECT mnist.id FROM mnist "
        "JOIN (WITH mnist AS (SELECT 1 AS id) SELECT id FROM mnist) AS s USING (id)",
        "SELECT count(*) FROM mnist WHERE id IN (WITH mnist AS (SELECT 3 AS id) SELECT id FROM mnist)",
        "WITH mnist AS (SELECT id, label FROM mnist WHERE label = 3) SELECT count(*), min(id) FROM mnist",
        "WITH c AS (SELECT 7 AS id) SELECT s.id FROM (SELECT id FROM c) AS s JOIN mnist USING (id)",
        "SELECT id FROM mnist WHERE id < 3 UNION ALL (WITH mnist AS (SELECT 99 AS id) SELECT id FROM mnist)",
    ],
)
def test_cte_names_are_resolved_by_scope(con: lancesql.Connection, mnist_root: Path, sql: str) -> None:
    assert sorted(rows(con, sql)) == _plain_duckdb(mnist_root, sql)


@pytest.mark.parametrize(("offset", "n"), [(0, 3), (2, 1), (0, 1)])
def test_fetch_with_ties_keeps_every_tied_row(con: lancesql.Connection, offset: int, n: int) -> None:
    # Neither engine runs WITH TIES; the answer is SQL's, worked out here from all rows.
    everything = sorted(rows(con, "SELECT label, id FROM mnist"))
    last = everything[offset + n - 1][0]
    expected = [r for r in everything[offset:] if r[0] <= last]
    sql = f"SELECT label, id FROM mnist ORDER BY label OFFSET {offset} ROWS FETCH FIRST {n} ROWS WITH TIES"
    got = rows(con, sql)
    assert len(got) == len(expected) > n
    assert [r[0] for r in got] == [r[0] for r in expected]  # in order, as many of each label
    assert rows(con, "SELECT id FROM mnist ORDER BY id FETCH FIRST 2 ROWS ONLY") == [(0,), (1,)]
    with pytest.raises(lancesql.ProgrammingError, match="ORDER BY"):
        rows(con, "SELECT id FROM mnist FETCH FIRST 2 ROWS WITH TIES")
