"""``con.sql("SELECT ...")``: a query's result to look at, as DuckDB's ``con.sql`` gives.

The query runs when :meth:`Connection.sql` is called (errors surface there, as DB-API
exceptions); its rows are read once, on first use, and kept, so ``.df()`` after a look
at the notebook view does not run the query again. In a notebook the result shows as
an HTML table: image bytes as thumbnails, vectors shortened, long text folded, the row
count and the time the query took, every value escaped (see :mod:`lancesql.html`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from lancesql import html

if TYPE_CHECKING:
    from lancesql.cursor import Cursor

#: Rows the notebook view shows (the footer gives the full count).
DISPLAY_ROWS = 20


class QueryResult:
    """The rows of one query: ``.arrow()``, ``.df()``, ``.pl()``, ``.fetchall()``, and an
    HTML view in notebooks."""

    def __init__(self, cursor: Cursor, started: float):
        self._cursor = cursor
        self._table: pa.Table | None = None
        #: Seconds from the call to the last row read.
        self.elapsed = time.perf_counter() - started
        self._started = started
        description = cursor.description
        assert description is not None
        self.columns: list[str] = [d[0] for d in description]

    @property
    def types(self) -> list[str]:
        """Each column's type, in SQL words (``FLOAT[512]``, ``BLOB``, ``BIGINT``)."""
        return [html.type_name(f.type) for f in self.arrow().schema]

    def arrow(self) -> pa.Table:
        """The rows as an Arrow table."""
        if self._table is None:
            self._table = self._cursor.fetch_arrow_table()
            self.elapsed = time.perf_counter() - self._started
            self._cursor.close()
        return self._table

    def df(self) -> Any:
        """The rows as a pandas DataFrame."""
        return self.arrow().to_pandas()

    def pl(self) -> Any:
        """The rows as a polars DataFrame (polars must be installed)."""
        try:
            import polars as pl
        except ImportError as exc:
            raise ImportError(f".pl() needs polars ({exc}): pip install polars") from exc
        return pl.from_arrow(self.arrow())

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The rows as tuples, as a cursor's ``fetchall`` gives them."""
        table = self.arrow()
        columns = [c.to_pylist() for c in table.columns]
        return list(zip(*columns, strict=True))

    def fetchone(self) -> tuple[Any, ...] | None:
        """The first row, or None when there are none."""
        table = self.arrow()
        if table.num_rows == 0:
            return None
        return tuple(c[0].as_py() for c in table.columns)

    def __len__(self) -> int:
        return self.arrow().num_rows

    def _repr_html_(self, max_rows: int = DISPLAY_ROWS) -> str:
        table = self.arrow()
        return html.table(table.slice(0, max_rows), total_rows=table.num_rows, elapsed=self.elapsed)

    def __repr__(self) -> str:
        table = self.arrow()
        head = table.slice(0, 10)
        widths = [len(n) for n in table.column_names]
        columns = [c.to_pylist() for c in head.columns]
        rows = [[html.short(v)[:40] for v in row] for row in zip(*columns, strict=True)]
        for row in rows:
            widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
        lines = [" | ".join(n.ljust(w) for n, w in zip(table.column_names, widths, strict=True))]
        lines.append("-+-".join("-" * w for w in widths))
        lines += [" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        lines.append(html.footer(head.num_rows, table.num_rows, self.elapsed))
        return "\n".join(lines)
