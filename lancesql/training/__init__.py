"""Training from SQL: a torch Dataset over the rows a query selects.

``torch_dataset(con, "SELECT image_emb, label FROM train WHERE label IN (4, 9)")`` runs
the query **once**, asking the engine for Lance's ``_rowid`` of each row instead of its
columns (the table is registered with row ids; the WHERE, ORDER BY and LIMIT run on the
engine as written, so any predicate the engine knows works, subqueries included). The
Dataset then holds only those row ids: ``__getitems__`` fetches a batch of rows with
Lance's random access (``_take_rows``), reading only the columns the query selects, so
a query that does not name ``image`` never reads image bytes, and a DataLoader may
shuffle freely, since every index is a row id away from its row.

Why row ids rather than the engine's result: the engine streams, it cannot seek, and
materialising the result would copy every selected column (image bytes included) into
memory before the first batch. Row ids are 8 bytes a row.

The dataset pins the version the query read: a worker process reopens the dataset by
URI and version number (tags and timestamps are resolved once, up front), so every
epoch and every worker sees exactly the rows the query selected, whatever is written
to the table meanwhile.

A query whose rows are not rows of one Lance table (GROUP BY, aggregates, DISTINCT,
UNION, computed columns) has no row ids; ``torch_dataset(..., iterable=True)`` gives an
:class:`torch.utils.data.IterableDataset` that streams such a query's result instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lancesql.connection import Connection
from lancesql.training.datasets import QueryIterableDataset, RowIdDataset
from lancesql.training.samples import Transform, batch_to_columns, batch_to_samples


def torch_dataset(
    con: Connection,
    sql: str,
    params: Sequence[Any] | None = None,
    *,
    transform: Transform = None,
    iterable: bool = False,
) -> RowIdDataset | QueryIterableDataset:
    """A torch Dataset over the rows ``sql`` selects (see the module docstring).

    Each sample is a dict keyed by the query's output names: fixed-size lists (vectors)
    are float32 tensors, numbers are 0-d tensors, strings are ``str``, binary is
    ``bytes`` or, with ``transform=``, whatever it makes of them (a decoded image
    tensor, say). ``transform`` is a callable applied to every binary column, or a
    mapping from column names to callables applied to those columns.

    ``iterable=True`` streams the query's result instead (for queries without row ids).
    """
    params = list(params or [])
    if iterable:
        return QueryIterableDataset(con, sql, params, transform)
    return RowIdDataset.from_query(con, sql, params, transform)


__all__ = ["QueryIterableDataset", "RowIdDataset", "batch_to_columns", "batch_to_samples", "torch_dataset"]
