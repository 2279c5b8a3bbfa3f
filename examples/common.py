"""What the examples share: a root with the example dataset, and printing a result."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from examples import mnist


def example_root(root: str | None = None) -> str:
    """``root`` (default ``./data``), with ``mnist.lance`` built in it if it is missing."""
    path = Path(root or "data")
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "mnist.lance").exists():
        mnist.build(path)
    return str(path)


def run(cur: lancesql.Cursor, sql: str, params: list[object] | None = None, title: str = "") -> None:
    """Run ``sql`` and print it with its result as an aligned table."""
    if title:
        print(f"-- {title}")
    print(sql.strip())
    cur.execute(sql, params)
    if cur.description is None:
        print(f"  ok{f' ({cur.rowcount} rows)' if cur.rowcount >= 0 else ''}\n")
        return
    names = [d[0] for d in cur.description]
    if names == ["source", "plan"]:  # EXPLAIN: each plan as a block of its own
        for source, plan in cur.fetchall():
            print(f"  [{source}]\n" + "\n".join("    " + line for line in str(plan).splitlines()))
        print()
        return
    cells = [[short(v) for v in row] for row in cur.fetchall()]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    print("  " + "  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for row in cells:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    print()


def short(value: object) -> str:
    """A cell as text: bytes as their size, long vectors abbreviated."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list) and len(value) > 4:
        head = ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in value[:3])
        return f"[{head}, ... ({len(value)})]"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
