"""Which rows a query selects, as Lance row ids: the row-id query, the table that gives
the ids, and the columns to take from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
from sqlglot import exp

from lancesql.connection import Connection
from lancesql.context import StatementContext
from lancesql.errors import Error, NotSupportedError, ProgrammingError, translate
from lancesql.parse import parse
from lancesql.query import call_source, to_sql
from lancesql.rewrite import rewrite
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.udfs import TABLE_FUNCTIONS

#: The engine column the row-id query returns.
ROWID = "__lancesql_rowid"


@dataclass(frozen=True)
class RowPlan:
    """What a map-style query reads: the placeholder of its row source, and its output
    columns as ``(output name, source column)``; ``None`` columns means ``*``."""

    table: exp.Table
    columns: list[tuple[str, str]] | None
    excluded: frozenset[str]


def _needs_iterable(why: str) -> NotSupportedError:
    return NotSupportedError(
        f"torch_dataset() reads rows by their Lance row id, but {why}, so its rows have no "
        "row id: pass iterable=True for a torch IterableDataset that streams the query's "
        "result, or select plain columns of one table"
    )


def plan_rows(tree: exp.Expression) -> RowPlan:
    """Check that a rewritten query's rows are rows of one Lance table, and say which.

    >>> import sqlglot
    >>> sql = "SELECT image_emb AS x, label FROM t WHERE id < 5"
    >>> plan = plan_rows(rewrite(sqlglot.parse_one(sql), functions=TABLE_FUNCTIONS))
    >>> plan.table.alias_or_name, plan.columns
    ('t', [('x', 'image_emb'), ('label', 'label')])
    >>> grouped = sqlglot.parse_one("SELECT label, count(*) FROM t GROUP BY 1")
    >>> plan_rows(rewrite(grouped, functions=TABLE_FUNCTIONS))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lancesql.errors.NotSupportedError: torch_dataset() reads rows by their Lance row id, ...
    """
    if not isinstance(tree, exp.Select):
        kind = type(tree).__name__.upper()
        raise _needs_iterable(f"the statement is a {kind}, not a single SELECT")
    if tree.args.get("group") or tree.args.get("having"):
        raise _needs_iterable("the query groups rows (GROUP BY)")
    if tree.args.get("distinct"):
        raise _needs_iterable("the query has DISTINCT")
    for item in tree.expressions:
        if item.find(exp.AggFunc):
            raise _needs_iterable(f"{item.sql('duckdb')} is an aggregate")
        if item.find(exp.Window):
            raise _needs_iterable(f"{item.sql('duckdb')} is a window function")
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is None:
        raise _needs_iterable("the query reads no table")
    joins = tree.args.get("joins") or []
    tables = {
        t.alias_or_name: t
        for t in [from_.this, *(j.this for j in joins)]
        if isinstance(t, exp.Table)
    }
    qualifiers = {
        c.table for item in tree.expressions for c in item.find_all(exp.Column) if c.table
    }
    if not joins:
        chosen: exp.Expression = from_.this
    elif len(qualifiers) == 1 and next(iter(qualifiers)) in tables:
        chosen = tables[next(iter(qualifiers))]
    else:
        raise ProgrammingError(
            "torch_dataset() over a join needs every selected column qualified by the one "
            "table whose rows it returns (SELECT t.image_emb, t.label FROM t JOIN ...)"
        )
    if (
        not isinstance(chosen, exp.Table)
        or META_KEY not in chosen.meta
        or chosen.meta[META_KEY][0] != "lance_scan"
    ):
        source = (
            f"{chosen.meta[META_KEY][0]}(...)"
            if isinstance(chosen, exp.Table) and META_KEY in chosen.meta
            else chosen.sql("duckdb")
        )
        raise _needs_iterable(f"its rows come from {source}, not from a Lance table")
    alias = chosen.alias_or_name
    columns: list[tuple[str, str]] = []
    excluded: frozenset[str] = frozenset()
    for item in tree.expressions:
        target = item.this if isinstance(item, exp.Alias) else item
        star = (
            target
            if isinstance(target, exp.Star)
            else target.this
            if isinstance(target, exp.Column)
            else None
        )
        if isinstance(star, exp.Star):
            if len(tree.expressions) != 1 or (isinstance(target, exp.Star) and joins):
                raise ProgrammingError("torch_dataset(): write * alone, or name the columns")
            excluded = frozenset(
                c.name for c in star.args.get("except_") or star.args.get("except") or []
            )
            return RowPlan(chosen, None, excluded)
        if not isinstance(target, exp.Column) or (target.table and target.table != alias):
            raise _needs_iterable(
                f"{item.sql('duckdb')} is not a column of {alias} (compute it in transform=)"
            )
        columns.append((item.alias_or_name, target.name))
    return RowPlan(chosen, columns, excluded)


def _row_id_query(tree: exp.Select, alias: str, columns: list[tuple[str, str]]) -> exp.Select:
    """``tree`` selecting the row source's ``_rowid`` instead of its ``columns``.

    ORDER BY may name an output alias or position; those are put back to the column.
    """
    outputs = dict(columns)
    order = tree.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            key = ordered.this
            if isinstance(key, exp.Literal) and key.is_int and 1 <= int(key.name) <= len(columns):
                ordered.set("this", exp.column(columns[int(key.name) - 1][1], table=alias))
            elif isinstance(key, exp.Column) and not key.table and key.name in outputs:
                ordered.set("this", exp.column(outputs[key.name], table=alias))
    tree.set("expressions", [exp.alias_(exp.column("_rowid", table=alias), ROWID)])
    return tree


def _resolve_columns(plan: RowPlan, dataset: lance.LanceDataset) -> list[tuple[str, str]]:
    """The plan's columns as ``(output name, dataset column)``, checked against the
    dataset (the engine never sees them: the row-id query selects ``_rowid`` only)."""
    names = [f.name for f in dataset.schema]
    by_lower = {n.lower(): n for n in names}
    if plan.columns is None:
        unknown = {c for c in plan.excluded if c.lower() not in by_lower}
        if unknown:
            raise ProgrammingError(f"EXCLUDE names unknown columns: {', '.join(sorted(unknown))}")
        excluded = {by_lower[c.lower()] for c in plan.excluded}
        return [(n, n) for n in names if n not in excluded]
    resolved = []
    for out, src in plan.columns:
        actual = src if src in names else by_lower.get(src.lower())
        if actual is None:
            raise ProgrammingError(
                f"column {src!r} is not in table {plan.table.alias_or_name!r}; its columns are "
                f"{', '.join(names)}"
            )
        resolved.append((out, actual))
    return resolved


def one_query(sql: str, params: Sequence[Any]) -> exp.Expression:
    """The one statement of ``sql``, its ``?`` count checked against ``params``."""
    trees, count = parse(sql)
    if len(trees) != 1:
        raise ProgrammingError(f"torch_dataset() takes one query, got {len(trees)} statements")
    if count != len(params):
        raise ProgrammingError(
            f"the SQL has {count} parameter(s) (?) but {len(params)} value(s) were given"
        )
    return trees[0]


def select_row_ids(
    con: Connection, sql: str, params: list[Any]
) -> tuple[lance.LanceDataset, np.ndarray, list[tuple[str, str]]]:
    """Run the row-id query: the row source's dataset, the row ids, the output columns."""
    tree = rewrite(one_query(sql, params), functions=TABLE_FUNCTIONS)
    plan = plan_rows(tree)
    assert isinstance(tree, exp.Select)
    engine = con.engine.cursor(con)
    ctx = StatementContext(con, engine, params)
    try:
        dataset: lance.LanceDataset | None = None
        for table in list(tree.find_all(exp.Table)):
            if META_KEY not in table.meta:
                continue
            source = call_source(ctx, table)
            is_rows = table is plan.table
            if is_rows:
                assert isinstance(source, lance.LanceDataset)
                dataset = source
            engine.register(table.name, source, row_ids=is_rows)
        assert dataset is not None
        columns = _resolve_columns(plan, dataset)
        query = _row_id_query(tree, plan.table.alias_or_name, columns)
        text, values = to_sql(ctx, query)
        reader = engine.execute(text, values)
        ids = reader.read_all().column(0)
    except Error:
        raise
    except Exception as exc:
        raise translate(exc) from exc
    finally:
        engine.close()
    row_ids = ids.to_numpy().astype(np.uint64) if len(ids) else np.empty(0, np.uint64)
    return dataset, row_ids, columns
