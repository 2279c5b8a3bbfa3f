"""Training from SQL: a torch Dataset over the rows a query selects.

Design notes: ``docs/ARCHITECTURE.md``, "Training by row ids".
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
