"""lance_changes against the anti-join of two versions, on 1,000,000 rows.

A table of ``--rows`` small rows (id, label, a float) written with stable row ids
(version 1), then 1,000 rows appended (2) and 1,000 rows updated (3). Timed, on each
engine, through lancesql:

- ``lance_changes('big', 1, 3)``: every insert, update and delete, from row lineage;
- the anti-join a user would write without it: rows of version 3 whose id is not in
  version 1 (inserts only: it cannot see updates);
- the full comparison that does find updates: ``EXCEPT`` both ways over whole rows;

and, as the floor, the direct pylance calls lance_changes makes (``ds.delta(...)``
inserted + updated rows and deleted ids). Ratios go to BENCHMARKS.md.

Run: ``python benchmarks/bench_changes.py [--rows 1000000] [--repeat 15]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from benchmarks.report import median_ms, write_section
from lancesql.udfs.lance_changes import ChangesWarning

CHANGED = 1_000


def build(root: Path, rows: int) -> lance.LanceDataset:
    """``big.lance``: version 1 of ``rows`` rows, 2 appends 1,000, 3 updates 1,000."""
    rng = np.random.default_rng(0)
    uri = str(root / "big.lance")
    table = pa.table(
        {
            "id": pa.array(np.arange(rows), pa.int64()),
            "label": pa.array(rng.integers(0, 10, rows).astype(np.int32)),
            "x": pa.array(rng.random(rows).astype(np.float32)),
        }
    )
    ds = lance.write_dataset(table, uri, enable_stable_row_ids=True, max_rows_per_file=rows)
    extra = pa.table(
        {
            "id": pa.array(np.arange(rows, rows + CHANGED), pa.int64()),
            "label": pa.array(np.zeros(CHANGED, np.int32)),
            "x": pa.array(np.zeros(CHANGED, np.float32)),
        }
    )
    ds = lance.write_dataset(extra, uri, mode="append")
    start = rows // 2
    ds.update({"x": "x + 1"}, where=f"id >= {start} AND id < {start + CHANGED}")
    return lance.dataset(uri)


def direct(ds: lance.LanceDataset) -> int:
    """What lance_changes asks of pylance, called directly."""
    delta = ds.delta(begin_version=1, end_version=3)
    inserted = delta.get_inserted_rows().read_all()
    updated = delta.get_updated_rows().read_all()
    deleted = delta.get_deleted_row_ids().read_all()
    return inserted.num_rows + updated.num_rows + deleted.num_rows


CHANGES_SQL = "SELECT * FROM lance_changes('big', 1, 3)"
ANTI_JOIN_SQL = (
    "SELECT n.* FROM big AT (VERSION => 3) n "
    "WHERE NOT EXISTS (SELECT 1 FROM big AT (VERSION => 1) o WHERE o.id = n.id)"
)
FULL_SQL = (
    "SELECT 'insert' AS _change, * FROM "
    "(SELECT * FROM big AT (VERSION => 3) EXCEPT SELECT * FROM big AT (VERSION => 1)) i "
    "UNION ALL SELECT 'delete' AS _change, * FROM "
    "(SELECT * FROM big AT (VERSION => 1) EXCEPT SELECT * FROM big AT (VERSION => 3)) d"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    warnings.simplefilter("error", ChangesWarning)  # the lineage path must run
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ds = build(root, args.rows)
        direct_ms = median_ms(lambda: direct(ds), repeat=args.repeat)
        assert direct(ds) == 2 * CHANGED
        lines = [
            f"Table: {args.rows:,} rows (id BIGINT, label INTEGER, x FLOAT), stable row ids; "
            f"version 2 appends {CHANGED:,} rows, version 3 updates {CHANGED:,}. "
            f"Median of {args.repeat} runs each ({max(3, args.repeat // 3)} for the full "
            "comparison) after 2 warm-up runs, each result fetched whole as Arrow.",
            "",
            f"Direct pylance (`ds.delta(1, 3)`: inserted + updated rows, deleted ids): "
            f"**{direct_ms:.1f} ms**",
            "",
            "| engine | `lance_changes` | id anti-join (inserts only) "
            "| full-row `EXCEPT` both ways | anti-join / changes | EXCEPT / changes "
            "| changes / direct pylance |",
            "|---|---|---|---|---|---|---|",
        ]
        ratios: list[tuple[str, float]] = []
        for engine in lancesql.engines.ENGINES:
            con = lancesql.connect(root, engine=engine)

            def run(sql: str, con: lancesql.Connection = con) -> pa.Table:
                return con.cursor().execute(sql).fetch_arrow_table()

            changes = run(CHANGES_SQL)
            assert changes.num_rows == 2 * CHANGED, changes.num_rows
            assert changes.schema.metadata[b"lancesql.changes"] == b"lineage"
            assert run(ANTI_JOIN_SQL).num_rows == CHANGED
            assert run(FULL_SQL).num_rows == 3 * CHANGED  # 1,000 new, 1,000 updated, 1,000 old
            changes_ms = median_ms(lambda: run(CHANGES_SQL), repeat=args.repeat)
            anti_ms = median_ms(lambda: run(ANTI_JOIN_SQL), repeat=args.repeat)
            full_ms = median_ms(lambda: run(FULL_SQL), repeat=max(3, args.repeat // 3))
            con.close()
            ratios.append((engine, anti_ms / changes_ms))
            lines.append(
                f"| {engine} | {changes_ms:.1f} ms | {anti_ms:.1f} ms | {full_ms:.1f} ms "
                f"| **{anti_ms / changes_ms:.1f}x** | {full_ms / changes_ms:.1f}x "
                f"| {changes_ms / direct_ms:.2f}x |"
            )
    verdict = ", ".join(f"{e}: {'met' if r >= 20 else 'not met'} ({r:.1f}x)" for e, r in ratios)
    lines += [
        "",
        f"Target, `lance_changes` at least 20x faster than the anti-join: {verdict}. "
        "The anti-join reads the `id` column of both versions whole and finds only the "
        "inserts; `lance_changes` reads only the rows the two commits wrote, and finds the "
        "updates too (the full-row comparison is what finds them otherwise). Of "
        f"`lance_changes`' time, {direct_ms:.1f} ms is pylance's delta; the rest is "
        "lancesql's statement overhead (binding the call, registering its result on the "
        "engine, the engine's pass over it; parsing and rewriting are cached per SQL text), "
        "which does not grow with the table.",
    ]
    body = "\n".join(lines)
    if args.no_write:
        print(body)
    else:
        write_section("bench_changes", "lance_changes vs. anti-join of two versions", body)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
