"""Running a query: rewrite it, bind its table functions, hand it to the engine."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql import direct, direct_aggregate, fast_path, lance_sql, views
from lancesql.context import Result, StatementContext
from lancesql.errors import ProgrammingError
from lancesql.lance_sql import PREDICATE_SHAPES
from lancesql.lateral import is_lateral, lateral_source
from lancesql.rewrite import rewrite
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.rewrite.expand_views import expand_views
from lancesql.rewrite.project_table_functions import COLUMNS_KEY
from lancesql.settings import declare, parse_bool
from lancesql.udfs import TABLE_FUNCTIONS
from lancesql.udfs.registry import Source, TableFunction

_PREPARED = "lancesql_prepared"
#: Grouped-count shapes whose engine result schema a connection keeps.
_SCHEMAS_KEPT = 1024

#: The rewrite rules a boolean setting turns off: rule name -> setting.
SWITCHES = {
    "order_by_distance": "rewrite_order_by_distance",
    "order_by_distance_recomputed": "rewrite_order_by_distance",
}

declare(
    "rewrite_order_by_distance",
    True,
    parse_bool,
    "Answer SELECT ... ORDER BY array_cosine_distance(col, q) LIMIT k (and array_distance, "
    "array_negative_inner_product) with vector_search, the WHERE clause as its prefilter.",
)


@dataclass(frozen=True)
class Prepared:
    """A query made ready for an engine: everything about it that the SQL text decides.

    The rewriter is pure, so a statement's rewritten tree, its engine SQL and the order
    of its parameters depend on its text alone; they are worked out once and kept on
    the parsed tree (which the connection caches by text), and each run then only calls
    the table functions and hands the SQL to the engine. The engine SQL is written when
    the engine first runs the query: one Lance answers alone never needs it.
    """

    tree: exp.Expression
    #: The original ``$n`` placeholders, in the order the engine SQL numbers them.
    params: tuple[exp.Placeholder, ...]
    #: What Lance could answer of it without the engine (:mod:`lancesql.fast_path`).
    fast: fast_path.FastPath | None = field(default=None, compare=False)
    dialect: str = "duckdb"

    @functools.cached_property
    def sql(self) -> str:
        """The engine's SQL, parameters renumbered ``$1..$n`` in the order of :attr:`params`."""
        if self.params:
            generated = self.tree.copy()
            for i, node in enumerate(list(generated.find_all(exp.Placeholder))):
                node.replace(exp.Placeholder(this=str(i + 1)))
            # a copy of our own, so the generator need not copy it again
            return generated.sql(dialect=self.dialect, normalize_functions=False, copy=False)
        return self.tree.sql(dialect=self.dialect, normalize_functions=False)


def prepared_from(rewritten: exp.Expression, dialect: str) -> Prepared:
    """An already rewritten tree made ready for the engine (its SQL written on first use)."""
    original = tuple(rewritten.find_all(exp.Placeholder))
    return Prepared(rewritten, original, fast_path.analyse(rewritten), dialect)


def all_views(ctx: StatementContext) -> dict[str, str]:
    """The views this connection sees: those stored under the root, and its TEMP views
    (which hide a stored view of the same name)."""
    return {**views.stored(ctx.catalog), **ctx.connection.temp_views}


def with_views(ctx: StatementContext, tree: exp.Expression) -> exp.Expression:
    """``tree`` with each view it names expanded."""
    seen = all_views(ctx)
    return expand_views(tree.copy(), views.parsed(seen)) if seen else tree


def run_query(ctx: StatementContext, tree: exp.Expression) -> Result:
    """Expand the views ``tree`` names, rewrite it, bind it and run it on the engine."""
    engine = ctx.connection.engine
    seen = all_views(ctx)
    key = (engine.name, tuple(switches(ctx).values()), tuple(sorted(seen.items())))
    cache = tree.meta.setdefault(_PREPARED, {})
    prepared = cache.get(key)
    if prepared is None:
        expanded = expand_views(tree.copy(), views.parsed(seen)) if seen else tree
        rewritten = rewritten_for(ctx, expanded)
        prepared = cache[key] = prepared_from(rewritten, engine.dialect)
    return run_prepared(ctx, prepared)


def switches(ctx: StatementContext) -> dict[str, bool]:
    """Which switchable rewrite rules the statement's settings leave on."""
    return {rule: bool(ctx.settings.get(setting)) for rule, setting in SWITCHES.items()}


def rewritten_for(ctx: StatementContext, tree: exp.Expression) -> exp.Expression:
    """``tree`` through the rewrite rules of the statement's engine, as its settings say."""
    engine = ctx.connection.engine
    return rewrite(tree, engine.rules, functions=TABLE_FUNCTIONS, switches=switches(ctx))


def run_rewritten(ctx: StatementContext, tree: exp.Expression) -> Result:
    """Run a tree the rewriter already produced."""
    return run_prepared(ctx, prepared_from(tree, ctx.connection.engine.dialect))


def run_prepared(ctx: StatementContext, prepared: Prepared) -> Result:
    """Bind a prepared query's sources and parameters and run it.

    A query that only picks columns of one source (a search's result, or a Lance table
    read through a filter Lance evaluates) is answered without the engine (see
    :mod:`lancesql.direct`), and so is a grouped count of one Lance table once the engine
    has run one of the same shape on the connection (see :mod:`lancesql.direct_aggregate`).
    """
    computed: dict[str, Source] = {}
    fast = prepared.fast
    if fast is not None and fast.reads:
        source = computed[fast.table.name] = call_source(ctx, fast.table)
        result = direct.project(source, fast, lambda p: parameter(ctx, p))
        if result is not None:
            notes = _notes(source)
            return Result.of(result.replace_schema_metadata({**(result.schema.metadata or {}), **notes}))
    learn = None
    if fast is not None and fast.groups:
        source = computed[fast.table.name] = call_source(ctx, fast.table)
        learn = direct_aggregate.key(fast, source) if isinstance(source, lance.LanceDataset) else None
        schema = ctx.connection.aggregate_schemas.get(learn)
        if schema is not None:
            assert isinstance(source, lance.LanceDataset)
            grouped = direct_aggregate.aggregate(source, fast, schema, lambda p: parameter(ctx, p))
            if grouped is not None:
                return Result.of(grouped)
    notes = bind(ctx, prepared.tree, computed)
    params = [parameter(ctx, p) for p in prepared.params]
    reader = ctx.engine.execute(prepared.sql, params)
    if learn is not None:
        schemas = ctx.connection.aggregate_schemas
        if len(schemas) >= _SCHEMAS_KEPT:
            schemas.pop(next(iter(schemas)))
        schemas[learn] = reader.schema
    return Result(_annotated(reader, notes) if notes else reader)


def bind(
    ctx: StatementContext, tree: exp.Expression, computed: dict[str, Source] | None = None
) -> dict[bytes, bytes]:
    """Call each table function the tree's placeholders stand for (unless ``computed``
    already holds its result), and register the result.

    A source that is the very object already registered under that name (the same
    dataset at the same version) is not registered again, except the Lance tables of a
    statement that reads several: the engine may show those from a copy it holds, and
    counts their reads to decide when to make one. Returns the ``lancesql.*``
    schema metadata of the Arrow results (how ``lance_changes`` computed its rows, say),
    which the engines drop, so that the query's result can carry it.
    """
    notes: dict[bytes, bytes] = {}
    bound: list[tuple[exp.Table, Source]] = []
    for table in tree.find_all(exp.Table):
        if META_KEY in table.meta:
            source = (computed or {}).get(table.name)
            if source is None:
                source = call_source(ctx, table)
            notes.update(_notes(source))
            bound.append((table, source))
    # a statement reading several Lance tables: an object standing for it, which tells
    # the engine's count of reads one statement from the next
    joined = object() if sum(isinstance(s, lance.LanceDataset) for _, s in bound) > 1 else None
    for table, source in bound:
        again = joined is not None and isinstance(source, lance.LanceDataset)
        if again or ctx.registered.get(table.name) is not source:
            kept = ctx.engine.register(
                table.name, source, columns=table.meta.get(COLUMNS_KEY), statement=joined
            )
            ctx.registered[table.name] = source if kept else SHOWN_AS_COPY
    return notes


#: What ``ctx.registered`` holds for a name an engine showed as a copy (never a source,
#: so the next statement registers the name again).
SHOWN_AS_COPY = object()


def _notes(source: Source) -> dict[bytes, bytes]:
    """The ``lancesql.*`` schema metadata of an Arrow source."""
    if isinstance(source, (pa.Table, pa.RecordBatchReader)) and source.schema.metadata:
        return {k: v for k, v in source.schema.metadata.items() if k.startswith(b"lancesql.")}
    return {}


def _annotated(reader: pa.RecordBatchReader, notes: dict[bytes, bytes]) -> pa.RecordBatchReader:
    schema = reader.schema.with_metadata({**(reader.schema.metadata or {}), **notes})
    return pa.RecordBatchReader.from_batches(schema, reader)


def call_source(ctx: StatementContext, table: exp.Table) -> Source:
    """The result of the table function that placeholder ``table`` stands for."""
    if is_lateral(table):
        return lateral_source(ctx, table, run_query, argument)
    name, args, kwargs = table.meta[META_KEY]
    function = TABLE_FUNCTIONS[name]
    params = function.params
    names = [params[i] if i < len(params) else "" for i in range(len(args))]
    values = [argument(ctx, function, p, a) for p, a in zip(names, args, strict=True)]
    named = {k: argument(ctx, function, k, v) for k, v in kwargs.items()}
    return function(ctx.connection, values, named, table.meta.get(COLUMNS_KEY))


def argument(ctx: StatementContext, function: TableFunction, param: str, node: exp.Expression) -> Any:
    """The value of argument ``param`` of a call: a predicate argument given as a SQL
    condition becomes Lance filter text, and one given as text has its double-quoted
    names written as Lance reads names; anything else is evaluated."""
    if param in function.predicates and isinstance(node, PREDICATE_SHAPES):
        return lance_sql.render(node, lambda p: parameter(ctx, p))
    value = evaluate(ctx, node)
    if param in function.predicates and isinstance(value, str):
        return lance_sql.lance_filter(value)
    return value


def sources(ctx: StatementContext, tree: exp.Expression) -> list[Source]:
    """The sources a query reads, in order, without running it (for DESCRIBE, EXPLAIN)."""
    rewritten = rewritten_for(ctx, with_views(ctx, tree))
    return [call_source(ctx, t) for t in rewritten.find_all(exp.Table) if META_KEY in t.meta]


def to_sql(ctx: StatementContext, tree: exp.Expression) -> tuple[str, list[Any]]:
    """The engine's SQL for a rewritten ``tree`` and its parameter values, in order."""
    prepared = prepared_from(tree, ctx.connection.engine.dialect)
    return prepared.sql, [parameter(ctx, p) for p in prepared.params]


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
        raise ProgrammingError(f"{node.sql()} is not a value here: quote names and strings ('{node.name}')")
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
