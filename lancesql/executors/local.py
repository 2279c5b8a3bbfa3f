"""The local executor: the heavy statements in this process, through pylance."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql.backfill import backfill
from lancesql.context import StatementContext
from lancesql.errors import ProgrammingError, is_conflict, lance_error

log = logging.getLogger("lancesql")

VECTOR = ("IVF_PQ", "IVF_FLAT", "IVF_SQ", "IVF_HNSW_SQ", "IVF_HNSW_PQ", "IVF_HNSW_FLAT", "IVF_RQ")
SCALAR = ("BTREE", "BITMAP", "LABEL_LIST", "INVERTED", "FTS", "NGRAM", "ZONEMAP", "BLOOMFILTER")


class LocalExecutor:
    """Runs every statement here; see :class:`lancesql.executors.Executor`."""

    name = "local"

    def add_columns(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        columns: Mapping[str, exp.Expression],
        types: Mapping[str, pa.DataType | None],
        lance_sql: Mapping[str, str] | None,
    ) -> None:
        if lance_sql is not None:
            try:
                ds.add_columns(dict(lance_sql))
                return
            except (OSError, ValueError) as exc:
                if is_conflict(exc):
                    raise lance_error(exc, f"ALTER TABLE {_name(ctx, ds)} ADD COLUMN failed") from exc
                # Lance refused it (an unknown function, a type it cannot coerce): the
                # engine computes it instead, and reports the error if it is the user's.
        backfill(ctx, ds, columns, types)

    def merge(self, ctx: StatementContext, ds: lance.LanceDataset, table: pa.Table, key: str) -> None:
        try:
            ds.merge(table, left_on=key)
        except (OSError, ValueError) as exc:
            raise lance_error(exc, f"ALTER TABLE {_name(ctx, ds)} ADD COLUMNS FROM failed") from exc

    def create_index(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        column: str,
        kind: str,
        name: str | None,
        options: dict[str, Any],
    ) -> None:
        check_index(kind, options)
        if kind in VECTOR:
            ds.create_index(column, index_type=kind, name=name, **options)
        else:
            options = {"replace": False, **options}
            ds.create_scalar_index(column, cast(Any, kind), name=name, **options)

    def optimize(self, ctx: StatementContext, ds: lance.LanceDataset, options: Mapping[str, Any]) -> Any:
        if segmented(ds):
            # Lance never compacts fragments that two segments of one index cover
            # (an index built across Ray workers has one segment per worker): merge
            # the segments first, which also indexes appended rows, then compact.
            ds.optimize.optimize_indices(num_indices_to_merge=MERGE_ALL)
            return ds.optimize.compact_files(**options)
        metrics = ds.optimize.compact_files(**options)
        ds.optimize.optimize_indices()
        return metrics

    def write_scan(
        self,
        ctx: StatementContext,
        query: exp.Expression,
        uri: str,
        mode: str,
        schema: pa.Schema | None,
    ) -> int | None:
        return None  # the statement streams the engine's (or Lance's scanner's) result itself

    def describe(self) -> str:
        return "local: this process, through pylance"


LOCAL = LocalExecutor()

#: WITH options of vector indices, as Lance names them.
VECTOR_OPTIONS = (
    "metric",
    "num_partitions",
    "num_sub_vectors",
    "num_bits",
    "sample_rate",
    "max_iterations",
    "m",
    "ef_construction",
    "target_partition_size",
    "replace",
)


#: ``num_indices_to_merge`` that merges every segment of an index into one.
MERGE_ALL = 1 << 30


def segmented(ds: lance.LanceDataset) -> bool:
    """Whether some index of ``ds`` is in more than one segment (as built by workers
    each indexing their share of the fragments)."""
    return any(len(d.segments) > 1 for d in ds.describe_indices())


def check_index(kind: str, options: Mapping[str, Any]) -> None:
    """Refuse an unknown index type or vector-index option before any work."""
    if kind in VECTOR:
        unknown = sorted(set(options) - set(VECTOR_OPTIONS))
        if unknown:
            raise ProgrammingError(
                f"unknown option {unknown[0]!r} for a {kind} index; the options are "
                f"{', '.join(VECTOR_OPTIONS)}"
            )
    elif kind not in SCALAR:
        raise ProgrammingError(f"unknown index type {kind}: use one of {', '.join(VECTOR + SCALAR)}")


def _name(ctx: StatementContext, ds: lance.LanceDataset) -> str:
    return ctx.catalog.name_of(str(ds.uri))
