"""The card's *Versioning* section in SQL: list versions, pin one with a tag, read it by
tag and by number, and compare label distributions across versions in one query.

    python examples/versioning.py [ROOT]
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
        run(cur, "SHOW VERSIONS FROM mnist", title="Every version, and what made it")
        run(
            cur,
            "ALTER TABLE mnist CREATE OR REPLACE TAG 'first-batch' AS OF VERSION 1",
            title="Pin version 1 under a name",
        )
        run(cur, "SHOW TAGS FROM mnist")
        run(
            cur,
            """
            SELECT 'first-batch' AS version, count(*) AS rows FROM mnist AT (TAG => 'first-batch')
            UNION ALL SELECT 'v2', count(*) FROM mnist VERSION AS OF 2
            UNION ALL SELECT 'latest', count(*) FROM mnist
        """,
            title="Read by tag, by number and the latest",
        )
        run(
            cur,
            """
            SELECT label,
                   count(*) FILTER (WHERE v = 1) AS v1,
                   count(*) FILTER (WHERE v = 0) AS latest
            FROM (SELECT 1 AS v, label FROM mnist AT (TAG => 'first-batch')
                  UNION ALL SELECT 0, label FROM mnist)
            GROUP BY label ORDER BY label
        """,
            title="Label distributions of two versions, side by side",
        )
        run(
            cur,
            "SELECT _change, count(*) AS n FROM lance_changes('mnist', 1, 4) GROUP BY _change",
            title="What changed between version 1 and 4",
        )


if __name__ == "__main__":
    main(*sys.argv[1:2])
