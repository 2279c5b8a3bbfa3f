"""Running a query: rewrite it, bind its table functions, hand it to the engine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.errors import ProgrammingError
from lancesql.rewrite import rewrite
from lancesql.rewrite.bind_table_functions import META_KEY
from udfs import TABLE_FUNCTIONS
from udfs.registry import Source


def run_query(ctx: StatementContext, tree: exp.Expression) -> Result:
    """Rewrite ``tree``, bind it and run it on the engine."""
    return run_rewritten(ctx, rewrite(tree, ctx.connection.engine.rules))


def run_rewritten(ctx: StatementContext, tree: exp.Expression) -> Result:
    """Run a tree the rewriter already produced."""
    bind(ctx, tree)
    sql, params = to_sql(ctx, tree)
    return Result(ctx.engine.execute(sql, params))


def bind(ctx: StatementContext, tree: exp.Expression) -> None:
    """Call each table function the tree's placeholders stand for, and register the result."""
    for table in tree.find_all(exp.Table):
        if META_KEY in table.meta:
            ctx.engine.register(table.name, call_source(ctx, table))
            ctx.registered.append(table.name)


def call_source(ctx: StatementContext, table: exp.Table) -> Source:
    """The result of the table function that placeholder ``table`` stands for."""
    name, args, kwargs = table.meta[META_KEY]
    values = [evaluate(ctx, a) for a in args]
    named = {k: evaluate(ctx, v) for k, v in kwargs.items()}
    return TABLE_FUNCTIONS[name](ctx.connection, values, named)


def sources(ctx: StatementContext, tree: exp.Expression) -> list[Source]:
    """The sources a query reads, in order, without running it (for DESCRIBE, EXPLAIN)."""
    rewritten = rewrite(tree, ctx.connection.engine.rules)
    return [call_source(ctx, t) for t in rewritten.find_all(exp.Table) if META_KEY in t.meta]


def to_sql(ctx: StatementContext, tree: exp.Expression) -> tuple[str, list[Any]]:
    """The engine's SQL for ``tree``, with parameters renumbered ``$1..$n`` in order."""
    params: list[Any] = []
    if ctx.params or tree.find(exp.Placeholder):
        tree = tree.copy()
        for node in list(tree.find_all(exp.Placeholder)):
            params.append(parameter(ctx, node))
            node.replace(exp.Placeholder(this=str(len(params))))
    dialect = ctx.connection.engine.dialect
    return tree.sql(dialect=dialect, normalize_functions=False), params


def parameter(ctx: StatementContext, node: exp.Placeholder) -> Any:
    """The value bound to placeholder ``node`` (``$n``, numbered by the parser)."""
    try:
        index = int(node.name) - 1
    except ValueError:
        raise ProgrammingError(
            f"named parameter {node.sql()} is not supported: use ? (qmark) parameters"
        ) from None
    if index >= len(ctx.params):
        raise ProgrammingError(
            f"the statement has a parameter ${index + 1} but {len(ctx.params)} "
            f"value{'s were' if len(ctx.params) != 1 else ' was'} given"
        )
    return ctx.params[index]


def evaluate(ctx: StatementContext, node: exp.Expression) -> Any:
    """The Python value of a table function's argument.

    Literals are read directly; a parameter is its bound value; anything else (a scalar
    subquery, ``embed_text('...')``) is computed by the engine as ``SELECT <expr>``.
    """
    if isinstance(node, exp.Literal):
        return node.name if node.is_string else _number(node.name)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return -_number(node.this.name)
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Placeholder):
        return parameter(ctx, node)
    if isinstance(node, exp.Array) and all(isinstance(e, (exp.Literal, exp.Neg)) for e in node.expressions):
        return [evaluate(ctx, e) for e in node.expressions]
    if (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Literal)
        and node.to.is_type(*exp.DataType.TEMPORAL_TYPES)
    ):
        try:
            return dt.datetime.fromisoformat(node.this.name)
        except ValueError:
            raise ProgrammingError(
                f"bad timestamp {node.this.name!r}: write it as 'YYYY-MM-DD HH:MM:SS'"
            ) from None
    if isinstance(node, exp.Var) or (isinstance(node, exp.Column) and not node.table):
        raise ProgrammingError(
            f"{node.sql()} is not a value here: quote names and strings ('{node.name}')"
        )
    select = exp.select(exp.alias_(node.copy(), "value"))
    result = run_rewritten(ctx, select)
    assert result.reader is not None
    table = result.reader.read_all()
    if table.num_rows != 1:
        raise ProgrammingError(f"{node.sql()} must give exactly one value, it gave {table.num_rows}")
    value = table.column(0)[0]
    return value.as_py() if isinstance(value, pa.Scalar) else value


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)
