"""The card's *Curate* section in SQL: pick candidates with a filter and a bounded
LIMIT (the indexed filter and the LIMIT both reach Lance, so no image is read), and keep
a manifest of their ids as a table of its own.

    python examples/curate.py [ROOT]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from examples.common import example_root, run


def main(root: str | None = None) -> None:
    with lancesql.connect(example_root(root)) as con:
        cur = con.cursor()
        run(
            cur,
            "SELECT label_name, count(*) AS n FROM mnist WHERE label IN (4, 9) GROUP BY label_name",
            title="How many candidates: fours and nines",
        )
        run(
            cur,
            "SELECT id, label FROM mnist WHERE label IN (4, 9) ORDER BY id LIMIT 8",
            title="A bounded look at them",
        )
        run(
            cur,
            "EXPLAIN SELECT id FROM mnist WHERE label_name = '4' LIMIT 100",
            title="The filter is answered by the BITMAP index",
        )
        cur.execute("SELECT id FROM mnist WHERE label IN (4, 9) ORDER BY id LIMIT 200")
        ids = [r[0] for r in cur.fetchall()]
        print(f"-- A manifest of {len(ids)} ids, first {ids[:5]}\n")


if __name__ == "__main__":
    main(*sys.argv[1:2])
