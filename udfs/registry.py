"""The registries every engine adapter reads its functions from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import lance
import pyarrow as pa

if TYPE_CHECKING:
    from lancesql.connection import Connection

#: What a table function returns: a Lance dataset (scanned with pushdown) or Arrow data.
Source: TypeAlias = lance.LanceDataset | pa.Table | pa.RecordBatchReader


@dataclass(frozen=True)
class TableFunction:
    """A table function: ``fn(connection, *args, **kwargs) -> Source``.

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
        connection: Connection,
        args: list[Any],
        kwargs: dict[str, Any],
        columns: list[str] | None = None,
    ) -> Source:
        from lancesql.errors import ProgrammingError

        if len(args) > len(self.params):
            raise ProgrammingError(
                f"{self.name}() takes at most {len(self.params)} arguments "
                f"({', '.join(self.params)}), got {len(args)}"
            )
        bound = dict(zip(self.params, args, strict=False))
        for key, value in kwargs.items():
            if key not in self.params:
                raise ProgrammingError(
                    f"{self.name}() has no argument {key!r}; "
                    f"its arguments are {', '.join(self.params)}"
                )
            if key in bound:
                raise ProgrammingError(f"{self.name}() got argument {key!r} twice")
            bound[key] = value
        if self.projects:
            bound["columns"] = columns
        return self.fn(connection, **bound)


@dataclass(frozen=True)
class ScalarFunction:
    """A scalar function over Arrow arrays: ``fn(connection, *arrays) -> pa.Array``."""

    name: str
    fn: Callable[..., pa.Array]
    arg_types: tuple[pa.DataType, ...]
    return_type: pa.DataType


TABLE_FUNCTIONS: dict[str, TableFunction] = {}
SCALAR_FUNCTIONS: dict[str, ScalarFunction] = {}


def table_function(
    name: str, *params: str, projects: bool = False, predicates: tuple[str, ...] = ()
) -> Callable[[Callable[..., Source]], Callable[..., Source]]:
    """Register ``fn`` as table function ``name`` with argument names ``params``
    (see :class:`TableFunction` for ``projects`` and ``predicates``)."""

    def register(fn: Callable[..., Source]) -> Callable[..., Source]:
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
