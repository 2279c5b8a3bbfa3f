"""The DB-API cursor (PEP 249), with Arrow out.

Rows stream: a query's result is an Arrow ``RecordBatchReader`` that the fetch calls
pull from, so ``fetchone`` on a large result reads one batch, not the whole result.
``fetch_arrow_table`` and ``fetch_record_batch`` hand over the rest as Arrow.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import pyarrow as pa

from lancesql import statements
from lancesql.context import EngineSession, Result, StatementContext
from lancesql.dbapi_types import type_code
from lancesql.errors import Error, InterfaceError, ProgrammingError, translate, translating
from lancesql.parse import Parsed

log = logging.getLogger("lancesql")

Row = tuple[Any, ...]

P = ParamSpec("P")
T = TypeVar("T")


def _exclusive(method: Callable[Concatenate[Cursor, P], T]) -> Callable[Concatenate[Cursor, P], T]:
    """Run ``method`` only when no other thread is inside the cursor, else InterfaceError.

    ``threadsafety = 2``: threads share a connection, each with its own cursor. A cursor
    used by two threads at once would hand one thread's rows to the other (or close the
    result the other is reading), so the overlap is refused instead, with a message
    saying what to do. Calls from one thread nest (``executemany`` runs ``execute``).
    """

    @functools.wraps(method)
    def run(self: Cursor, *args: P.args, **kwargs: P.kwargs) -> T:
        if not self._busy.acquire(blocking=False):
            raise InterfaceError(
                "this cursor is in use by another thread: threads may share a connection "
                "but not a cursor (threadsafety = 2); give each thread its own "
                "connection.cursor()"
            )
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy.release()

    return run


def _parameters(parameters: Any) -> list[Any]:
    """``parameters`` as a list of values lancesql can bind, or a ProgrammingError.

    paramstyle is ``qmark``: values come as a sequence matched to ``?`` in order. Each
    value must be one Arrow can hold (numbers, strings, bytes, dates, decimals, lists and
    1-d arrays as vectors, None), checked here so that both engines refuse the same values
    with the same message, before any statement runs.
    """
    if parameters is None:
        return []
    if isinstance(parameters, (str, bytes, Mapping)) or not isinstance(parameters, Iterable):
        raise ProgrammingError(
            "parameters must be a sequence (list or tuple) matched to ? in order; got "
            f"{type(parameters).__name__} (named parameters are not supported: paramstyle is qmark)"
        )
    params = list(parameters)
    for position, value in enumerate(params, 1):
        try:
            pa.scalar(value)
        except (pa.ArrowException, TypeError, ValueError):
            raise ProgrammingError(
                f"parameter {position} cannot be bound: a {type(value).__name__} is not a SQL "
                "value; bind numbers, strings, bytes, dates, decimals, None, or a flat list "
                "or 1-d array of numbers for a vector"
            ) from None
    return params


class Connection(EngineSession, Protocol):
    """What a cursor uses of its :class:`lancesql.Connection`."""

    @property
    def closed(self) -> bool: ...

    def parse(self, sql: str) -> Parsed: ...


class Cursor:
    """A cursor on a lancesql connection: runs statements and fetches their rows."""

    #: Rows ``fetchmany()`` returns when no size is given.
    arraysize: int

    def __init__(self, connection: Connection):
        self.connection = connection
        self.arraysize = 1
        self._engine = connection.engine.cursor(connection)
        self._reader: pa.RecordBatchReader | None = None
        self._schema: pa.Schema | None = None
        self._rows: list[Row] = []
        self._row_pos = 0
        self._rowcount = -1
        self._registered: dict[str, Any] = {}
        self._closed = False
        self._busy = threading.RLock()
        #: The statement whose result the cursor holds, as the user wrote it: errors
        #: raised while its rows stream show it, with a caret.
        self._operation: str | None = None
        #: PEP 249's optional ``messages``: (class, value) of what the last call warned.
        self.messages: list[tuple[type[Exception], str]] = []
        #: What the last statement did, in one line (``tag v1 created at version 7``,
        #: ``3 rows inserted into t (version 9)``), as psycopg's ``statusmessage``;
        #: None after a query.
        self.statusmessage: str | None = None

    # -- PEP 249 attributes --------------------------------------------------------------
    @property
    def description(self) -> list[tuple[str, Any, None, None, None, None, bool]] | None:
        """Name and type of each column of the last result; None after a statement with none."""
        if self._schema is None:
            return None
        return [(f.name, type_code(f.type), None, None, None, None, f.nullable) for f in self._schema]

    @property
    def rowcount(self) -> int:
        """Rows changed by the last INSERT/UPDATE/DELETE; -1 for queries and other statements."""
        return self._rowcount

    @property
    def lastrowid(self) -> None:
        """None: Lance rows have no id an INSERT hands back (PEP 249 allows None)."""
        return None

    @property
    def rownumber(self) -> int | None:
        return None if self._schema is None else self._row_pos

    # -- running -------------------------------------------------------------------------
    @_exclusive
    def execute(self, operation: str, parameters: Sequence[Any] | None = None) -> Cursor:
        """Run ``operation``; ``?`` parameters are bound to ``parameters``, never pasted in.

        Several statements separated by ``;`` run in order; the last one's result remains.
        """
        self._check_open()
        self._reset()
        self.messages.clear()
        self._operation = operation if isinstance(operation, str) else None
        params = _parameters(parameters)
        try:
            trees, count = self.connection.parse(operation)
        except Error as exc:
            raise translate(exc, self._operation) from exc.__cause__
        if count != len(params):
            raise ProgrammingError(
                f"the SQL has {count} parameter{'s' if count != 1 else ''} (?) but "
                f"{len(params)} value{'s were' if len(params) != 1 else ' was'} given"
            )
        result = Result.done()
        for tree in trees:
            if result.reader is not None:  # an earlier statement's rows: only the last one's stay
                result.reader.close()
            ctx = StatementContext(self.connection, self._engine, params, self._registered)
            try:
                result = statements.execute(ctx, tree)
            except Exception as exc:  # engine and Lance errors, as DB-API errors
                self._fresh_engine()
                raise translate(exc, operation) from exc.__cause__ or exc
        self._set_result(result)
        return self

    @_exclusive
    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any]]) -> Cursor:
        """Run ``operation`` once per parameter sequence; rowcount is their sum."""
        self._check_open()
        total = 0
        counted = False
        for parameters in seq_of_parameters:
            self.execute(operation, parameters)
            if self._rowcount >= 0:
                total += self._rowcount
                counted = True
        self._rowcount = total if counted else -1
        return self

    # -- fetching ------------------------------------------------------------------------
    @_exclusive
    def fetchone(self) -> Row | None:
        """The next row, or None when the result is exhausted."""
        self._check_open()
        if self._row_pos >= len(self._rows) and not self._next_batch():
            return None
        row = self._rows[self._row_pos]
        self._row_pos += 1
        return row

    @_exclusive
    def fetchmany(self, size: int | None = None) -> list[Row]:
        """The next ``size`` rows (``arraysize`` by default)."""
        self._check_open()
        size = self.arraysize if size is None else size
        out: list[Row] = []
        while len(out) < size:
            if self._row_pos >= len(self._rows) and not self._next_batch():
                break
            take = self._rows[self._row_pos : self._row_pos + size - len(out)]
            self._row_pos += len(take)
            out.extend(take)
        return out

    @_exclusive
    def fetchall(self) -> list[Row]:
        """Every remaining row."""
        self._check_open()
        out = self._rows[self._row_pos :]
        self._row_pos = len(self._rows)
        while self._next_batch():
            out.extend(self._rows)
            self._row_pos = len(self._rows)
        return out

    def fetch_arrow_table(self) -> pa.Table:
        """Every remaining row as an Arrow table."""
        return self.fetch_record_batch().read_all()

    @_exclusive
    def fetch_record_batch(self, rows_per_batch: int | None = None) -> pa.RecordBatchReader:
        """The remaining rows as a streaming Arrow reader; the cursor is exhausted after it."""
        reader = self._require_result()
        schema = reader.schema
        pending = self._rows[self._row_pos :]
        self._rows, self._row_pos, self._reader = [], 0, None

        def batches() -> Iterator[pa.RecordBatch]:
            if pending:
                rows = [dict(zip(schema.names, r, strict=True)) for r in pending]
                yield pa.RecordBatch.from_pylist(rows, schema=schema)
            try:
                for batch in reader:
                    if rows_per_batch:
                        for start in range(0, batch.num_rows, rows_per_batch):
                            yield batch.slice(start, rows_per_batch)
                    else:
                        yield batch
            except Error:
                raise
            except Exception as exc:  # an engine's error while streaming: as from fetchone
                raise translate(exc) from exc

        return translating(pa.RecordBatchReader.from_batches(schema, batches()), self._operation)

    def fetchdf(self) -> Any:
        """Every remaining row as a pandas DataFrame."""
        return self.fetch_arrow_table().to_pandas()

    def __iter__(self) -> Iterator[Row]:
        while (row := self.fetchone()) is not None:
            yield row

    # -- the rest of PEP 249 -------------------------------------------------------------
    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    def setoutputsize(self, size: Any, column: int | None = None) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    @_exclusive
    def close(self) -> None:
        """Release the cursor; further use raises InterfaceError."""
        if self._closed:
            return
        self._reset()
        self._release()
        self._engine.close()
        self._closed = True

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed: open a new one with connection.cursor()")
        if self.connection.closed:
            raise InterfaceError("the connection is closed: open a new one with lancesql.connect()")

    def _require_result(self) -> pa.RecordBatchReader:
        self._check_open()
        if self._schema is None:
            raise ProgrammingError("no result to fetch: the last statement returned no rows (or none ran)")
        if self._reader is None:
            return pa.RecordBatchReader.from_batches(self._schema, [])
        return self._reader

    def _next_batch(self) -> bool:
        reader = self._require_result()
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                self._reader = None
                self._rows, self._row_pos = [], 0
                return False
            except Exception as exc:
                raise translate(exc, self._operation) from exc
            if batch.num_rows:
                columns = [c.to_pylist() for c in batch.columns]
                self._rows = list(zip(*columns, strict=True))
                self._row_pos = 0
                return True

    def _set_result(self, result: Result) -> None:
        self._rowcount = result.rowcount
        self.statusmessage = result.outcome
        if result.reader is not None and len(result.reader.schema) > 0:
            self._reader = result.reader
            self._schema = result.reader.schema
        else:
            self._reader = None
            self._schema = None

    def _fresh_engine(self) -> None:
        """Start over on a new engine cursor after a failed statement.

        A statement that fails half-way (an INSERT whose rows do not fit the table)
        can leave a result open on the engine cursor, and DuckDB refuses the next
        query while one is ("connection has an open result"): the cursor's next
        statement gets a clean engine session instead.
        """
        self._release()
        try:
            self._engine.close()
        except Exception:  # already closed or broken: it is being replaced anyway
            log.debug("could not close the engine cursor after a failure")
        self._engine = self.connection.engine.cursor(self.connection)

    def _release(self) -> None:
        for name in self._registered:
            try:
                self._engine.unregister(name)
            except Exception:  # a name the engine already forgot
                log.debug("could not unregister %s", name)
        self._registered.clear()

    def _reset(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = None
        self._schema = None
        self._rows, self._row_pos = [], 0
        self._rowcount = -1
        self.statusmessage = None

