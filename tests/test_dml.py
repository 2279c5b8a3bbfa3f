"""INSERT, DELETE and UPDATE: one Lance version each, rowcount set — on both engines."""

from __future__ import annotations

from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows


def version(root: Path) -> int:
    return int(lance.dataset(str(root / "mnist.lance")).version)


def test_insert_select_appends_one_version(wcon, root):
    before = version(root)
    cur = wcon.execute(
        "INSERT INTO mnist SELECT id + 10000, image, label, label_name, image_emb "
        "FROM mnist WHERE label = 3"
    )
    assert cur.rowcount == 500
    assert version(root) == before + 1
    assert rows(wcon, "SELECT count(*), count(DISTINCT id) FROM mnist") == [(5500, 5500)]
    # The copied rows are byte-identical, images and embeddings included.
    same = rows(
        wcon,
        "SELECT count(*) FROM mnist a JOIN mnist b ON a.id + 10000 = b.id "
        "WHERE a.image = b.image AND a.image_emb = b.image_emb",
    )
    assert same == [(500,)]


def test_insert_values_with_column_list_and_casts(wcon, root):
    before = version(root)
    cur = wcon.execute(
        "INSERT INTO mnist (id, label, label_name) VALUES (90000, 7, 'seven'), (90001, ?, 'eight')", [8]
    )
    assert cur.rowcount == 2
    assert version(root) == before + 1
    got = rows(wcon, "SELECT id, label, label_name, image IS NULL FROM mnist WHERE id >= 90000 ORDER BY id")
    assert got == [(90000, 7, "seven", True), (90001, 8, "eight", True)]
    ds = lance.dataset(str(root / "mnist.lance"))
    assert str(ds.schema.field("label").type) == "int32"  # the literal was cast to the table's type


def test_insert_schema_mismatch_is_a_clear_error(wcon, root):
    before = version(root)
    with pytest.raises(lancesql.ProgrammingError, match="5 columns"):
        wcon.execute("INSERT INTO mnist SELECT id, label FROM mnist")
    with pytest.raises(lancesql.ProgrammingError, match="no column 'nope'"):
        wcon.execute("INSERT INTO mnist (id, nope) VALUES (1, 2)")
    with pytest.raises(lancesql.ProgrammingError, match="image_emb"):
        wcon.execute("INSERT INTO mnist (id, image_emb) VALUES (1, 'not a vector')")
    with pytest.raises(lancesql.IntegrityError, match="NOT NULL"):
        wcon.execute("INSERT INTO mnist (label) VALUES (1)")
    with pytest.raises(lancesql.DataError):
        wcon.execute("INSERT INTO mnist (id, label) VALUES (1, 'abc')")
    assert version(root) == before


def test_delete_with_lance_filter(wcon, root):
    before = version(root)
    cur = wcon.execute("DELETE FROM mnist WHERE label = ? OR id < 10", [9])
    expected = rows(wcon, "SELECT count(*) FROM mnist AT (VERSION => 7) WHERE label = 9 OR id < 10")[0][0]
    assert cur.rowcount == expected > 0
    assert version(root) == before + 1
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE label = 9 OR id < 10") == [(0,)]
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(5000 - expected,)]


def test_delete_with_subquery_goes_through_engine(wcon, root):
    before = version(root)
    cur = wcon.execute(
        "DELETE FROM mnist WHERE id IN (SELECT id FROM mnist WHERE label = 4 ORDER BY id LIMIT 7)"
    )
    assert cur.rowcount == 7
    assert version(root) == before + 1
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE label = 4") == [(493,)]
    # A predicate nothing matches still commits its one version, as Lance does.
    cur = wcon.execute("DELETE FROM mnist WHERE id IN (SELECT id FROM mnist WHERE label = 42)")
    assert cur.rowcount == 0
    assert version(root) == before + 2


def test_update_with_lance_expressions(wcon, root):
    before = version(root)
    cur = wcon.execute("UPDATE mnist SET label_name = 'three', label = label + 100 WHERE label = 3")
    assert cur.rowcount == 500
    assert version(root) == before + 1
    got = rows(wcon, "SELECT DISTINCT label, label_name FROM mnist WHERE label_name = 'three'")
    assert got == [(103, "three")]


def test_update_where_needs_engine(wcon, root):
    before = version(root)
    cur = wcon.execute(
        "UPDATE mnist SET label_name = 'first' WHERE id IN (SELECT min(id) FROM mnist GROUP BY label)"
    )
    assert cur.rowcount == 10
    assert version(root) == before + 1
    assert rows(wcon, "SELECT count(DISTINCT label) FROM mnist WHERE label_name = 'first'") == [(10,)]


def test_failed_update_leaves_version(wcon, root):
    before = version(root)
    with pytest.raises(lancesql.ProgrammingError, match="no column"):
        wcon.execute("UPDATE mnist SET nope = 1")
    with pytest.raises(lancesql.DataError):
        wcon.execute("UPDATE mnist SET label = 'abc' WHERE id = 1")
    assert version(root) == before


def test_transactions_are_honest(wcon):
    wcon.commit()  # a no-op: every statement already committed its version
    with pytest.raises(lancesql.NotSupportedError, match="RESTORE"):
        wcon.rollback()


def row_ids(uri: str) -> dict[int, int]:
    """Each row's ``id`` to its Lance row id."""
    table = lance.dataset(uri).to_table(columns=["id"], with_row_id=True)
    return dict(zip(table.column("id").to_pylist(), table.column("_rowid").to_pylist(), strict=True))


def test_update_set_computed_by_engine(wcon, root):
    uri = str(root / "mnist.lance")
    before = version(root)
    ids_before = row_ids(uri)
    old = rows(wcon, "SELECT id, image, image_emb FROM mnist WHERE label > 4 ORDER BY id")
    cur = wcon.execute(
        "UPDATE mnist SET label_name = CASE WHEN label > 6 THEN 'big' ELSE 'mid' END WHERE label > 4"
    )
    assert cur.rowcount == 2500
    assert version(root) == before + 1
    got = rows(wcon, "SELECT label_name, count(*) FROM mnist WHERE label > 4 GROUP BY 1 ORDER BY 1")
    assert got == [("big", 1500), ("mid", 1000)]
    # The rest of each row is unchanged, no row is lost or doubled, and rows keep their ids.
    assert rows(wcon, "SELECT id, image, image_emb FROM mnist WHERE label > 4 ORDER BY id") == old
    assert rows(wcon, "SELECT count(*), count(DISTINCT id) FROM mnist") == [(5000, 5000)]
    assert row_ids(uri) == ids_before
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE label = 7") == [(500,)]
    with pytest.raises(lancesql.DataError):
        wcon.execute("UPDATE mnist SET label = CASE WHEN label > 6 THEN 'x' END WHERE label > 6")
    assert version(root) == before + 1


def test_quoted_column_names_reach_lance_as_columns(wcon, root):
    wcon.execute('CREATE TABLE q AS SELECT id AS "Id", label AS "my label" FROM mnist WHERE id < 100')
    wcon.execute('ALTER TABLE q ADD COLUMN "Big" AS ("my label" > 4)')
    assert wcon.execute('DELETE FROM q WHERE "Id" < 10').rowcount == 10
    updated = wcon.execute('UPDATE q SET "my label" = -1 WHERE "Big"').rowcount
    assert updated == rows(wcon, 'SELECT count(*) FROM mnist WHERE id BETWEEN 10 AND 99 AND label > 4')[0][0]
    assert rows(wcon, 'SELECT count(*) FROM q WHERE "my label" = -1') == [(updated,)]


def test_parameters_reach_lance_and_the_engine(wcon, root):
    # A parameter in a Lance filter, and in a subquery the engine runs.
    assert wcon.execute("DELETE FROM mnist WHERE label = ? AND id < ?", [1, 2000]).rowcount > 0
    cur = wcon.execute(
        "UPDATE mnist SET label_name = ? WHERE id IN (SELECT id FROM mnist WHERE label = ?)", ["THREE", 3]
    )
    assert cur.rowcount == 500
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE label_name = 'THREE'") == [(500,)]
    wcon.execute("ALTER TABLE mnist ADD COLUMN big AS (CASE WHEN label > ? THEN 1 ELSE 0 END)", [4])
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE big = 1") == rows(
        wcon, "SELECT count(*) FROM mnist WHERE label > 4"
    )


def test_one_cursor_sees_each_write_at_once(wcon):
    cur = wcon.cursor()
    assert cur.execute("SELECT count(*) FROM mnist WHERE label = 3").fetchall() == [(500,)]
    cur.execute("DELETE FROM mnist WHERE label = 3")
    assert cur.execute("SELECT count(*) FROM mnist WHERE label = 3").fetchall() == [(0,)]
    cur.execute("ALTER TABLE mnist ADD COLUMN twice AS (label * 2)")
    assert cur.execute("SELECT max(twice) FROM mnist").fetchall() == [(18,)]
    cur.execute("ALTER TABLE mnist RENAME COLUMN twice TO double")
    assert cur.execute("SELECT max(double) FROM mnist").fetchall() == [(18,)]
    cur.execute("INSERT INTO mnist (id, label) VALUES (99999, 3)")
    assert cur.execute("SELECT count(*) FROM mnist WHERE label = 3").fetchall() == [(1,)]
    cur.execute("CREATE OR REPLACE TABLE mnist AS SELECT id FROM mnist WHERE id = 99999")
    assert cur.execute("SELECT * FROM mnist").fetchall() == [(99999,)]


def test_double_division_in_add_column_runs_in_lance(wcon, monkeypatch):
    # ``CAST(a AS DOUBLE) / b`` is a double in every engine (x / 0 = inf, 0 / 0 = NaN), so
    # Lance computes it; the engine's backfill is not called.
    import lancesql.executors.local as local

    def no_backfill(*args, **kwargs):
        raise AssertionError("the engine computed a column Lance computes alike")

    wcon.execute("CREATE TABLE r AS SELECT id, label FROM mnist WHERE id < 50")
    monkeypatch.setattr(local, "backfill", no_backfill)
    wcon.execute(
        "ALTER TABLE r ADD COLUMN ratio DOUBLE AS (CAST(id AS DOUBLE) / label), "
        "ADD COLUMN odd BOOLEAN AS (id >= 25 AND label >= 5)"
    )
    got = rows(wcon, "SELECT id, label, ratio, odd FROM r ORDER BY id")
    assert len(got) == 50
    for id_, label, ratio, odd in got:
        expected = float("inf") if label == 0 and id_ else (id_ / label if label else None)
        if expected is None:
            assert ratio != ratio  # 0 / 0 is NaN, as DuckDB computes it
        else:
            assert ratio == expected
        assert odd == (id_ >= 25 and label >= 5)
