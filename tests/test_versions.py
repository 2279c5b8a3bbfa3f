"""History in SQL: SHOW VERSIONS / TAGS / INDEXES, lance_versions, DESCRIBE at a version,
RESTORE TABLE, queries across versions, and the errors for versions that do not exist."""

from __future__ import annotations

import datetime as dt
import itertools
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest

import lancesql
from tests.conftest import rows

MNIST_VERSIONS = [
    (1, 1250, "Create"),
    (2, 2500, "Append"),
    (3, 3750, "Append"),
    (4, 5000, "Append"),
    (5, 5000, "CreateIndex"),
    (6, 5000, "CreateIndex"),
    (7, 5000, "CreateIndex"),
]


def dataset(root: Path) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"))


# -- SHOW VERSIONS / lance_versions ------------------------------------------------------------
def test_show_versions_lists_every_version_with_rows_and_operation(
    con: lancesql.Connection,
) -> None:
    got = rows(con, "SHOW VERSIONS FROM mnist")
    assert [(r[0], r[2], r[3]) for r in got] == MNIST_VERSIONS
    cur = con.cursor().execute("SHOW VERSIONS FROM mnist")
    assert [d[0] for d in cur.description] == [
        "version",
        "timestamp",
        "rows",
        "operation",
        "detail",
        "tags",
    ]
    times = [r[1] for r in got]
    assert times == sorted(times) and all(isinstance(t, dt.datetime) for t in times)
    # The index builds name their index.
    assert [r[4] for r in got[4:]] == ["index label_idx", "index label_name_idx", "index image_emb_idx"]


def test_lance_versions_is_the_same_table_and_joins(con: lancesql.Connection) -> None:
    shown = rows(con, "SHOW VERSIONS FROM mnist")
    assert rows(con, "SELECT * FROM lance_versions('mnist') ORDER BY version") == shown
    got = rows(
        con,
        "SELECT operation, count(*), max(rows) FROM lance_versions('mnist') "
        "GROUP BY operation ORDER BY operation",
    )
    assert got == [("Append", 3, 5000), ("Create", 1, 1250), ("CreateIndex", 3, 5000)]


def test_versions_read_each_transaction_once_and_only_when_shown(
    wcon: lancesql.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lancesql.udfs import lance_versions

    wcon.execute("CREATE TABLE h AS SELECT id, label FROM mnist WHERE id < 10")
    wcon.execute("INSERT INTO h SELECT id, label FROM mnist WHERE id BETWEEN 10 AND 19")
    read: list[int] = []
    describe = lance_versions._describe

    def counted(ds: lance.LanceDataset, version: int, *args: Any) -> Any:
        read.append(version)
        return describe(ds, version, *args)

    monkeypatch.setattr(lance_versions, "_describe", counted)
    # the versions without their operations: manifests only
    assert rows(wcon, "SELECT version, rows FROM lance_versions('h') ORDER BY version") == [(1, 10), (2, 20)]
    assert read == []
    first = rows(wcon, "SHOW VERSIONS FROM h")
    assert [(r[0], r[3], r[4]) for r in first] == [
        (1, "Create", "10 rows written"),
        (2, "Append", "10 rows written"),
    ]
    assert sorted(read) == [1, 2]
    wcon.execute("DELETE FROM h WHERE id < 5")
    again = rows(wcon, "SHOW VERSIONS FROM h")
    assert again[:2] == first and again[2][3] == "Delete"
    assert sorted(read) == [1, 2, 3]  # only the new version's transaction was read


def pylance_versions(path: Path) -> list[tuple[int, dt.datetime, int]]:
    """The oracle: pylance's own listing of a dataset's versions."""
    return [
        (v["version"], v["timestamp"], int(v["metadata"]["total_rows"]))
        for v in sorted(lance.dataset(str(path)).versions(), key=lambda v: v["version"])
    ]


def test_show_versions_reads_only_new_manifests_and_sees_other_writers(
    wcon: lancesql.Connection, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lancesql import catalog
    from lancesql.udfs import lance_versions

    wcon.execute("CREATE TABLE h AS SELECT id, label FROM mnist WHERE id < 10")
    for start in (10, 20, 30, 40):
        wcon.execute(f"INSERT INTO h SELECT id, label FROM mnist WHERE id BETWEEN {start} AND {start + 9}")
    path = root / "h.lance"
    assert [r[:3] for r in rows(wcon, "SHOW VERSIONS FROM h")] == pylance_versions(path)
    read: list[int] = []
    entry = catalog._version_entry

    def counted(ds: lance.LanceDataset, number: int) -> dict | None:
        read.append(number)
        return entry(ds, number)

    monkeypatch.setattr(catalog, "_version_entry", counted)
    schemas: list[int] = []
    columns = lance_versions._column_names

    def columns_read(ds: lance.LanceDataset, number: int) -> list[str]:
        schemas.append(number)
        return columns(ds, number)

    monkeypatch.setattr(lance_versions, "_column_names", columns_read)
    ds = lance.dataset(str(path))  # another writer: an append, a computed column, a drop
    ds.insert(ds.to_table(limit=2), mode="append")
    lance.dataset(str(path)).add_columns({"twice": "label * 2"})
    lance.dataset(str(path)).drop_columns(["twice"])
    got = rows(wcon, "SHOW VERSIONS FROM h")
    assert [r[:3] for r in got] == pylance_versions(path)
    assert [(r[0], r[3], r[4]) for r in got[4:]] == [
        (5, "Append", "10 rows written"),
        (6, "Append", "2 rows written"),
        (7, "Merge", "add columns twice"),
        (8, "Project", "drop columns twice"),
    ]
    # versions 1 to 5 were known, and the newest of them still has the manifest file it
    # was read from (a table made again at the same path would not): only the new ones
    # are looked up (8, the newest, from the handle already open)
    assert sorted(read) == [6, 7, 8]
    # the columns before the drop are those the add's transaction named: only version
    # 6's schema is read, to say what the add added
    assert schemas == [6]


@pytest.mark.parametrize("sizes", [(3, 4, 5), (3, 4)], ids=["more-versions", "as-many-versions"])
def test_a_table_made_again_at_the_same_path_lists_its_own_versions(
    wcon: lancesql.Connection, root: Path, sizes: tuple[int, ...]
) -> None:
    # with as many versions, the newest one known has the same number in the new table:
    # its manifest file is another one, so nothing read from the old table is kept
    wcon.execute("CREATE TABLE h AS SELECT id FROM mnist WHERE id < 10")
    wcon.execute("INSERT INTO h SELECT id FROM mnist WHERE id BETWEEN 10 AND 11")
    before = rows(wcon, "SHOW VERSIONS FROM h")
    path = root / "h.lance"
    shutil.rmtree(path)  # dropped by another process, and written again
    for n in sizes:
        lance.write_dataset(pa.table({"id": list(range(n))}), str(path), mode="append" if n > 3 else "create")
    after = rows(wcon, "SHOW VERSIONS FROM h")
    assert [r[:3] for r in after] == pylance_versions(path)
    assert [r[2] for r in after] == list(itertools.accumulate(sizes)) and after[1][1] != before[1][1]
    lance.dataset(str(path)).cleanup_old_versions(older_than=dt.timedelta(0))
    assert [r[:3] for r in rows(wcon, "SHOW VERSIONS FROM h")] == pylance_versions(path) != after


def test_a_timestamp_from_show_versions_selects_that_version(con: lancesql.Connection) -> None:
    stamp = rows(con, "SELECT timestamp FROM lance_versions('mnist') WHERE version = 2")[0][0]
    assert rows(con, "SELECT count(*) FROM mnist AT (TIMESTAMP => ?)", [stamp]) == [(2500,)]


def test_show_versions_of_a_dataset_by_path(con: lancesql.Connection, mnist_root: Path) -> None:
    path = str(mnist_root / "mnist.lance")
    assert len(rows(con, f"SHOW VERSIONS FROM '{path}'")) == 7
    assert rows(con, "SELECT count(*) FROM lance_versions(?)", [path]) == [(7,)]


def test_show_versions_of_an_unknown_table_names_the_tables(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"unknown table 'nope'.*tables: mnist"):
        rows(con, "SHOW VERSIONS FROM nope")
    with pytest.raises(lancesql.ProgrammingError, match="unknown table 'nope'"):
        rows(con, "SELECT * FROM lance_versions('nope')")


def test_show_versions_rejects_trailing_words(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="expected the end of the statement"):
        rows(con, "SHOW VERSIONS FROM mnist WHERE 1")


# -- SHOW INDEXES / SHOW TABLES / DESCRIBE -------------------------------------------------------
def test_show_indexes(con: lancesql.Connection) -> None:
    got = rows(con, "SHOW INDEXES FROM mnist")
    assert [r[:6] for r in got] == [
        ("image_emb_idx", "IVF_PQ", "image_emb", 7, 5000, 0),
        ("label_idx", "BTree", "label", 5, 5000, 0),
        ("label_name_idx", "Bitmap", "label_name", 6, 5000, 0),
    ]
    assert all(r[6] > 0 for r in got)  # size_bytes
    assert rows(con, "SELECT name FROM lance_indexes('mnist') WHERE type = 'BTree'") == [("label_idx",)]


def test_show_indexes_at_a_version(con: lancesql.Connection) -> None:
    assert [r[0] for r in rows(con, "SHOW INDEXES FROM mnist AT (VERSION => 5)")] == ["label_idx"]
    assert rows(con, "SHOW INDEXES FROM mnist AT (VERSION => 4)") == []
    assert rows(con, "SELECT count(*) FROM lance_indexes('mnist', 6)") == [(2,)]


def test_show_indexes_counts_rows_appended_since_the_build(wcon: lancesql.Connection, root: Path) -> None:
    ds = dataset(root)
    ds.insert(ds.to_table(limit=10).set_column(0, "id", pa.array(range(10_000, 10_010), pa.int64())))
    got = {r[0]: (r[4], r[5]) for r in rows(wcon, "SHOW INDEXES FROM mnist")}
    assert got["label_idx"] == (5000, 10)


def test_show_tables(con: lancesql.Connection) -> None:
    assert rows(con, "SHOW TABLES") == [("mnist", "table")]


def test_describe_at_a_version_shows_that_versions_schema(wcon: lancesql.Connection, root: Path) -> None:
    dataset(root).add_columns({"is_curvy": "label IN (0, 3, 6, 8, 9)"})
    now = [r[0] for r in rows(wcon, "DESCRIBE mnist")]
    then = [r[0] for r in rows(wcon, "DESCRIBE mnist AT (VERSION => 2)")]
    assert now == ["id", "image", "label", "label_name", "image_emb", "is_curvy"]
    assert then == ["id", "image", "label", "label_name", "image_emb"]
    wcon.execute("ALTER TABLE mnist CREATE TAG 'before' AS OF VERSION 7")
    assert [r[0] for r in rows(wcon, "DESCRIBE mnist AT (TAG => 'before')")] == then


# -- queries across versions ------------------------------------------------------------
def test_label_distribution_per_version_in_one_query(con: lancesql.Connection, mnist_root: Path) -> None:
    got = rows(
        con,
        "SELECT 1 AS version, label, count(*) AS n FROM mnist AT (VERSION => 1) GROUP BY label "
        "UNION ALL "
        "SELECT 4 AS version, label, count(*) AS n FROM mnist AT (VERSION => 4) GROUP BY label "
        "ORDER BY version, label",
    )
    ds = dataset(mnist_root)
    expected = []
    for version in (1, 4):
        labels = ds.checkout_version(version).to_table(columns=["label"])["label"].to_pylist()
        expected += [(version, label, n) for label, n in sorted(Counter(labels).items())]
    assert got == expected


def test_per_version_totals_agree_with_lance_versions(con: lancesql.Connection) -> None:
    got = rows(
        con,
        "WITH d AS ("
        " SELECT 2 AS version, count(*) AS n FROM mnist AT (VERSION => 2)"
        " UNION ALL SELECT 3, count(*) FROM mnist VERSION AS OF 3) "
        "SELECT d.version, d.n, v.rows, v.operation FROM d JOIN lance_versions('mnist') v "
        "ON d.version = v.version ORDER BY d.version",
    )
    assert got == [(2, 2500, 2500, "Append"), (3, 3750, 3750, "Append")]


def test_rows_added_since_version_1_by_anti_join(con: lancesql.Connection, mnist_root: Path) -> None:
    added = rows(
        con,
        "SELECT n.id FROM mnist n LEFT JOIN mnist AT (VERSION => 1) o ON n.id = o.id "
        "WHERE o.id IS NULL ORDER BY n.id",
    )
    first = set(dataset(mnist_root).checkout_version(1).to_table(columns=["id"])["id"].to_pylist())
    everything = dataset(mnist_root).to_table(columns=["id"])["id"].to_pylist()
    assert [r[0] for r in added] == sorted(set(everything) - first)
    assert len(added) == 3750
    not_exists = rows(
        con,
        "SELECT count(*) FROM mnist n WHERE NOT EXISTS "
        "(SELECT 1 FROM mnist VERSION AS OF 1 o WHERE o.id = n.id)",
    )
    assert not_exists == [(3750,)]


# -- RESTORE ------------------------------------------------------------------------------------
def test_restore_makes_an_old_version_the_newest(wcon: lancesql.Connection, root: Path) -> None:
    cur = wcon.cursor()
    cur.execute("RESTORE TABLE mnist TO VERSION 2")
    assert cur.description is None
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(2500,)]
    last = rows(wcon, "SHOW VERSIONS FROM mnist")[-1]
    assert (last[0], last[2], last[3], last[4]) == (8, 2500, "Restore", "restore version 2")
    # Same rows as version 2, and no index (version 2 had none).
    assert rows(wcon, "SELECT id FROM mnist ORDER BY id") == rows(
        wcon, "SELECT id FROM mnist AT (VERSION => 2) ORDER BY id"
    )
    assert rows(wcon, "SHOW INDEXES FROM mnist") == []
    # The versions in between stay: restoring again undoes the restore.
    wcon.execute("RESTORE mnist TO VERSION AS OF 7")
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(5000,)]
    assert len(rows(wcon, "SHOW INDEXES FROM mnist")) == 3
    assert dataset(root).version == 9


def test_restore_to_a_tag_or_a_time(wcon: lancesql.Connection) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG 'three' AS OF VERSION 3")
    wcon.execute("RESTORE TABLE mnist TO TAG 'three'")
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(3750,)]
    wcon.execute("RESTORE TABLE mnist TO VERSION 'three'")
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(3750,)]
    stamp = rows(wcon, "SELECT timestamp FROM lance_versions('mnist') WHERE version = 1")[0][0]
    wcon.execute("RESTORE TABLE mnist TO TIMESTAMP ?", [stamp])
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(1250,)]
    wcon.execute("RESTORE TABLE mnist TO VERSION ?", [4])
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(5000,)]
    ops = [r[3] for r in rows(wcon, "SHOW VERSIONS FROM mnist")]
    assert ops[7:] == ["Restore"] * 4


def test_restore_to_an_unknown_version_commits_nothing(wcon: lancesql.Connection, root: Path) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"no version 42; its versions are 1\.\.7"):
        wcon.execute("RESTORE TABLE mnist TO VERSION 42")
    with pytest.raises(lancesql.ProgrammingError, match="no tag 'nope'"):
        wcon.execute("RESTORE TABLE mnist TO TAG 'nope'")
    with pytest.raises(lancesql.ProgrammingError, match="expected VERSION n, TAG"):
        wcon.execute("RESTORE TABLE mnist TO 3")
    assert dataset(root).version == 7


# -- errors ---------------------------------------------------------------------------------------
def test_unknown_version_names_the_versions(con: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match=r"'mnist' has no version 99; .* 1\.\.7"):
        rows(con, "SELECT count(*) FROM mnist AT (VERSION => 99)")
    with pytest.raises(lancesql.ProgrammingError, match=r"has no tag 'nope' \(tags: none\)"):
        rows(con, "SELECT count(*) FROM mnist AT (TAG => 'nope')")


def test_a_version_removed_by_cleanup_is_an_operational_error(wcon: lancesql.Connection, root: Path) -> None:
    ds = dataset(root)
    ds.cleanup_old_versions(older_than=dt.timedelta(0))
    kept = sorted(v["version"] for v in dataset(root).versions())
    assert kept == [7]
    with pytest.raises(lancesql.OperationalError, match=r"version 2 of table 'mnist' was removed"):
        rows(wcon, "SELECT count(*) FROM mnist AT (VERSION => 2)")
    with pytest.raises(lancesql.OperationalError, match=r"versions kept are 7\.\.7"):
        wcon.execute("RESTORE TABLE mnist TO VERSION 2")
    assert [r[0] for r in rows(wcon, "SHOW VERSIONS FROM mnist")] == [7]


def test_a_cached_version_cleaned_up_by_another_process_is_an_operational_error(
    root: Path, engine: str
) -> None:
    with lancesql.connect(root, engine=engine) as con:
        assert con.execute("SELECT count(*) FROM mnist AT (VERSION => 2)").fetchall() == [(2500,)]
        script = (
            "import datetime as dt, lance; "
            f"lance.dataset({str(root / 'mnist.lance')!r}).cleanup_old_versions(older_than=dt.timedelta(0))"
        )
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
        with pytest.raises(lancesql.OperationalError, match=r"version 2 .* removed by cleanup"):
            con.execute("SELECT count(*) FROM mnist AT (VERSION => 2)")
        assert con.execute("SELECT count(*) FROM mnist").fetchall() == [(5000,)]


def test_version_numbers_are_lances_own_listing(tmp_path: Path) -> None:
    # the directory read directly, as Lance lists it: either naming scheme, a detached
    # version left out, versions removed by cleanup gone; with a branch, Lance's listing
    from lancesql.catalog import version_numbers

    for v2 in (True, False):
        path = str(tmp_path / f"t{v2}.lance")
        for n in range(4):
            lance.write_dataset(
                pa.table({"a": [n]}), path, mode="append" if n else "create", enable_v2_manifest_paths=v2
            )
        if v2:  # (Lance makes detached versions only under its second naming scheme)
            fragment = lance.fragment.LanceFragment.create(path, pa.table({"a": [9]}))
            append = lance.LanceOperation.Append([fragment])
            lance.LanceDataset.commit(path, append, read_version=4, detached=True)
        lance.dataset(path).cleanup_old_versions(older_than=dt.timedelta(0), retain_versions=3)
        ds = lance.dataset(path)
        assert version_numbers(ds) == sorted(r["version"] for r in ds.version_refs()) == [2, 3, 4]
        ds.create_branch("exp", 3).insert(pa.table({"a": [7]}))
        # a handle checked out onto the branch keeps the table's URI
        for each in (lance.dataset(path), lance.dataset(path).checkout_version(("exp", None))):
            assert version_numbers(each) == sorted(r["version"] for r in each.version_refs())
