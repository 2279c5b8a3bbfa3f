"""The registries every engine adapter reads its functions from."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeAlias

import lance
import pyarrow as pa

from lancesql.catalog import Catalog
from lancesql.errors import InterfaceError, ProgrammingError
from lancesql.settings import Settings


class Session(Protocol):
    """What a SQL function may use of the connection that runs it: its catalog and its
    settings (a :class:`lancesql.Connection` is one)."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def settings(self) -> Settings: ...


#: What a table function returns: a Lance dataset (scanned with pushdown) or Arrow data.
Source: TypeAlias = lance.LanceDataset | pa.Table | pa.RecordBatchReader


@dataclass(frozen=True)
class TableFunction:
    """A table function: ``fn(session, *args, **kwargs) -> Source``.

    ``params`` lists the names of the arguments in order, so that a call may give any
    of them by name (``version => 'v1'``) as well as by position.

    A function whose result is computed before the engine runs (a search) cannot have
    the engine push its projection down, so with ``projects`` it takes a keyword
    ``columns``: the columns the query reads of its result (None: all of them), found by
    the ``project_table_functions`` rule. ``predicates`` names the arguments that take a
    filter on the function's table: a string in Lance's filter syntax, or a SQL boolean
    expression (``filter => label = ?``) that lancesql renders into that syntax with its
    parameters bound.
    """

    name: str
    fn: Callable[..., Source]
    params: tuple[str, ...]
    projects: bool = False
    predicates: tuple[str, ...] = ()

    def __call__(
        self,
        session: Session,
        args: list[Any],
        kwargs: dict[str, Any],
        columns: list[str] | None = None,
    ) -> Source:
        if len(args) > len(self.params):
            raise ProgrammingError(
                f"{self.name}() takes at most {len(self.params)} arguments "
                f"({', '.join(self.params)}), got {len(args)}"
            )
        bound = dict(zip(self.params, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.params:
                raise ProgrammingError(
                    f"{self.name}() has no argument {key!r}; its arguments are {', '.join(self.params)}"
                )
            if key in bound:
                raise ProgrammingError(f"{self.name}() got argument {key!r} twice")
            bound[key] = value
        if self.projects:
            bound["columns"] = columns
        return self.fn(session, **bound)


@dataclass(frozen=True)
class ScalarFunction:
    """A scalar function over Arrow arrays: ``fn(session, *arrays) -> pa.Array``.

    ``fn`` gets the session (its connection) so that it can read its settings (``embed_image`` reads
    ``clip_model``, ...), which ``SET`` may change between statements. Engines call the
    function without one, so each connection registers :meth:`bind`'s copy, which holds
    a weak reference to it: the engine keeps the function alive and must not keep the
    connection alive with it.
    """

    name: str
    fn: Callable[..., pa.Array]
    arg_types: tuple[pa.DataType, ...]
    return_type: pa.DataType
    session: weakref.ref[Session] | None = field(default=None, compare=False, repr=False)

    def bind(self, session: Session) -> ScalarFunction:
        """This function with ``session`` bound, as an engine calls it: ``f(*arrays)``."""
        return replace(self, session=weakref.ref(session))

    def __call__(self, *arrays: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Run on one batch; DuckDB hands chunked arrays, which become plain arrays here."""
        session = self.session() if self.session is not None else None
        if session is None:
            raise InterfaceError(f"{self.name}() was called without an open lancesql connection")
        plain = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in arrays]
        return self.fn(session, *plain)


TABLE_FUNCTIONS: dict[str, TableFunction] = {}
SCALAR_FUNCTIONS: dict[str, ScalarFunction] = {}


def table_function(
    name: str, *, projects: bool = False, predicates: tuple[str, ...] = ()
) -> Callable[[Callable[..., Source]], Callable[..., Source]]:
    """Register ``fn`` as table function ``name`` (see :class:`TableFunction` for
    ``projects`` and ``predicates``).

    Its SQL arguments are ``fn``'s parameters after the session, in order, so a
    call may give them by position or by name; keyword-only parameters (``columns``)
    are lancesql's own and cannot be given from SQL.
    """

    def register(fn: Callable[..., Source]) -> Callable[..., Source]:
        parameters = list(inspect.signature(fn).parameters.values())[1:]
        params = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)
        TABLE_FUNCTIONS[name] = TableFunction(name, fn, params, projects, predicates)
        return fn

    return register


def scalar_function(
    name: str, arg_types: tuple[pa.DataType, ...], return_type: pa.DataType
) -> Callable[[Callable[..., pa.Array]], Callable[..., pa.Array]]:
    """Register ``fn`` as scalar function ``name``."""

    def register(fn: Callable[..., pa.Array]) -> Callable[..., pa.Array]:
        SCALAR_FUNCTIONS[name] = ScalarFunction(name, fn, arg_types, return_type)
        return fn

    return register
