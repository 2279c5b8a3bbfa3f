"""Filtered vector search keeps its recall wherever the matching rows lie (issue 15).

Small clustered data with an IVF_PQ index; filters keep 0.1% .. 90% of the rows, placed
near the queries, far from them, or spread evenly; the truth is an exact numpy search
over the kept rows. The recall of lancesql's default plan must be at least the
unfiltered search's at the same nprobes / refine_factor, minus 0.02.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lance
import numpy as np
import pytest

import lancesql
from benchmarks.filtered_data import PLACEMENTS, SELECTIVITIES, Data, generate, write
from lancesql.udfs import search_plan

K = 10
NPROBES = 4
REFINE = 5
SQL = "SELECT id FROM vector_search('pts', 'emb', ?, 10, nprobes => 4, refine_factor => 5{filter})"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Data]:
    root = tmp_path_factory.mktemp("filtered")
    points = generate(rows=20_000, dim=32, clusters=50, queries=40, seed=3)
    write(points, root / "pts.lance", partitions=64, sub_vectors=8, sample_rate=16)
    return root, points


@pytest.fixture(params=["default", "index"])
def cur(request: pytest.FixtureRequest, data: tuple[Path, Data]) -> Iterator[lancesql.Cursor]:
    """A cursor with the default plan, and one that never takes the exact shortcut for
    few matching rows (so the partition planner decides every case)."""
    with lancesql.connect(data[0]) as con:
        cursor = con.cursor()
        if request.param == "index":
            cursor.execute("SET lancesql.vector_search_exact_rows = 0")
        yield cursor


def recall(
    cur: lancesql.Cursor, points: Data, where: str | None, mask: np.ndarray | None
) -> float:
    sql = SQL.format(filter=f", filter => '{where}'" if where else "")
    found = []
    for q in points.queries:
        got = [row[0] for row in cur.execute(sql, [q]).fetchall()]
        truth = points.truth(q, mask, K)
        assert len(got) == min(K, len(truth))
        found.append(len(set(got) & set(truth)) / len(truth))
    return float(np.mean(found))


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_recall_under_filters(
    cur: lancesql.Cursor, data: tuple[Path, Data], placement: str
) -> None:
    _, points = data
    unfiltered = recall(cur, points, None, None)
    assert unfiltered > 0.5  # the index is worth testing against
    for selectivity in SELECTIVITIES:
        kept = points.kept(selectivity)
        got = recall(cur, points, f"{placement} < {kept}", points.mask(placement, selectivity))
        assert got >= unfiltered - 0.02, (placement, selectivity, got, unfiltered)


def pylance_recall(
    ds: lance.LanceDataset, points: Data, where: str | None, mask: np.ndarray | None, **nearest: int
) -> float:
    """pylance's own mean recall@10 over the queries, searching with ``nearest``."""
    found = []
    for q in points.queries:
        got = ds.to_table(
            columns=["id", "_distance"],
            nearest={"column": "emb", "q": q, "k": K, "refine_factor": REFINE, **nearest},
            filter=where,
            prefilter=True if where else None,
            disable_scoring_autoprojection=True,
        )
        found.append(len(set(got.column("id").to_pylist()) & set(points.truth(q, mask, K))) / K)
    return float(np.mean(found))


def test_the_far_case_is_hard_for_a_plain_prefilter(data: tuple[Path, Data]) -> None:
    """pylance's own prefiltered search loses recall when the rows lie away from the
    queries: the data above is a real test of the planner."""
    root, points = data
    ds = lance.dataset(str(root / "pts.lance"))
    where, mask = f"far < {points.kept(0.1)}", points.mask("far", 0.1)
    widened = pylance_recall(ds, points, where, mask, minimum_nprobes=NPROBES)
    unfiltered = pylance_recall(ds, points, None, None, nprobes=NPROBES)
    assert widened < unfiltered - 0.1


def test_explain_shows_partitions_probed(data: tuple[Path, Data], engine: str) -> None:
    root, points = data
    with lancesql.connect(root, engine=engine) as con:
        cur = con.cursor()
        cur.execute("SET lancesql.vector_search_exact_rows = 0")
        # the index's plan, not the matching rows' vectors held in memory
        cur.execute("SET lancesql.vector_search_cache_bytes = 0")
        kept = points.kept(0.5)
        sql = SQL.format(filter=f", filter => 'far < {kept}'")
        plan = "\n".join(
            str(r[1]) for r in cur.execute("EXPLAIN " + sql, [points.queries[0]]).fetchall()
        )
    assert f"{kept} of 20000 rows match" in plan
    assert "partitions probed (partition:matching/rows)" in plan
    # the partitions nearest the query hold no far rows: more than nprobes are probed
    probed = plan.split("partitions probed (partition:matching/rows): ")[1].splitlines()[0]
    cells = [cell.split(":")[1].split("/") for cell in probed.split() if ":" in cell]
    assert len(cells) > NPROBES
    assert any(int(m) == 0 for m, _ in cells)
    assert sum(1 for m, _ in cells if int(m) > 0) >= NPROBES


def test_partition_layout_read_from_the_index_file(data: tuple[Path, Data]) -> None:
    """The centroids come from the index file (not megabytes of statistics JSON): the
    same as Lance's statistics give, and each row in the partition Lance lists it in."""
    root, _ = data
    ds = lance.dataset(str(root / "pts.lance"))
    index = next(d.name for d in ds.describe_indices() if d.field_names == ["emb"])
    layout = search_plan._read_layout(ds, index)
    assert layout is not None
    (segment,) = search_plan._segments(ds, index, centroids=True)
    np.testing.assert_array_equal(layout.centroids, np.asarray(segment["centroids"], np.float32))
    assert layout.sizes.tolist() == [p["size"] for p in segment["partitions"]]
    assert np.bincount(layout.partitions, minlength=layout.count).tolist() == layout.sizes.tolist()
    assert search_plan._index_centroids(str(root / "pts.lance" / "no.idx")) is None
