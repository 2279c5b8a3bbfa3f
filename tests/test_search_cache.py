"""A filtered vector_search over the matching rows' vectors cached in memory is pylance's
exact prefiltered search: same rows, same distances, for every metric; rows with a NULL
vector are never returned; a new version is searched afresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest

import lancesql

DIM = 16
ROWS = 3_000


def table(ids: np.ndarray, vectors: np.ndarray, nulls: np.ndarray) -> pa.Table:
    flat = pa.array(vectors.astype(np.float32).ravel())
    emb = pa.FixedSizeListArray.from_arrays(flat, DIM, mask=pa.array(nulls))
    return pa.table({"id": pa.array(ids, pa.int64()), "label": pa.array(ids % 7), "emb": emb})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    ids = np.arange(ROWS)
    nulls = rng.random(ROWS) < 0.05
    lance.write_dataset(table(ids, rng.normal(size=(ROWS, DIM)), nulls), tmp_path / "t.lance")
    return tmp_path


@pytest.fixture
def cur(root: Path) -> Iterator[lancesql.Cursor]:
    with lancesql.connect(root) as con:
        yield con.cursor()


def search(cur: lancesql.Cursor, q: np.ndarray, metric: str, where: str) -> list[tuple]:
    sql = (
        "SELECT id, _distance FROM vector_search('t', 'emb', ?, 10, "
        f"filter => '{where}', metric => '{metric}') ORDER BY _distance, id"
    )
    return cur.execute(sql, [q.tolist()]).fetchall()


def pylance(root: Path, q: np.ndarray, metric: str, where: str) -> list[tuple]:
    ds = lance.dataset(str(root / "t.lance"))
    got = ds.to_table(
        columns=["id"],
        filter=where,
        prefilter=True,
        nearest={"column": "emb", "q": q, "k": 10, "metric": metric, "use_index": False},
    )
    rows = zip(got["id"].to_pylist(), got["_distance"].to_pylist(), strict=True)
    return sorted(rows, key=lambda r: (r[1], r[0]))


def explain(cur: lancesql.Cursor, q: np.ndarray, where: str) -> str:
    sql = f"EXPLAIN SELECT id FROM vector_search('t', 'emb', ?, 10, filter => '{where}')"
    return "\n".join(str(r[1]) for r in cur.execute(sql, [q.tolist()]).fetchall())


def same(ours: list[tuple], theirs: list[tuple]) -> None:
    assert [r[0] for r in ours] == [r[0] for r in theirs]
    np.testing.assert_allclose([r[1] for r in ours], [r[1] for r in theirs], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "cosine", "dot"])
def test_cached_search_is_pylance_exact_search(cur: lancesql.Cursor, root: Path, metric: str) -> None:
    rng = np.random.default_rng(9)
    ds = lance.dataset(str(root / "t.lance"))
    nulls = set(ds.to_table(columns=["id"], filter="emb IS NULL")["id"].to_pylist())
    assert nulls
    for where in ("label = 3", "label < 5 AND id > 100"):
        for q in rng.normal(size=(5, DIM)).astype(np.float32):
            ours = search(cur, q, metric, where)
            same(ours, pylance(root, q, metric, where))
            assert not {r[0] for r in ours} & nulls
    assert "exact over" in explain(cur, q, "label = 3")
    assert "cached matching rows" in explain(cur, q, "label = 3")


def test_null_vectors_are_never_neighbours(cur: lancesql.Cursor, root: Path) -> None:
    ds = lance.dataset(str(root / "t.lance"))
    nulls = ds.to_table(columns=["id"], filter="emb IS NULL")["id"].to_pylist()
    where = f"id IN ({', '.join(str(i) for i in nulls[:3])}, 1, 2)"
    valid = [i for i in (1, 2) if i not in nulls]
    got = search(cur, np.zeros(DIM, np.float32), "l2", where)
    assert sorted(r[0] for r in got) == valid


def test_a_write_is_searched_afresh(cur: lancesql.Cursor, root: Path) -> None:
    q = np.random.default_rng(2).normal(size=DIM).astype(np.float32)
    before = search(cur, q, "l2", "label = 3")
    assert "cached matching rows" in explain(cur, q, "label = 3")
    # a new row of label 3 right at the query: the next search must find it first
    new = table(np.array([ROWS * 7 + 3]), q[None, :], np.array([False]))
    lance.write_dataset(new, root / "t.lance", mode="append")
    after = search(cur, q, "l2", "label = 3")
    assert after[0][0] == ROWS * 7 + 3 and after[0][1] == pytest.approx(0, abs=1e-6)
    assert [r[0] for r in after[1:]] == [r[0] for r in before[:9]]
    same(after, pylance(root, q, "l2", "label = 3"))


def test_partition_scan_reads_the_nearest_partitions_first(tmp_path: Path) -> None:
    """Held rows grouped by IVF partition: a scan over every partition is exact; one that
    stops once it has compared as many rows as the unfiltered search reads (and a
    window more found nothing nearer) reads fewer partitions, nearest the query first,
    and finds exactly the nearest rows in them."""
    from benchmarks.filtered_data import generate, write
    from lancesql.udfs import search_cache, search_plan

    points = generate(rows=6_000, dim=32, clusters=30, queries=20, seed=4)
    ds = write(points, tmp_path / "pts.lance", partitions=24, sub_vectors=4, sample_rate=16)
    index = next(d.name for d in ds.describe_indices() if list(d.field_names) == ["emb"])
    layout = search_plan.ivf_layout(ds, index)
    assert layout is not None
    where, mask = f"far < {points.kept(0.5)}", points.mask("far", 0.5)
    held = search_cache.load(
        ds, where, "emb", 1 << 30, (layout.row_ids, layout.partitions, layout.count)
    )
    assert held is not None and held.buckets == layout.count + 1
    ids = ds.to_table(columns=["id"], with_row_id=True)
    id_of = dict(zip(ids["_rowid"].to_pylist(), ids["id"].to_pylist(), strict=True))
    recalls, read = [], []
    for q in points.queries:
        order = np.append(layout.count, search_plan.centroid_order(layout, q, "cosine"))
        every = search_cache.Scan(order, len(held.row_ids), 1)
        all_ids, _, _ = search_cache.nearest(held, q, "cosine", 10, False, every)
        exact_ids, _, _ = search_cache.nearest(held, q, "cosine", 10, False)
        assert all_ids.tolist() == exact_ids.tolist()
        assert [id_of[r] for r in exact_ids.tolist()] == points.truth(q, mask, 10)
        budget = int(layout.sizes[order[1:3]].sum())  # what 2 probes of the unfiltered search read
        found, _, buckets = search_cache.nearest(
            held, q, "cosine", 10, False, search_cache.Scan(order, budget, budget // 4)
        )
        # exactly the nearest rows of the partitions it read, and those nearest the query
        rows = np.concatenate([np.arange(held.offsets[b], held.offsets[b + 1]) for b in order[:buckets]])
        sims = held.vectors[rows] @ q / held.norms[rows] / np.linalg.norm(q)
        assert set(found.tolist()) == set(held.row_ids[rows[np.argsort(-sims)[:10]]].tolist())
        recalls.append(len(set(found.tolist()) & set(exact_ids.tolist())) / 10)
        read.append(buckets)
    assert np.mean(read) < layout.count + 1
    assert np.mean(recalls) >= 0.7  # low-dimensional data: a filter's far rows spread wide
