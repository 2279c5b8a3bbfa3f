"""Arrow batches to training samples: tensors for vectors and numbers, Python values
for the rest, a user's ``transform`` for binary columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
import pyarrow as pa
import torch

#: ``transform=``: one callable for every binary column, or one per column name.
Transform = Union[Callable[[bytes], Any], Mapping[str, Callable[[Any], Any]], None]  # noqa: UP007

Sample = dict[str, Any]


def _column_values(name: str, array: pa.Array, transform: Transform) -> list[Any] | torch.Tensor:
    """One column of a batch as a tensor (numbers, vectors) or a list (everything else)."""
    kind = array.type
    fn: Callable[[Any], Any] | None
    if isinstance(transform, Mapping):
        fn = transform.get(name)
    elif transform is not None and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        fn = transform
    else:
        fn = None
    if fn is not None:
        return [None if v is None else fn(v) for v in array.to_pylist()]
    if pa.types.is_fixed_size_list(kind) and (
        pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)
    ):
        size = kind.list_size
        if array.null_count == 0:
            flat = array.flatten().to_numpy(zero_copy_only=False)
            # A copy: Arrow's buffers are read-only, and a training loop may write in place.
            return torch.from_numpy(np.array(flat, dtype=np.float32).reshape(len(array), size))
        out = np.full((len(array), size), np.nan, dtype=np.float32)
        valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False))
        out[valid] = np.asarray(array.drop_null().flatten().to_numpy(zero_copy_only=False)).reshape(
            -1, size
        )
        return torch.from_numpy(out)
    if (
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    ) and not array.null_count:
        return torch.from_numpy(np.asarray(array.to_numpy(zero_copy_only=False)).copy())
    return array.to_pylist()


def batch_to_columns(
    batch: pa.Table | pa.RecordBatch, names: Sequence[str], transform: Transform
) -> dict[str, Any]:
    """A batch as one value a column (a tensor of the batch, or a list), keyed by ``names``."""
    return {
        name: _column_values(name, _combined(batch.column(i)), transform)
        for i, name in enumerate(names)
    }


def batch_to_samples(
    batch: pa.Table | pa.RecordBatch, names: Sequence[str], transform: Transform
) -> list[Sample]:
    """A batch as one dict a row, keyed by ``names`` (the query's output names)."""
    columns = batch_to_columns(batch, names, transform)
    return [{name: column[i] for name, column in columns.items()} for i in range(batch.num_rows)]


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
