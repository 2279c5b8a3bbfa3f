"""lance_changes('t', from, to): rows inserted, updated and deleted between two versions."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import lance
import pyarrow as pa
import pytest

import lancesql
from lancesql.udfs.lance_changes import ChangesWarning
from tests.conftest import rows


def dataset(root: Path) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"))


def fetch(con: lancesql.Connection, sql: str, params: list | None = None) -> pa.Table:
    """The result as Arrow, and no ChangesWarning (the lineage path warns of nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChangesWarning)
        return con.cursor().execute(sql, params).fetch_arrow_table()


def by_change(table: pa.Table) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"insert": [], "update": [], "delete": []}
    for change, i in zip(table["_change"].to_pylist(), table["id"].to_pylist(), strict=True):
        out[change].append(i)
    return {k: sorted(v) for k, v in out.items()}


def edit(root: Path) -> dict[str, object]:
    """Version 8: relabel ids < 20; 9: delete ids 100..109; 10: append ids 9000..9004;
    11: relabel appended row 9000; 12: delete appended row 9001."""
    ds = dataset(root)
    before = {r["id"]: r["label"] for r in ds.to_table(columns=["id", "label"]).to_pylist()}
    ds.update({"label": "label + 10"}, where="id < 20")
    ds.delete("id >= 100 AND id < 110")
    extra = ds.to_table(limit=5).set_column(0, "id", pa.array(range(9000, 9005), pa.int64()))
    ds.insert(extra)
    ds = dataset(root)
    ds.update({"label": "77"}, where="id = 9000")
    ds.delete("id = 9001")
    return {"before": before}


def test_inserts_between_appends_are_the_anti_join(con: lancesql.Connection) -> None:
    table = fetch(con, "SELECT * FROM lance_changes('mnist', 1, 4)")
    assert table.schema.names == ["_change", "id", "image", "label", "label_name", "image_emb"]
    assert set(table["_change"].to_pylist()) == {"insert"}
    anti = rows(
        con,
        "SELECT n.id FROM mnist AT (VERSION => 4) n "
        "WHERE NOT EXISTS (SELECT 1 FROM mnist AT (VERSION => 1) o WHERE o.id = n.id) ORDER BY 1",
    )
    assert sorted(table["id"].to_pylist()) == [r[0] for r in anti]
    # The rows' own columns come along, image bytes included.
    assert all(isinstance(b, bytes) and b[:4] == b"\x89PNG" for b in table["image"].to_pylist()[:5])


def test_inserts_updates_and_deletes(wcon: lancesql.Connection, root: Path) -> None:
    before = edit(root)["before"]
    assert isinstance(before, dict)
    table = fetch(wcon, "SELECT * FROM lance_changes('mnist', 7, 12)")
    got = by_change(table)
    assert got == {
        "insert": [9000, 9002, 9003, 9004],
        "update": list(range(20)),
        "delete": list(range(100, 110)),
    }
    labels = dict(zip(table["id"].to_pylist(), table["label"].to_pylist(), strict=True))
    # Updated rows carry their new values, deleted rows their last ones.
    assert all(labels[i] == before[i] + 10 for i in range(20))
    assert all(labels[i] == before[i] for i in range(100, 110))
    # A row inserted then updated within the range is an insert, with its latest values.
    assert labels[9000] == 77


def test_each_step_and_the_default_end(wcon: lancesql.Connection, root: Path) -> None:
    edit(root)
    counts = "SELECT _change, count(*) FROM lance_changes('mnist', {}) GROUP BY 1 ORDER BY 1"
    assert rows(wcon, counts.format("7, 8")) == [("update", 20)]
    assert rows(wcon, counts.format("8, 9")) == [("delete", 10)]
    assert rows(wcon, counts.format("9, 10")) == [("insert", 5)]
    assert rows(wcon, counts.format("10, 11")) == [("update", 1)]
    assert rows(wcon, counts.format("11, 12")) == [("delete", 1)]
    assert rows(wcon, counts.format("10")) == [("delete", 1), ("update", 1)]
    assert rows(wcon, counts.format("9")) == [("insert", 4)]  # 9001 came and went
    # Named arguments and tags work as anywhere.
    wcon.execute("ALTER TABLE mnist CREATE TAG 'base' AS OF VERSION 9")
    assert rows(wcon, counts.format("from_version => 'base', to_version => 10")) == [("insert", 5)]


def test_no_change_is_an_empty_result_with_the_columns(con: lancesql.Connection) -> None:
    cur = con.cursor().execute("SELECT * FROM lance_changes('mnist', 5, 7)")
    assert cur.fetchall() == []
    assert [d[0] for d in cur.description] == [
        "_change",
        "id",
        "image",
        "label",
        "label_name",
        "image_emb",
    ]
    assert rows(con, "SELECT count(*) FROM lance_changes('mnist', 3, 3)") == [(0,)]


def test_the_path_is_named_in_the_result_metadata(con: lancesql.Connection) -> None:
    table = fetch(con, "SELECT _change, id FROM lance_changes('mnist', 3, 4)")
    assert table.schema.metadata[b"lancesql.changes"] == b"lineage"


def test_changes_join_with_versions(con: lancesql.Connection) -> None:
    got = rows(
        con,
        "SELECT c.label, count(*) FROM lance_changes('mnist', 3, 4) c "
        "JOIN mnist AT (VERSION => 4) m USING (id) GROUP BY c.label ORDER BY c.label",
    )
    expected = rows(
        con,
        "SELECT label, count(*) FROM mnist AT (VERSION => 4) n WHERE id NOT IN "
        "(SELECT id FROM mnist AT (VERSION => 3)) GROUP BY label ORDER BY label",
    )
    assert got == expected and sum(n for _, n in got) == 1250


def test_a_restore_in_the_range_compares_row_ids(wcon: lancesql.Connection, root: Path) -> None:
    edit(root)  # versions 8..12
    wcon.execute("RESTORE TABLE mnist TO VERSION 7")  # 13
    with pytest.warns(ChangesWarning, match="RESTORE"):
        table = (
            wcon.cursor()
            .execute("SELECT * FROM lance_changes('mnist', 12, 13)")
            .fetch_arrow_table()
        )
    assert table.schema.metadata[b"lancesql.changes"] == b"row_ids"
    # Back to version 7: the deleted rows return, the relabelled ones revert, the
    # appended ones go.
    assert by_change(table) == {
        "insert": list(range(100, 110)),
        "update": list(range(20)),
        "delete": [9000, 9002, 9003, 9004],
    }
    with pytest.warns(ChangesWarning):
        assert rows(wcon, "SELECT count(*) FROM lance_changes('mnist', 7, 13)") == [(0,)]


def test_a_dataset_without_stable_row_ids_is_compared_whole(
    wcon: lancesql.Connection, root: Path
) -> None:
    uri = str(root / "plain.lance")
    lance.write_dataset(pa.table({"id": [1, 2, 2], "x": [1.0, 2.0, 2.0]}), uri)
    lance.write_dataset(pa.table({"id": [2, 3], "x": [2.0, 3.0]}), uri, mode="append")
    ds = lance.dataset(uri)
    ds.delete("id = 1")
    ds.update({"x": "x * 10"}, where="id = 3")
    assert not ds.has_stable_row_ids
    with pytest.warns(ChangesWarning, match="no stable row ids"):
        table = (
            wcon.cursor()
            .execute("SELECT * FROM lance_changes('plain', 1) ORDER BY _change, id, x")
            .fetch_arrow_table()
        )
    assert table.schema.metadata[b"lancesql.changes"] == b"full_comparison"
    # Key-less: duplicates count, and an update is a delete and an insert.
    assert table.to_pylist() == [
        {"_change": "delete", "id": 1, "x": 1.0},
        {"_change": "insert", "id": 2, "x": 2.0},
        {"_change": "insert", "id": 3, "x": 30.0},
    ]


def test_errors_name_the_versions(wcon: lancesql.Connection, root: Path) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"'mnist' has no version 42; .* 1\.\.7"):
        rows(wcon, "SELECT * FROM lance_changes('mnist', 1, 42)")
    with pytest.raises(lancesql.ProgrammingError, match="has no tag 'nope'"):
        rows(wcon, "SELECT * FROM lance_changes('mnist', 'nope')")
    with pytest.raises(lancesql.ProgrammingError, match=r"give the older version first"):
        rows(wcon, "SELECT * FROM lance_changes('mnist', 4, 2)")
    with pytest.raises(lancesql.ProgrammingError, match="needs the version to compare from"):
        rows(wcon, "SELECT * FROM lance_changes('mnist')")
    with pytest.raises(lancesql.ProgrammingError, match="unknown table 'nope'"):
        rows(wcon, "SELECT * FROM lance_changes('nope', 1)")
    dataset(root).cleanup_old_versions(older_than=dt.timedelta(0))
    with pytest.raises(
        lancesql.OperationalError, match=r"version 3 .* removed by cleanup.* 7\.\.7"
    ):
        rows(wcon, "SELECT * FROM lance_changes('mnist', 3)")


def test_compaction_changes_no_row_and_an_added_column_updates_every_row(
    wcon: lancesql.Connection, root: Path
) -> None:
    ds = dataset(root)
    ds.delete("id < 5")  # 8
    dataset(root).optimize.compact_files(target_rows_per_fragment=100_000)  # 9, 10
    compacted = dataset(root).version
    dataset(root).add_columns({"twice": "label * 2"})  # 11
    with warnings.catch_warnings():
        # Some pylance builds cannot decode a compaction's transaction: the row-id path
        # then runs, and says so.
        warnings.simplefilter("ignore", ChangesWarning)
        assert rows(wcon, f"SELECT count(*) FROM lance_changes('mnist', 8, {compacted})") == [(0,)]
        got = rows(
            wcon,
            "SELECT _change, count(*), count(*) FILTER (WHERE twice = 2 * label) "
            f"FROM lance_changes('mnist', 7, {compacted + 1}) GROUP BY 1 ORDER BY 1",
        )
    # Deleted rows carry no value for a column added after them.
    assert got == [("delete", 5, 0), ("update", 4995, 4995)]


def test_whole_comparison_is_except_all_as_duckdb_computes_it() -> None:
    """Vectors, lists, NULLs, NaN and duplicates compared as SQL's EXCEPT ALL does (the
    plain DuckDB engine is the oracle)."""
    import random

    import duckdb

    from lancesql.udfs.lance_changes import _except_all

    rng = random.Random(1)

    def table(n: int) -> pa.Table:
        def vector() -> list[float] | None:
            return None if rng.random() < 0.1 else [rng.choice([0.0, 1.0, float("nan")]), 1.0]

        return pa.table(
            {
                "id": pa.array([rng.choice([1, 2, None]) for _ in range(n)], pa.int64()),
                "s": pa.array([rng.choice(["a", "b", None]) for _ in range(n)]),
                "v": pa.array([vector() for _ in range(n)], pa.list_(pa.float32(), 2)),
                "l": pa.array([rng.choice([[1], [1, 2], None, [None]]) for _ in range(n)]),
                "b": pa.array([rng.choice([b"x", b"y"]) for _ in range(n)], pa.binary()),
            }
        )

    for _ in range(3):
        a, b = table(300), table(250)
        db = duckdb.connect()
        db.register("a", a)
        db.register("b", b)
        want = db.sql("SELECT * FROM a EXCEPT ALL SELECT * FROM b").to_arrow_table()
        got = _except_all(a, b)
        assert sorted(map(repr, got.to_pylist())) == sorted(map(repr, want.to_pylist()))
