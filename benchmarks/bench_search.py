"""Vector search with prefilters: lancesql's vector_search against pylance's to_table(nearest=...).

200,000 clustered 512-d vectors (synthetic float32, 200 clusters, unit length) with an
IVF_PQ index (cosine) and a BTREE on ``label``. Filters keep about 1%, 10% and 50% of
the rows; the 1% rows all lie in one cluster far from every query, the hard case for an
IVF prefilter. Each of 10 queries (near other clusters) runs with the same parameters in
both (k = 10, nprobes, refine_factor); recall@10 is against an exact numpy search over
the rows the filter keeps, and latency is the median over every query and repeat.

Run: ``python benchmarks/bench_search.py [--rows 200000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from benchmarks.report import write_section

DIM = 512
K = 10
NPROBES = 20
REFINE = 10
QUERIES = 10
REPEAT = 5


def build(
    root: Path, rows: int, clusters: int = 200, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Write ``bench.lance`` and return (vectors, labels)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, DIM)).astype(np.float32)
    cluster = rng.integers(0, clusters, rows)
    vectors = centers[cluster] + 0.6 * rng.standard_normal((rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # label 100: one cluster's rows only (about 1%, away from the queries);
    # 0..99: the other rows, at random
    labels = rng.integers(0, 100, rows).astype(np.int32)
    far = cluster < max(1, clusters // 100)
    labels[far] = 100
    table = pa.table(
        {
            "id": pa.array(np.arange(rows), pa.int64()),
            "label": pa.array(labels),
            "emb": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
        }
    )
    ds = lance.write_dataset(table, str(root / "bench.lance"), max_rows_per_file=50_000)
    ds.create_scalar_index("label", "BTREE")
    ds.create_index(
        "emb",
        index_type="IVF_PQ",
        metric="cosine",
        num_partitions=256,
        num_sub_vectors=64,
        sample_rate=8,
    )
    return vectors, labels


def recall(found: list[int], truth: list[int]) -> float:
    return len(set(found) & set(truth)) / len(truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("LANCE_INCLUDE_VECTOR_CENTROIDS", "false")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        vectors, labels = build(root, args.rows)
        print(f"built {args.rows} rows in {time.perf_counter() - start:.1f} s", file=sys.stderr)
        ds = lance.dataset(str(root / "bench.lance"))
        con = lancesql.connect(root)
        cur = con.cursor()
        rng = np.random.default_rng(1)
        near = np.flatnonzero(labels != 100)
        picks = rng.choice(near, QUERIES, replace=False)
        queries = vectors[picks] + 0.05 * rng.standard_normal((QUERIES, DIM)).astype(np.float32)

        filters = [
            ("none", None, np.ones(len(labels), bool)),
            ("1% (far from the query)", "label = 100", labels == 100),
            ("10%", "label < 10", labels < 10),
            ("50%", "label < 50", labels < 50),
        ]
        lines = [
            "| filter | rows kept | pylance ms | lancesql ms | ratio | pylance recall@10 | "
            "lancesql recall@10 | lancesql path | pylance exact prefiltered ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        verdicts = []
        base_recall = None
        for name, where, mask in filters:
            kept = int(mask.sum())
            nearest = {"column": "emb", "k": K, "nprobes": NPROBES, "refine_factor": REFINE}
            sql = (
                "SELECT id, _distance FROM vector_search('bench', 'emb', ?, 10, "
                "nprobes => 20, refine_factor => 10"
            )
            sql += f", filter => '{where}')" if where else ")"
            times_py, times_sql, times_exact, rec_py, rec_sql, same = [], [], [], [], [], True
            for q in queries:
                sims = vectors[mask] @ q
                truth = np.flatnonzero(mask)[np.argsort(-sims)[:K]].tolist()

                def pylance(
                    q: np.ndarray = q, where: str | None = where, nearest: dict = nearest
                ) -> pa.Table:
                    return ds.to_table(
                        columns=["id", "_distance"],
                        nearest={**nearest, "q": q},
                        filter=where,
                        prefilter=True if where else None,
                        disable_scoring_autoprojection=True,
                    )

                def exact(q: np.ndarray = q, where: str | None = where) -> pa.Table:
                    return ds.to_table(
                        columns=["id", "_distance"],
                        nearest={"column": "emb", "k": K, "q": q, "use_index": False},
                        filter=where,
                        prefilter=True if where else None,
                        disable_scoring_autoprojection=True,
                    )

                def lancesql_(q: np.ndarray = q, sql: str = sql) -> list:
                    return cur.execute(sql, [q]).fetchall()

                got_py = pylance().column("id").to_pylist()
                got_sql = [r[0] for r in lancesql_()]
                same = same and got_py == got_sql
                rec_py.append(recall(got_py, truth))
                rec_sql.append(recall(got_sql, truth))
                for _ in range(REPEAT):
                    t0 = time.perf_counter()
                    pylance()
                    times_py.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    lancesql_()
                    times_sql.append((time.perf_counter() - t0) * 1000)
                    if where is not None:
                        t0 = time.perf_counter()
                        exact()
                        times_exact.append((time.perf_counter() - t0) * 1000)
            explain = cur.execute("EXPLAIN " + sql, [queries[0]]).fetchall()[1][1]
            path = next(line for line in explain.splitlines() if line.startswith("path:"))
            path = path.removeprefix("path: ").split(" (")[0]
            med_py, med_sql = statistics.median(times_py), statistics.median(times_sql)
            r_py, r_sql = float(np.mean(rec_py)), float(np.mean(rec_sql))
            if where is None:
                base_recall = r_sql
                ok = med_sql <= 1.2 * med_py + 2 and same
                verdicts.append(
                    f"no filter: latency {'met' if ok else 'NOT met'}, same ids: {same}"
                )
            else:
                assert base_recall is not None
                floor = max(base_recall - 0.05, 0.95 if "1%" in name else 0.0)
                ok_recall = r_sql >= floor
                ok_time = r_py < r_sql - 0.01 or med_sql <= 1.2 * med_py + 2
                verdicts.append(
                    f"{name}: recall {r_sql:.3f} >= {floor:.3f} "
                    f"{'met' if ok_recall else 'NOT met'}; "
                    f"latency {'met' if ok_time else 'NOT met'}"
                    + (
                        ""
                        if r_py >= r_sql - 0.01
                        else " (pylance's recall is lower: no latency target)"
                    )
                )
            lines.append(
                f"| {name} | {kept:,} | {med_py:.1f} | {med_sql:.1f} | {med_sql / med_py:.2f} | "
                f"{r_py:.3f} | {r_sql:.3f} | {path} | "
                + (f"{statistics.median(times_exact):.1f} |" if times_exact else "- |")
            )
            print(lines[-1], file=sys.stderr)
        body = "\n".join(
            [
                f"{args.rows:,} rows of 512-d clustered float32 vectors, IVF_PQ (cosine, "
                f"256 partitions, 64 sub-vectors), BTREE on label; k = {K}, "
                f"nprobes = {NPROBES}, refine_factor = {REFINE} in both; {QUERIES} queries x "
                f"{REPEAT} repeats; recall@10 against exact search over "
                "the kept rows. lancesql counts the rows a filter keeps once per table version "
                "and filter (a BTREE lookup, 0.3 to 3 ms here) and reuses the count for later "
                "queries with the same filter; the last column is pylance's exact search "
                "(use_index=False) with the same prefilter, for scale.",
                "",
                *lines,
                "",
                "Targets (issue 4):",
                *[f"- {v}" for v in verdicts],
            ]
        )
        write_section("bench_search", "Vector search with prefilters", body)
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
