"""The main job: build the example dataset and walk through every section of a Lance
dataset card in SQL, on DuckDB (the embedded default).

    python examples/tour.py [ROOT]

Sections, each a script of its own: quickstart (build + a handful of queries), search,
curate, evolve, train (needs torch), versioning, materialise.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples import curate, evolve, materialise, quickstart, search, train, versioning


def main(root: str = "data") -> None:
    quickstart.main(root)  # builds a fresh mnist.lance
    for section in (search, curate, evolve, train, versioning, materialise):
        title = (section.__doc__ or "").split("\n", 1)[0]
        print(f"==== {title}\n")
        section.main(root)


if __name__ == "__main__":
    main(*sys.argv[1:2])
