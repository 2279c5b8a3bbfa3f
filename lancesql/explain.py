"""What reached Lance: the record a search leaves for ``EXPLAIN``.

A search runs inside its table function, before the engine sees the query, so the
engine's own plan shows only an in-memory table. Each search therefore describes the
Lance scan it ran (dataset, version, columns, filter, index, nprobes, path, and Lance's
own verbose plan) to the EXPLAIN statement that is collecting, if any. Outside EXPLAIN
nothing is collected and Lance's plan is not even rendered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import lance


@dataclass
class LanceRead:
    """One read of a Lance dataset, as it was sent to Lance."""

    function: str
    uri: str
    version: int
    columns: list[str]
    filter: str | None = None
    #: Further facts in order of interest: path, vector index, metric, nprobes, ...
    details: dict[str, str] = field(default_factory=dict)
    #: Lance's ``explain_plan(verbose=True)``: the scalar indices it used, and how.
    plan: str = ""


_COLLECTOR: ContextVar[list[LanceRead] | None] = ContextVar("lancesql_lance_reads", default=None)


@contextmanager
def collecting() -> Iterator[list[LanceRead]]:
    """Collect the reads that searches make inside the ``with`` block."""
    reads: list[LanceRead] = []
    token = _COLLECTOR.set(reads)
    try:
        yield reads
    finally:
        _COLLECTOR.reset(token)


def is_collecting() -> bool:
    """Whether an EXPLAIN wants the reads (and so Lance's plan should be rendered)."""
    return _COLLECTOR.get() is not None


def record(read: LanceRead) -> None:
    """Hand ``read`` to the collecting EXPLAIN, if any."""
    reads = _COLLECTOR.get()
    if reads is not None:
        reads.append(read)


def record_search(
    function: str,
    ds: lance.LanceDataset,
    columns: list[str],
    filter: str | None,
    details: dict[str, str],
    *scanners: Any,
) -> None:
    """Hand the collecting EXPLAIN a search of ``ds`` that ran ``scanners`` (Lance
    scanners), with Lance's verbose plan of each."""
    plan = "\n".join(scanner.explain_plan(verbose=True) for scanner in scanners)
    record(LanceRead(function, str(ds.uri), ds.version, columns, filter, details, plan))
