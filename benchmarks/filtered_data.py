"""Clustered vectors with filters of chosen selectivity and placement, for the
filtered-search and similarity-join benchmarks (and their tests, on small data).

Rows are drawn around ``clusters`` random centres (unit length, cosine). Queries are
drawn around the first tenth of the centres (the *query clusters*). Three integer
columns, each with a BTREE, rank the rows so that ``<column> < n`` keeps n rows placed
as named:

- ``near``: rows of the query clusters first, cluster by cluster (a filter on cluster
  labels, as curation writes them), then the others: up to a tenth of the rows, every
  kept row lies in a query's cluster;
- ``far``: rows of the other clusters first, cluster by cluster: every kept row lies
  away from the queries (up to nine tenths of the rows);
- ``spread``: a random order: kept rows spread evenly over the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa

PLACEMENTS = ("near", "far", "spread")
SELECTIVITIES = (0.001, 0.01, 0.1, 0.5, 0.9)


@dataclass
class Data:
    vectors: np.ndarray  # unit rows, float32
    ranks: dict[str, np.ndarray]  # placement -> rank of each row
    queries: np.ndarray

    def mask(self, placement: str, selectivity: float) -> np.ndarray:
        return self.ranks[placement] < self.kept(selectivity)

    def kept(self, selectivity: float) -> int:
        return max(1, round(selectivity * len(self.vectors)))

    def truth(self, q: np.ndarray, mask: np.ndarray | None, k: int) -> list[int]:
        """The ids of the exact k nearest rows (cosine) among ``mask``'s rows."""
        ids = np.arange(len(self.vectors)) if mask is None else np.flatnonzero(mask)
        sims = self.vectors[ids] @ (q / np.linalg.norm(q))
        return ids[np.argsort(-sims, kind="stable")[:k]].tolist()


def generate(
    rows: int, dim: int, clusters: int, queries: int, seed: int = 0, spread: float = 0.6
) -> Data:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    cluster = rng.integers(0, clusters, rows)
    vectors = centres[cluster] + spread * rng.standard_normal((rows, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query_clusters = max(1, clusters // 10)
    near = cluster < query_clusters
    ranks = {}
    order = rng.permutation(clusters)  # the order whole clusters are kept in
    by_cluster = np.argsort(order)[cluster].astype(np.float64)
    for placement, first in (("near", near), ("far", ~near), ("spread", None)):
        key = rng.random(rows)
        if first is not None:
            key = key + by_cluster + np.where(first, 0.0, clusters)
        rank = np.empty(rows, np.int64)
        rank[np.argsort(key, kind="stable")] = np.arange(rows)
        ranks[placement] = rank
    picks = rng.integers(0, query_clusters, queries)
    qs = centres[picks] + spread * rng.standard_normal((queries, dim)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    return Data(vectors, ranks, qs)


def write(
    data: Data,
    uri: str | Path,
    *,
    partitions: int,
    sub_vectors: int,
    sample_rate: int = 8,
    rows_per_file: int = 50_000,
) -> lance.LanceDataset:
    """Write ``data`` as a Lance dataset with an IVF_PQ (cosine) and BTREEs."""
    dim = data.vectors.shape[1]
    table = pa.table(
        {
            "id": pa.array(np.arange(len(data.vectors)), pa.int64()),
            **{p: pa.array(r) for p, r in data.ranks.items()},
            "emb": pa.FixedSizeListArray.from_arrays(pa.array(data.vectors.ravel()), dim),
        }
    )
    ds = lance.write_dataset(table, str(uri), max_rows_per_file=rows_per_file, mode="overwrite")
    for placement in PLACEMENTS:
        ds.create_scalar_index(placement, "BTREE")
    ds.create_index(
        "emb",
        index_type="IVF_PQ",
        metric="cosine",
        num_partitions=partitions,
        num_sub_vectors=sub_vectors,
        sample_rate=sample_rate,
    )
    return ds
