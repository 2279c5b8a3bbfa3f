"""The card's *Evolve* section in SQL: computed flag columns, and labels merged in from
another table, each ALTER one new Lance version that rewrites no other column.

    python examples/evolve.py [ROOT]

It works on ``mnist_evolved``, a copy made with CTAS, so the tour can run again.
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
            "CREATE OR REPLACE TABLE mnist_evolved AS SELECT id, image, label, label_name FROM mnist",
            title="A copy to evolve",
        )
        run(
            cur,
            """
            ALTER TABLE mnist_evolved
                ADD COLUMN is_curvy BOOLEAN AS (label IN (0, 3, 6, 8, 9)),
                ADD COLUMN is_straight BOOLEAN AS (label IN (1, 4, 7))
        """,
            title="Two computed flags in one version, computed by Lance itself",
        )
        run(
            cur,
            """
            CREATE OR REPLACE TABLE stroke_notes AS
            SELECT id, CASE WHEN label IN (1, 7) THEN 'one stroke' ELSE 'several strokes' END AS strokes
            FROM mnist WHERE label IN (1, 2, 7)
        """,
            title="Labels from somewhere else (here: a query)",
        )
        run(
            cur,
            "ALTER TABLE mnist_evolved ADD COLUMNS FROM (SELECT id, strokes FROM stroke_notes) ON id",
            title="Merged in on the key; rows without a match get NULL",
        )
        run(
            cur,
            """
            SELECT label, is_curvy, is_straight, strokes, count(*) AS n
            FROM mnist_evolved GROUP BY ALL ORDER BY label
        """,
            title="The evolved table",
        )
        run(
            cur,
            "SELECT version, operation, detail FROM lance_versions('mnist_evolved')",
            title="One version per statement",
        )


if __name__ == "__main__":
    main(*sys.argv[1:2])
