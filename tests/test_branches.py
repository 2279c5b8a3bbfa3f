"""Branches: create, read, write on a branch with main untouched, USE BRANCH, tags into
a branch, bad input, and a relabelling experiment end to end. Oracles: pylance's own
view of the branch (``checkout_version((branch, None))``) and of main, and pyarrow."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import lancesql
from tests.conftest import ROOT, rows

torch = pytest.importorskip("torch")


def main_ds(root: Path) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"))


def branch_ds(root: Path, name: str) -> lance.LanceDataset:
    return main_ds(root).checkout_version((name, None))


def test_writes_on_a_branch_leave_main_untouched(wcon: lancesql.Connection, root: Path) -> None:
    before = main_ds(root)
    main_ids = before.to_table(columns=["id", "label"]).sort_by("id")
    wcon.execute("ALTER TABLE mnist CREATE BRANCH 'exp'")
    assert before.version == main_ds(root).version  # a branch makes no version on main
    wcon.execute("USE BRANCH 'exp'")
    cur = wcon.cursor()
    assert (
        cur.execute(
            "INSERT INTO mnist SELECT * REPLACE (id + 100000 AS id) FROM mnist WHERE id < 10"
        ).rowcount
        == 10
    )
    zeros = main_ids.filter(pc.equal(main_ids["label"], 0))["id"].to_pylist()
    assert cur.execute("DELETE FROM mnist WHERE label = 0").rowcount == len(zeros) + sum(
        i < 10 for i in zeros
    )
    keep = main_ids.filter(pc.is_in(main_ids["label"], pa.array([1, 2])))["id"][0].as_py()
    cur.execute("UPDATE mnist SET label = label + 100 WHERE label = 7")
    cur.execute("ALTER TABLE mnist ADD COLUMN big BOOLEAN AS (label >= 100)")
    cur.execute("CREATE INDEX ON mnist USING BTREE (big)")
    cur.execute(
        "MERGE INTO mnist USING (SELECT ? AS id, -1 AS label) AS s ON mnist.id = s.id "
        "WHEN MATCHED THEN UPDATE SET label = s.label",
        [keep],
    )
    cur.execute("ALTER TABLE mnist CREATE TAG 'exp-done'")

    # main: same version, rows, schema, indices; the tag points into the branch
    after = main_ds(root)
    assert after.version == before.version
    assert after.schema == before.schema
    assert after.to_table(columns=["id", "label"]).sort_by("id").equals(main_ids)
    assert sorted(i.name for i in after.describe_indices()) == sorted(
        i.name for i in before.describe_indices()
    )
    assert after.tags.list()["exp-done"]["branch"] == "exp"

    # the branch, as pylance sees it
    exp = branch_ds(root, "exp")
    assert exp.schema.names[-1] == "big"
    got = exp.to_table(columns=["id", "label", "big"])
    assert pc.sum(pc.equal(got["label"], 0)).as_py() == 0
    assert pc.sum(pc.equal(got["label"], 7)).as_py() == 0
    assert got.filter(pc.equal(got["id"], keep))["label"].to_pylist() == [-1]
    assert pc.sum(pc.greater_equal(got["id"], 100000)).as_py() == 10 - sum(i < 10 for i in zeros)
    assert "big_idx" in [i.name for i in exp.describe_indices()]
    assert exp.tags.list()["exp-done"]["version"] == exp.version

    # lancesql reads each line where it should
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(exp.count_rows(),)]
    wcon.execute("USE BRANCH 'main'")
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(5000,)]
    assert rows(wcon, "SELECT count(*) FROM mnist AT (TAG => 'exp-done')") == [(exp.count_rows(),)]
    wcon.execute("SET lancesql.branch = 'exp'")
    assert rows(wcon, "SELECT count(*) FROM mnist WHERE big") == [(exp.count_rows(filter="big"),)]
    wcon.execute("RESET lancesql.branch")
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(5000,)]


def test_reading_a_branch_every_way(wcon: lancesql.Connection, root: Path) -> None:
    wcon.execute("ALTER TABLE mnist CREATE BRANCH 'exp' AS OF VERSION 5")
    lance_exp = main_ds(root).checkout_version(("exp", None))
    lance_exp.delete("label = 3")  # written by pylance: lancesql only reads
    exp = branch_ds(root, "exp")
    first, last = 5, exp.version
    assert last == first + 1
    assert rows(wcon, "SELECT count(*) FROM mnist AT (BRANCH => 'exp')") == [(exp.count_rows(),)]
    assert rows(wcon, "SELECT count(*) FROM mnist AT (BRANCH => 'exp', VERSION => 5)") == [
        (main_ds(root).checkout_version(5).count_rows(),)
    ]
    assert rows(wcon, "SELECT count(*) FROM lance_scan('mnist', branch => 'exp', version => ?)", [last]) == [
        (exp.count_rows(),)
    ]
    assert rows(wcon, "SELECT count(*) FROM mnist AT (BRANCH => 'main')") == [(5000,)]
    versions = rows(wcon, "SHOW VERSIONS FROM mnist AT (BRANCH => 'exp')")
    assert [v[0] for v in versions] == sorted(v["version"] for v in exp.versions())
    assert versions[-1][3] == "Delete"
    changes = rows(
        wcon, "SELECT _change, count(*) FROM lance_changes('mnist', 5, ?, branch => 'exp') GROUP BY 1", [last]
    )
    assert changes == [("delete", main_ds(root).checkout_version(5).count_rows(filter="label = 3"))]
    # a search on the branch: the rows pylance's exact search finds there
    q = exp.to_table(columns=["image_emb"], filter="id = 42")["image_emb"][0].values.to_numpy()
    want = exp.to_table(
        nearest={"column": "image_emb", "q": q, "k": 5, "use_index": False, "metric": "cosine"},
        columns=["id"],
    )
    got = rows(
        wcon,
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 5, branch => 'exp', "
        "use_index => false, metric => 'cosine')",
        [q],
    )
    assert [r[0] for r in got] == want["id"].to_pylist()
    assert all(
        r[0] not in set(main_ds(root).to_table(columns=["id"], filter="label = 3")["id"].to_pylist())
        for r in got
    )
    # SHOW BRANCHES, against Lance's own listing
    listing = rows(wcon, "SHOW BRANCHES FROM mnist")
    assert [r[0] for r in listing] == ["main", "exp"]
    assert listing[1][1:3] == ("main", 5)
    assert listing[1][4:] == (exp.version, exp.count_rows())
    assert listing[0][4:] == (main_ds(root).version, 5000)


def test_branch_from_a_tag_and_from_another_branch(wcon: lancesql.Connection, root: Path) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG 'v3' AS OF VERSION 3")
    wcon.execute("ALTER TABLE mnist CREATE BRANCH a AS OF TAG 'v3'")
    assert rows(wcon, "SELECT count(*) FROM mnist AT (BRANCH => 'a')") == [
        (main_ds(root).checkout_version(3).count_rows(),)
    ]
    wcon.execute("USE BRANCH a")
    wcon.execute("DELETE FROM mnist WHERE id % 2 = 0")
    wcon.execute("USE BRANCH 'main'")
    wcon.execute("ALTER TABLE mnist CREATE BRANCH b AS OF BRANCH 'a' VERSION 3")
    wcon.execute("ALTER TABLE mnist CREATE BRANCH c AS OF BRANCH 'a'")
    b, c = branch_ds(root, "b"), branch_ds(root, "c")
    assert b.count_rows() == main_ds(root).checkout_version(3).count_rows()
    assert c.count_rows() == branch_ds(root, "a").count_rows()
    info = main_ds(root).branches.list()
    assert (info["c"]["parent_branch"], info["c"]["parent_version"]) == ("a", 4)
    with pytest.raises(lancesql.IntegrityError, match="where other branches start"):
        wcon.execute("ALTER TABLE mnist DROP BRANCH 'a'")
    wcon.execute("ALTER TABLE mnist DROP BRANCH c")
    wcon.execute("ALTER TABLE mnist DROP BRANCH IF EXISTS c")
    assert sorted(main_ds(root).branches.list()) == ["a", "b"]


def test_branch_bad_input(wcon: lancesql.Connection, root: Path) -> None:
    wcon.execute("ALTER TABLE mnist CREATE BRANCH exp")
    wcon.execute("ALTER TABLE mnist CREATE TAG 'prod'")
    with pytest.raises(lancesql.ProgrammingError, match=r"no branch 'nope' \(branches: 'main', 'exp'\)"):
        rows(wcon, "SELECT * FROM mnist AT (BRANCH => 'nope')")
    with pytest.raises(lancesql.ProgrammingError, match=r"no branch 'nope'"):
        rows(wcon, "SELECT * FROM lance_scan('mnist', branch => 'nope')")
    with pytest.raises(
        lancesql.ProgrammingError,
        match=r"no table under the root has branch 'nope' \(branches: 'main', 'exp'\)",
    ):
        wcon.execute("USE BRANCH 'nope'")
    with pytest.raises(lancesql.ProgrammingError, match="'main' is every table's own line"):
        wcon.execute("ALTER TABLE mnist CREATE BRANCH 'main'")
    with pytest.raises(lancesql.ProgrammingError, match="has a tag named 'prod'"):
        wcon.execute("ALTER TABLE mnist CREATE BRANCH 'prod'")
    with pytest.raises(lancesql.IntegrityError, match="already has branch 'exp'"):
        wcon.execute("ALTER TABLE mnist CREATE BRANCH 'exp'")
    wcon.execute("ALTER TABLE mnist CREATE BRANCH IF NOT EXISTS 'exp'")
    with pytest.raises(lancesql.ProgrammingError, match="bad branch name"):
        wcon.execute("ALTER TABLE mnist CREATE BRANCH 'a/b'")
    with pytest.raises(lancesql.ProgrammingError, match="no version 99"):
        wcon.execute("ALTER TABLE mnist CREATE BRANCH x AS OF VERSION 99")
    for write in [
        "UPDATE mnist AT (VERSION => 3) SET label = 1",
        "DELETE FROM mnist AT (VERSION => 3)",
        "INSERT INTO mnist AT (TAG => 'prod') SELECT * FROM mnist",
    ]:
        with pytest.raises(
            lancesql.ProgrammingError, match="writes the newest version of a table, not a pinned one"
        ):
            wcon.execute(write)
    # a table without the current branch: read from main, never written
    wcon.execute("CREATE TABLE other AS SELECT id, label FROM mnist LIMIT 10")
    wcon.execute("USE BRANCH exp")
    assert rows(wcon, "SELECT count(*) FROM other") == [(10,)]
    with pytest.raises(
        lancesql.ProgrammingError, match="has no branch 'exp', the connection's current branch"
    ):
        wcon.execute("DELETE FROM other")
    assert lance.dataset(str(root / "other.lance")).count_rows() == 10
    # the branch's tag keeps it from being dropped
    wcon.execute("ALTER TABLE mnist CREATE TAG 'on-exp'")
    with pytest.raises(lancesql.IntegrityError, match=r"has tags \('on-exp'\)"):
        wcon.execute("ALTER TABLE mnist DROP BRANCH exp")
    assert main_ds(root).version == 7


def test_restore_to_branch_is_refused_and_the_merge_it_suggests_copies_the_branch(
    wcon: lancesql.Connection, root: Path
) -> None:
    wcon.execute("ALTER TABLE mnist CREATE BRANCH exp")
    wcon.execute("USE BRANCH exp")
    wcon.execute("DELETE FROM mnist WHERE label = 1")
    wcon.execute("UPDATE mnist SET label_name = 'seven' WHERE label = 7")
    wcon.execute("INSERT INTO mnist SELECT * REPLACE (id + 50000 AS id) FROM mnist WHERE id < 5")
    wcon.execute("USE BRANCH main")
    with pytest.raises(lancesql.NotSupportedError, match="Copy its changes over") as info:
        wcon.execute("RESTORE TABLE mnist TO BRANCH 'exp'")
    suggested = str(info.value).split("joining on the table's key (here 'id'): ")[1].split(" (USE BRANCH")[0]
    version = main_ds(root).version
    wcon.execute(suggested)
    assert main_ds(root).version == version + 1
    cols = ["id", "label", "label_name"]
    assert (
        main_ds(root)
        .to_table(columns=cols)
        .sort_by("id")
        .equals(branch_ds(root, "exp").to_table(columns=cols).sort_by("id"))
    )


def test_relabelling_experiment_end_to_end(wcon: lancesql.Connection, root: Path) -> None:
    """Branch, relabel with MERGE on the branch, pin it with a tag, train from the tag,
    and compare the label distributions of main and the branch in one query."""
    cur = wcon.cursor()
    cur.execute("ALTER TABLE mnist CREATE BRANCH 'relabel'")
    cur.execute("USE BRANCH 'relabel'")
    # relabel every other 4 as a 9 (the two digits most often confused)
    merged = cur.execute(
        "MERGE INTO mnist USING (SELECT id, ? AS label, 'nine' AS label_name FROM mnist "
        "WHERE label = ? AND id % 2 = 0) AS fix ON mnist.id = fix.id "
        "WHEN MATCHED THEN UPDATE SET label = fix.label, label_name = fix.label_name",
        [9, 4],
    ).rowcount
    cur.execute("ALTER TABLE mnist CREATE TAG 'relabel-v1'")
    cur.execute("USE BRANCH 'main'")
    main = main_ds(root).to_table(columns=["id", "label"])
    moved = pc.and_(pc.equal(main["label"], 4), pc.equal(pc.bit_wise_and(main["id"], 1), 0))
    assert merged == pc.sum(moved).as_py() > 0
    expected = Counter(main["label"].to_pylist())
    expected[4] -= merged
    expected[9] += merged

    # the train loader over the branch, pinned by the tag
    data = lancesql.torch_dataset(wcon, "SELECT image_emb, label FROM mnist AT (TAG => 'relabel-v1')")
    loader = torch.utils.data.DataLoader(data, batch_size=512, shuffle=True)
    seen: Counter[int] = Counter()
    for batch in loader:
        assert batch["image_emb"].shape[1] == 512
        seen.update(batch["label"].tolist())
    assert seen == expected

    got = rows(
        wcon,
        "SELECT label, count(*) FILTER (WHERE line = 'main') AS on_main, "
        "count(*) FILTER (WHERE line = 'relabel') AS on_branch FROM ("
        "  SELECT label, 'main' AS line FROM mnist"
        "  UNION ALL SELECT label, 'relabel' FROM mnist AT (BRANCH => 'relabel')"
        ") GROUP BY label ORDER BY label",
    )
    main_counts = Counter(main["label"].to_pylist())
    assert got == [(label, main_counts[label], expected[label]) for label in sorted(main_counts)]
    assert np.sum([r[1] for r in got]) == np.sum([r[2] for r in got]) == 5000
    assert main_ds(root).version == 7


def readme_block(marker: str) -> list[str]:
    """The SQL statements of the README's block after ``<!-- run: marker -->``."""
    text = (ROOT / "README.md").read_text()
    block = text.split(f"<!-- run: {marker} -->", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    return [s.strip() for s in re.split(r";[ \t]*(?:--[^\n]*)?\n", block) if s.strip()]


def test_the_readme_version_control_block_runs(wcon: lancesql.Connection, root: Path) -> None:
    main = main_ds(root).to_table(columns=["id", "label"])
    results = {}
    for sql in readme_block("version-control"):
        cur = wcon.cursor().execute(sql)
        key = sql.split()[0].upper() + str(len(results))
        results[key] = cur.fetchall() if cur.description else cur.rowcount
    moved = pc.sum(pc.and_(pc.equal(main["label"], 4), pc.equal(pc.bit_wise_and(main["id"], 1), 0))).as_py()
    on_main = Counter(main["label"].to_pylist())
    compared = next(
        v for k, v in results.items() if k.startswith("SELECT") and isinstance(v, list) and len(v) == 10
    )
    assert compared == [
        (label, on_main[label], on_main[label] - (moved if label == 4 else 0) + (moved if label == 9 else 0))
        for label in range(10)
    ]
    assert main_ds(root).version > 7  # OPTIMIZE ran on main
    assert main_ds(root).to_table(columns=["id", "label"]).sort_by("id").equals(main.sort_by("id"))
