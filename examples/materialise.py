"""The card's *Materialise a subset* section in SQL: CTAS of a filtered query into a new
Lance dataset at a path of its own (from a remote root, this is how a subset is brought
home), streamed, so memory does not grow with the result.

    python examples/materialise.py [ROOT]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from examples.common import example_root, run


def main(root: str | None = None) -> None:
    root = example_root(root)
    target = str(Path(root) / "subsets" / "mnist-4-vs-9.lance")
    with lancesql.connect(root) as con:
        cur = con.cursor()
        run(
            cur,
            f"""
            CREATE OR REPLACE TABLE '{target}' AS
            SELECT id, image, label, image_emb FROM mnist WHERE label IN (4, 9)
        """,
            title="Materialise fours and nines as a dataset of their own",
        )
        run(
            cur,
            f"SELECT label, count(*) AS n FROM '{target}' GROUP BY label ORDER BY label",
            title="Read it back by path",
        )
        run(cur, f"CREATE INDEX ON '{target}' USING BTREE (label)", title="Index it like the original")
        run(cur, f"SHOW INDEXES FROM '{target}'")


if __name__ == "__main__":
    main(*sys.argv[1:2])
