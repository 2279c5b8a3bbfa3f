"""The laion-1m dataset card, every section in SQL through lancesql.

The card (``lance-format/laion-1m``) shows Search, Curate, Evolve, Train, Versioning and
Materialise a subset with LanceDB's Python API; here each is SQL (the statements are
the constants below, which ``benchmarks/bench_laion.py`` times against the card's own
code). The dataset is built first with :mod:`examples.laion_data` (real JPEGs, 768-d
clustered embeddings, IVF_PQ with L2, several versions).

    python examples/laion.py [ROOT] [--rows 20000] [--engine duckdb|datafusion] [--reuse]

The card's filter is ``"NSFW" = 0 AND ...``, as SQL writes a name with capitals; inside
``filter =>`` lancesql writes a double-quoted name as Lance reads names (Lance's filter
parser would read ``"NSFW"`` as a string).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from examples import laion_data
from examples.common import run

#: The card's curation filter, as the card writes it: for a WHERE and for ``filter =>``.
CURATE_WHERE = CURATE_FILTER = '"NSFW" = 0 AND similarity > 0.3 AND width >= 512'

#: Search: the 10 nearest rows to a query vector (bound as ``?``), L2 as the index was built.
SEARCH = "SELECT key, caption, url, _distance FROM vector_search('laion', 'img_emb', ?, 10, metric => 'l2')"
#: Curate: the 500 nearest among the rows the card's filter keeps, prefiltered, searched
#: like the card's code (Lance's default partitions to probe).
CURATE = (
    "SELECT key, caption, url, width, height, _distance "
    f"FROM vector_search('laion', 'img_emb', ?, 500, filter => '{CURATE_FILTER}', metric => 'l2')"
)
#: The same with ``nprobes => 20``: lancesql widens the probe to the share of rows the filter
#: keeps (``vector_search_widen_nprobes``), for recall near 1 at the cost of reading more partitions.
CURATE_WIDE = CURATE.replace("metric => 'l2')", "metric => 'l2', nprobes => 20)")
#: Evolve: two computed columns in one version, then a score for every key merged in on ``key``.
EVOLVE_COLUMNS = (
    "ALTER TABLE laion "
    "ADD COLUMN aspect_ratio DOUBLE AS (CAST(width AS DOUBLE) / height), "
    "ADD COLUMN is_high_res BOOLEAN AS (width >= 512 AND height >= 512)"
)
EVOLVE_MERGE = "ALTER TABLE laion ADD COLUMNS FROM (SELECT key, aesthetic_score FROM aesthetic) ON key"
#: Train: the rows and columns the DataLoader reads.
TRAIN = "SELECT image, caption FROM laion"
#: Versioning: the tag's name and version are parameters (``?``), as the card passes them
#: as Python values; the statements' text stays the same, so each is parsed once.
VERSIONS = "SHOW VERSIONS FROM laion"
TAG = "ALTER TABLE laion CREATE OR REPLACE TAG ? AS OF VERSION ?"
READ_TAG = "SELECT count(*) AS rows FROM laion AT (TAG => ?)"
#: Materialise a subset: the curated rows, streamed into a new Lance dataset at a path.
MATERIALISE = (
    "CREATE OR REPLACE TABLE '{target}' AS "
    "SELECT key, image, caption, url, width, height, img_emb FROM laion WHERE {where}"
)

#: Joins over versions and tables (issue 17, item 3).
LABELS_PER_VERSION = """
    SELECT v.version, l.label, count(*) AS n
    FROM (SELECT 1 AS version, key FROM laion VERSION AS OF 1
          UNION ALL SELECT {latest} AS version, key FROM laion) AS v
    JOIN labels AS l ON l.key = v.key
    GROUP BY v.version, l.label ORDER BY v.version, n DESC, l.label
"""
ADDED_SINCE = """
    SELECT count(*) AS added FROM laion AS now
    WHERE NOT EXISTS (SELECT 1 FROM laion VERSION AS OF {version} AS old WHERE old.key = now.key)
"""
THREE_WAY = """
    SELECT l.label, count(*) AS n, round(avg(t.similarity), 4) AS similarity
    FROM laion AS t JOIN labels AS l ON l.key = t.key JOIN manifest AS m ON m.key = t.key
    GROUP BY l.label ORDER BY n DESC, l.label
"""


def query_vector(cur: lancesql.Cursor, key: int = 0) -> list[float]:
    """The card searches with the embedding of one of the dataset's own rows."""
    cur.execute("SELECT img_emb FROM laion WHERE key = ?", [key])
    return list(cur.fetchone()[0])


def search(cur: lancesql.Cursor) -> None:
    run(cur, SEARCH, [query_vector(cur)], title="Search: the 10 nearest images to row 0 (IVF_PQ, L2)")


def curate(cur: lancesql.Cursor) -> None:
    run(
        cur,
        f"SELECT count(*) AS candidates FROM laion WHERE {CURATE_WHERE}",
        title="Curate: rows the filter keeps",
    )
    cur.execute(CURATE, [query_vector(cur)])
    picked = cur.fetchall()
    print(f"-- The 500 nearest of them to row 0, prefiltered: {len(picked)} rows")
    for row in picked[:5]:
        print("  ", row[:5], f"{row[5]:.4f}")
    print()


def evolve(cur: lancesql.Cursor) -> None:
    cur.execute("DESCRIBE laion")
    present = {r[0] for r in cur.fetchall()}
    for column in ("aspect_ratio", "is_high_res", "aesthetic_score"):
        if column in present:  # so the example can run again on the same dataset
            cur.execute(f"ALTER TABLE laion DROP COLUMN {column}")
    run(cur, EVOLVE_COLUMNS, title="Evolve: two computed columns, one new version")
    run(cur, EVOLVE_MERGE, title="Evolve: an aesthetic score for every key, merged in on key")
    run(
        cur,
        "SELECT key, width, height, aspect_ratio, is_high_res, aesthetic_score "
        "FROM laion ORDER BY key LIMIT 5",
    )
    run(
        cur,
        "SELECT is_high_res, count(*) AS n, round(avg(aesthetic_score), 3) AS score "
        "FROM laion GROUP BY ALL ORDER BY 1",
    )


def train(con: lancesql.Connection, batches: int = 3) -> None:
    try:
        import torch
        from PIL import Image
    except ImportError:
        print("-- Train: skipped (install torch: pip install 'lancesql[clip]')\n")
        return
    dataset = lancesql.torch_dataset(con, TRAIN)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, collate_fn=list)
    print(f"-- Train: a DataLoader over {len(dataset):,} rows of `{TRAIN}`, shuffled, 32 a batch")
    for i, batch in enumerate(loader):
        sizes = [Image.open(io.BytesIO(row["image"])).size for row in batch[:3]]
        print(f"  batch {i}: {len(batch)} images, first sizes {sizes}, caption {batch[0]['caption']!r}")
        if i + 1 == batches:
            break
    print()


def versioning(cur: lancesql.Cursor) -> int:
    run(cur, VERSIONS, title="Versioning: every version, and what made it")
    cur.execute("SELECT max(version) FROM lance_versions('laion')")
    latest = int(cur.fetchone()[0])
    run(cur, TAG, ["before-evolve", latest - 2], title="Pin the version before Evolve")
    run(cur, READ_TAG, ["before-evolve"])
    run(cur, "SHOW TAGS FROM laion")
    run(
        cur,
        LABELS_PER_VERSION.format(latest=latest) + " LIMIT 6",
        title="Label distribution, version 1 and latest",
    )
    run(cur, ADDED_SINCE.format(version=2), title="Rows added since version 2 (a cross-version anti-join)")
    run(cur, THREE_WAY + " LIMIT 5", title="The dataset, its labels and a manifest of keys")
    return latest


def materialise(cur: lancesql.Cursor, root: Path) -> None:
    target = root / "subsets" / "laion-curated.lance"
    run(
        cur,
        MATERIALISE.format(target=target, where=CURATE_WHERE),
        title="Materialise the curated rows as a dataset of their own (streamed)",
    )
    run(
        cur, f"SELECT count(*) AS rows, min(width) AS min_width FROM '{target}'", title="Read it back by path"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The laion-1m card's sections in SQL.")
    parser.add_argument("root", nargs="?", default="data")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--engine", default="duckdb", choices=("duckdb", "datafusion"))
    parser.add_argument("--reuse", action="store_true", help="use ROOT/laion.lance as it is if present")
    ns = parser.parse_args(argv)
    root = Path(ns.root)
    if not (ns.reuse and (root / "laion.lance").exists()):
        start = time.perf_counter()
        times = laion_data.build(root, ns.rows)
        print(
            f"-- Built laion.lance, {ns.rows:,} rows, in {time.perf_counter() - start:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in times.items())})\n"
        )
    with lancesql.connect(root, engine=ns.engine) as con:
        cur = con.cursor()
        for title, section in (
            ("*Search*", lambda: search(cur)),
            ("*Curate*", lambda: curate(cur)),
            ("*Evolve*", lambda: evolve(cur)),
            ("*Train*", lambda: train(con)),
            ("*Versioning*", lambda: versioning(cur)),
            ("*Materialise a subset*", lambda: materialise(cur, root)),
        ):
            print(f"==== {title}\n")
            section()


if __name__ == "__main__":
    main()
