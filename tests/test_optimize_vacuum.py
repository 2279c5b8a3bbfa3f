"""OPTIMIZE and VACUUM on both engines. Oracles: pylance's fragments, index statistics,
versions and cleanup explanation, and exact searches by pylance."""

from __future__ import annotations

from pathlib import Path

import lance
import pytest

import lancesql
from tests.conftest import rows


def mnist(root: Path, version: int | None = None) -> lance.LanceDataset:
    return lance.dataset(str(root / "mnist.lance"), version=version)


def unindexed(ds: lance.LanceDataset) -> int:
    covered: dict[str, set[int]] = {}
    for index in ds.describe_indices():
        covered[index.name] = {f for s in index.segments for f in s.fragment_ids}
    live = {f.fragment_id: f.count_rows() for f in ds.get_fragments()}
    return sum(n for ids in covered.values() for fid, n in live.items() if fid not in ids)


def test_optimize_compacts_and_indexes_appended_rows(wcon: lancesql.Connection, root: Path) -> None:
    for start in (10000, 10100, 10200):  # small appends: small fragments no index covers
        wcon.execute(f"INSERT INTO mnist SELECT * REPLACE (id + {start} AS id) FROM mnist WHERE id < 100")
    before = mnist(root)
    q = before.to_table(columns=["image_emb"], filter="id = 42")["image_emb"][0].values.to_numpy()
    exact = (
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 10, use_index => false) ORDER BY _distance, id"
    )
    searched = rows(wcon, exact, [q])
    counted = rows(wcon, "SELECT label, count(*) FROM mnist WHERE label IN (3, 4) GROUP BY 1 ORDER BY 1")
    gap = unindexed(before)
    assert gap == 3 * 300  # three indices, 300 new rows each

    got = rows(wcon, "OPTIMIZE mnist WITH (target_rows_per_fragment = 1000000)")
    after = mnist(root)
    assert got == [
        (len(before.get_fragments()), len(after.get_fragments()), got[0][2], got[0][3], gap, after.version)
    ]
    assert len(after.get_fragments()) < len(before.get_fragments()) - 3
    assert unindexed(after) == 0
    assert after.count_rows() == before.count_rows() == 5300
    # same answers; the old version still reads
    assert rows(wcon, exact, [q]) == searched
    assert (
        rows(wcon, "SELECT label, count(*) FROM mnist WHERE label IN (3, 4) GROUP BY 1 ORDER BY 1") == counted
    )
    assert rows(wcon, "SELECT count(*) FROM mnist AT (VERSION => ?)", [before.version]) == [(5300,)]
    ann = rows(
        wcon,
        "SELECT id FROM vector_search('mnist', 'image_emb', ?, 5, nprobes => 64, refine_factor => 50)",
        [q],
    )
    assert ann[0] == (42,)


def test_optimize_bad_input(wcon: lancesql.Connection, root: Path) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="OPTIMIZE has no option 'bogus'; its options are"):
        wcon.execute("OPTIMIZE mnist WITH (bogus = 1)")
    with pytest.raises(lancesql.ProgrammingError, match="takes a positive number"):
        wcon.execute("OPTIMIZE mnist WITH (target_rows_per_fragment = 0)")
    with pytest.raises(lancesql.ProgrammingError, match="unknown table 'nope'"):
        wcon.execute("OPTIMIZE nope")
    assert mnist(root).version == 7


def test_vacuum_dry_run_then_vacuum_keeps_tags_and_branch_bases(
    wcon: lancesql.Connection, root: Path
) -> None:
    wcon.execute("ALTER TABLE mnist CREATE TAG 'keep' AS OF VERSION 2")
    wcon.execute("ALTER TABLE mnist CREATE BRANCH 'exp' AS OF VERSION 4")
    wcon.execute("DELETE FROM mnist WHERE id < 10")  # version 8
    plan = mnist(root).explain_cleanup_old_versions(
        retain_versions=2, error_if_tagged_old_versions=False, include_files=True
    )
    listed = rows(wcon, "VACUUM mnist RETAIN 2 VERSIONS DRY RUN")
    assert sum(r[2] for r in listed) == plan.stats.bytes_removed
    assert len(listed) == len(plan.candidate_files)
    gone = sorted(r[3] for r in listed if r[0] == "manifest")
    assert gone == [1, 3, 5, 6]  # not 2 (tagged), 4 (a branch starts there), 7 and 8 (kept)
    assert len(mnist(root).versions()) == 8  # a dry run removes nothing

    result = rows(wcon, "VACUUM mnist RETAIN 2 VERSIONS")
    assert result[0][0] == 4 and result[0][2] == plan.stats.bytes_removed
    assert sorted(v["version"] for v in mnist(root).versions()) == [2, 4, 7, 8]
    with pytest.raises(lancesql.OperationalError, match="version 3 of table 'mnist' was removed by cleanup"):
        rows(wcon, "SELECT count(*) FROM mnist AT (VERSION => 3)")
    assert rows(wcon, "SELECT count(*) FROM mnist AT (TAG => 'keep')") == [(2500,)]
    assert rows(wcon, "SELECT count(*) FROM mnist AT (BRANCH => 'exp')") == [(mnist(root, 4).count_rows(),)]
    assert rows(wcon, "SELECT count(*) FROM mnist") == [(4990,)]
    # nothing is 7 days old here
    assert rows(wcon, "VACUUM mnist") == [(0, 0, 0)]
    assert rows(wcon, "VACUUM mnist OLDER THAN INTERVAL '7 days'") == [(0, 0, 0)]


def test_vacuum_of_a_version_another_connection_reads(
    wcon: lancesql.Connection, root: Path, engine: str
) -> None:
    """Documented: a version another connection pinned is removed all the same; that
    connection's next read of it is the clear OperationalError, not a crash or wrong rows."""
    with lancesql.connect(root, engine=engine) as reader:
        assert rows(reader, "SELECT count(*) FROM mnist AT (VERSION => 5)") == [
            (mnist(root, 5).count_rows(),)
        ]
        wcon.execute("VACUUM mnist RETAIN 1 VERSIONS")
        with pytest.raises(
            lancesql.OperationalError, match="version 5 of table 'mnist' was removed by cleanup"
        ):
            rows(reader, "SELECT count(*) FROM mnist AT (VERSION => 5)")
        assert rows(reader, "SELECT count(*) FROM mnist") == [(5000,)]


def test_vacuum_bad_input(wcon: lancesql.Connection) -> None:
    with pytest.raises(lancesql.ProgrammingError, match="bad interval '7 fortnights'"):
        wcon.execute("VACUUM mnist OLDER THAN INTERVAL '7 fortnights'")
    with pytest.raises(lancesql.ProgrammingError, match="expected a number of versions to keep"):
        wcon.execute("VACUUM mnist RETAIN 0 VERSIONS")
    with pytest.raises(lancesql.ProgrammingError, match="expected the end of the statement"):
        wcon.execute("VACUUM mnist RETAIN 2 VERSIONS PLEASE")
