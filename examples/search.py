"""The card's *Search* section in SQL: nearest neighbours of a stored row, with a
prefilter answered by the scalar index, and the same search written as ORDER BY.

    python examples/search.py [ROOT]
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
            """
            SELECT id, label, _distance
            FROM vector_search('mnist', 'image_emb', (SELECT image_emb FROM mnist WHERE id = 42), 5)
        """,
            title="The 5 digits nearest to digit 42 (the first is 42 itself)",
        )
        run(
            cur,
            """
            SELECT id, label, _distance
            FROM vector_search('mnist', 'image_emb', (SELECT image_emb FROM mnist WHERE id = 42), 5,
                               filter => 'label = 9')
        """,
            title="The 5 nearest nines: a prefilter, so always 5 rows when 5 match",
        )
        run(
            cur,
            """
            SELECT id, label FROM mnist WHERE label IN (4, 9)
            ORDER BY array_cosine_distance(image_emb, (SELECT image_emb FROM mnist WHERE id = 42))
            LIMIT 5
        """,
            title="The same kind of search as plain SQL: answered by the vector index",
        )
        run(
            cur,
            """
            EXPLAIN SELECT id FROM vector_search('mnist', 'image_emb',
                (SELECT image_emb FROM mnist WHERE id = 42), 5, filter => 'label = 9')
        """,
            title="What reached Lance",
        )


if __name__ == "__main__":
    main(*sys.argv[1:2])
