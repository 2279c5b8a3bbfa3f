"""``ALTER TABLE``: computed and backfilled columns, merges, and schema evolution.

Each statement commits one Lance version, so one statement makes one kind of change:
``ADD COLUMN``s (any number; computed by Lance when it can, else backfilled through the
engine), ``ADD COLUMNS FROM (query) ON key`` (a merge), ``DROP COLUMN``s, or
``RENAME COLUMN`` / ``ALTER COLUMN ... TYPE`` changes. Mixing kinds would take several
versions, and is refused with a message saying to split the statement.

``ALTER TABLE t CREATE TAG ...`` is not sqlglot's Alter (it comes as a Command) and
belongs to the tags module.
"""

from __future__ import annotations

import itertools
from typing import Any, cast

import lance
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lancesql.arrow_types import arrow_type, sql_type, storage_schema
from lancesql.context import Result, StatementContext
from lancesql.errors import (
    DatabaseError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
    lance_error,
)
from lancesql.executors import executor_for
from lancesql.lance_sql import assignable, to_lance
from lancesql.query import run_query
from lancesql.statements.base import command_tokens, statement
from lancesql.statements.grammar import Tokens
from lancesql.writes import committed, open_target


@statement(exp.Alter)
def alter_table(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """Dispatch on the kind of change; one kind per statement."""
    if str(tree.args.get("kind", "")).upper() != "TABLE":
        return None
    actions = tree.args.get("actions") or []
    if any(isinstance(a, exp.Command) for a in actions):
        return None  # ``DROP TAG ...`` and other forms sqlglot keeps as text: the tags module's
    kinds = {_kind(a) for a in actions}
    if not actions or None in kinds:
        bad = next((a for a in actions if _kind(a) is None), None)
        raise NotSupportedError(
            f"ALTER TABLE {bad.sql(dialect='duckdb') if bad else ''} is not supported; lancesql "
            "supports ADD COLUMN c [TYPE] [AS (expr)], ADD COLUMNS FROM (query) ON key, "
            "DROP COLUMN, RENAME COLUMN a TO b, ALTER COLUMN a TYPE t, CREATE/DROP TAG"
        )
    if len(kinds) > 1:
        raise NotSupportedError(
            "each ALTER TABLE statement commits one Lance version, so it makes one kind of "
            "change: run ADD, DROP and RENAME/ALTER COLUMN as separate statements"
        )
    uri, ds = open_target(ctx, tree.this)
    kind = kinds.pop()
    name = ctx.catalog.name_of(uri)
    if kind == "add":
        _add_columns(ctx, ds, name, actions)
    elif kind == "merge":
        if len(actions) > 1:
            raise NotSupportedError("one ADD COLUMNS FROM (...) per statement")
        _merge(ctx, ds, name, actions[0])
    elif kind == "drop":
        _drop_columns(ds, name, actions)
    else:
        _alter_columns(ds, name, actions)
    committed(ctx, uri, ds)
    return Result.done()


_COLUMN_ACTIONS = {"ADD", "DROP", "RENAME", "ALTER"}


@statement(exp.Command)
def alter_mixed(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """An ALTER TABLE sqlglot could not parse because it mixes column actions
    (``DROP COLUMN a, ADD COLUMN b ...``): say why it is refused. Tag commands
    (``ALTER TABLE t CREATE TAG ...``) are left to the tags module."""
    if str(tree.this).upper() != "ALTER":
        return None
    # the tokens the other handlers of this command read too (tokenized once)
    words = [t.text.upper() for t in Tokens(command_tokens(tree)).tokens]  # type: ignore[arg-type]
    if "TAG" in words or "COLUMN" not in words:
        return None
    column_actions = {w for w, nxt in itertools.pairwise(words) if nxt == "COLUMN" and w in _COLUMN_ACTIONS}
    if len(column_actions) > 1:
        raise NotSupportedError(
            "each ALTER TABLE statement commits one Lance version, so it makes one kind of "
            "change: run ADD, DROP and RENAME/ALTER COLUMN as separate statements"
        )
    raise ProgrammingError(
        "this ALTER TABLE does not parse; lancesql supports ADD COLUMN c [TYPE] [AS (expr)], "
        "ADD COLUMNS FROM (query) ON key, DROP COLUMN c, RENAME COLUMN a TO b, "
        "ALTER COLUMN a TYPE t"
    )


def _kind(action: exp.Expression) -> str | None:
    if isinstance(action, exp.ColumnDef):
        if isinstance(action.this, exp.Anonymous) and str(action.this.this).upper() == "FROM":
            return "merge"
        return "add" if isinstance(action.this, exp.Identifier) else None
    if isinstance(action, exp.Drop) and str(action.args.get("kind", "")).upper() == "COLUMN":
        return "drop"
    if isinstance(action, exp.RenameColumn):
        return "alter"
    if isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
        return "alter"
    return None


# -- ADD COLUMN ---------------------------------------------------------------------------
def _add_columns(
    ctx: StatementContext, ds: lance.LanceDataset, name: str, actions: list[exp.Expression]
) -> None:
    existing = set(ds.schema.names)
    computed: dict[str, exp.Expression] = {}
    types: dict[str, pa.DataType | None] = {}
    empty: list[pa.Field] = []
    for action in actions:
        column = action.name
        if not column or "." in column:
            raise ProgrammingError(
                f"bad column name {column!r}: a column name cannot be empty or contain '.' "
                "(Lance reads a dot as a path into a struct column)"
            )
        if column in existing or column in computed or column in {f.name for f in empty}:
            raise ProgrammingError(
                f"column {column!r} already exists in {name}: pick another name, or "
                f"ALTER TABLE {name} DROP COLUMN {column} first"
            )
        dtype = action.args.get("kind")
        declared = arrow_type(dtype) if isinstance(dtype, exp.DataType) else None
        expression = _computed(action)
        if expression is None:
            if declared is None:
                raise ProgrammingError(
                    f"ADD COLUMN {column} needs a type (ADD COLUMN {column} BIGINT) or an "
                    f"expression (ADD COLUMN {column} AS (...))"
                )
            empty.append(pa.field(column, declared))
            continue
        computed[column] = expression
        types[column] = declared
    if empty and computed:
        raise NotSupportedError("add empty columns and computed columns in separate ALTER TABLE statements")
    if empty:
        # Metadata only: all-NULL columns, no data written.
        try:
            ds.add_columns(empty)
        except (OSError, ValueError) as exc:
            raise lance_error(exc, f"ALTER TABLE {name} ADD COLUMN failed") from exc
        return
    _check_columns(ds, name, computed)
    lance_sql = _lance_transforms(ctx, ds, computed, types)
    # where the engine computes it, a declared type is SQL's CAST of the value (DuckDB
    # rounds to a DECIMAL's scale), not Arrow's
    for column, declared in types.items():
        cast_to = sql_type(declared) if declared is not None else None
        if cast_to is not None:
            computed[column] = exp.cast(computed[column].copy(), cast_to)
    executor_for(ctx).add_columns(ctx, ds, computed, types, lance_sql)


def _check_columns(ds: lance.LanceDataset, name: str, computed: dict[str, exp.Expression]) -> None:
    """Refuse an expression naming a column the table lacks, before any work, with the
    table's columns: the engine would name lancesql's internal ones instead."""
    known = {c.lower() for c in ds.schema.names} | {"_rowid", "_rowaddr"}
    for column, expression in computed.items():
        for ref in expression.find_all(exp.Column):
            inner = ref.find_ancestor(exp.Subquery, exp.Select, exp.Lambda)
            if inner is not None or isinstance(ref.this, exp.Star):
                continue  # a subquery's own tables, or a lambda's parameter
            if ref.name.lower() not in known:
                raise ProgrammingError(
                    f"ADD COLUMN {column}: {name} has no column {ref.name!r} "
                    f"(columns: {', '.join(ds.schema.names)})"
                )


def _computed(action: exp.Expression) -> exp.Expression | None:
    for constraint in action.args.get("constraints") or []:
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.ComputedColumnConstraint):
            expression = kind.this
            return expression.this if isinstance(expression, exp.Paren) else expression
    return None


def _lance_transforms(
    ctx: StatementContext,
    ds: lance.LanceDataset,
    computed: dict[str, exp.Expression],
    types: dict[str, pa.DataType | None],
) -> dict[str, str] | None:
    """Lance SQL for every column, or None when any needs the engine (one Lance would
    compute otherwise than the engine: see :func:`lancesql.lance_sql.assignable`)."""
    out = {}
    for column, expression in computed.items():
        declared = types[column]
        value = to_lance(expression, ctx.params)
        if value is None or not assignable(value, declared, ds.schema):
            return None
        target = expression
        if declared is not None:
            cast_to = sql_type(declared)
            if cast_to is None:
                return None
            target = exp.cast(expression.copy(), cast_to)
        text = to_lance(target, ctx.params)
        if text is None:
            return None
        out[column] = text
    return out


# -- ADD COLUMNS FROM (query) ON key --------------------------------------------------------
def _merge(ctx: StatementContext, ds: lance.LanceDataset, name: str, action: exp.Expression) -> None:
    query = action.this.expressions[0] if action.this.expressions else None
    keys = [c.args.get("kind") for c in action.args.get("constraints") or []]
    key_node = keys[0].this if keys and isinstance(keys[0], exp.OnProperty) else None
    if not isinstance(query, exp.Query) or key_node is None:
        raise ProgrammingError(f"write ALTER TABLE {name} ADD COLUMNS FROM (SELECT key, col, ...) ON key")
    key = key_node.name if isinstance(key_node, (exp.Identifier, exp.Column)) else None
    if not key:
        raise NotSupportedError("ADD COLUMNS FROM ... ON takes one key column")
    if key not in ds.schema.names:
        raise ProgrammingError(
            f"key {key!r} is not a column of {name} (columns: {', '.join(ds.schema.names)})"
        )
    result = run_query(ctx, cast(exp.Expression, query))
    assert result.reader is not None
    table = result.reader.read_all()
    if key not in table.column_names:
        raise ProgrammingError(
            f"the query of ADD COLUMNS FROM must return the key column {key!r} "
            f"(it returns {', '.join(table.column_names)})"
        )
    new = [c for c in table.column_names if c != key]
    if not new:
        raise ProgrammingError("the query of ADD COLUMNS FROM gives no column besides the key")
    clash = [c for c in new if c in ds.schema.names]
    if clash:
        raise ProgrammingError(
            f"column {clash[0]!r} already exists in {name}: rename it in the query "
            f"(SELECT {key}, {clash[0]} AS {clash[0]}_2 ...)"
        )
    keys_col = table.column(key)
    if keys_col.null_count:
        raise IntegrityError(f"the merge key {key!r} is NULL in {keys_col.null_count} row(s) of the query")
    if not _ascending(keys_col) and pc.count_distinct(keys_col).as_py() != table.num_rows:
        counts = pa.table({"k": keys_col}).group_by("k").aggregate([("k", "count")])
        dup = counts.filter(pc.greater(counts.column("k_count"), 1)).column("k")[0].as_py()
        raise IntegrityError(
            f"the merge key {key!r} is not unique in the query: {dup!r} appears more than once; "
            f"aggregate the query (GROUP BY {key}) so each key has one row"
        )
    target_type = ds.schema.field(key).type
    try:
        keys_cast = pc.cast(keys_col, target_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise ProgrammingError(
            f"the merge key {key!r} is {keys_col.type} in the query but {target_type} in {name}"
        ) from None
    table = table.set_column(table.column_names.index(key), pa.field(key, target_type), keys_cast)
    table = table.cast(storage_schema(table.schema))
    executor_for(ctx).merge(ctx, ds, table, key)


def _ascending(keys: pa.ChunkedArray) -> bool:
    """Whether integer ``keys`` (no NULLs) strictly ascend: unique without hashing them
    (a key column usually comes sorted; counting a million distinct keys takes 0.4 s)."""
    if not pa.types.is_integer(keys.type) or len(keys) < 2:
        return len(keys) < 2
    values = keys.to_numpy()
    return bool((values[1:] > values[:-1]).all())


# -- DROP / RENAME / ALTER COLUMN ------------------------------------------------------------
def _drop_columns(ds: lance.LanceDataset, name: str, actions: list[exp.Expression]) -> None:
    columns = []
    for action in actions:
        for column in action.args.get("tables") or []:
            if column.name not in ds.schema.names:
                if action.args.get("exists"):
                    continue
                raise ProgrammingError(
                    f"{name} has no column {column.name!r} (columns: {', '.join(ds.schema.names)})"
                )
            columns.append(column.name)
    if not columns:
        return
    if len(set(columns)) == len(ds.schema.names):
        raise ProgrammingError(f"cannot drop every column of {name}: DROP TABLE {name} instead")
    try:
        ds.drop_columns(columns)
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"ALTER TABLE {name} DROP COLUMN failed") from exc


def _alter_columns(ds: lance.LanceDataset, name: str, actions: list[exp.Expression]) -> None:
    changes: dict[str, Any] = {}
    names = list(ds.schema.names)
    for action in actions:
        column = action.this.name
        if column not in ds.schema.names:
            raise ProgrammingError(f"{name} has no column {column!r} (columns: {', '.join(names)})")
        change = changes.setdefault(column, {"path": column})
        if isinstance(action, exp.RenameColumn):
            new = action.args["to"].name
            if new in names:
                raise ProgrammingError(f"column {new!r} already exists in {name}")
            change["name"] = new
            names.append(new)
        else:
            change["data_type"] = arrow_type(action.args["dtype"])
    try:
        ds.alter_columns(*changes.values())
    except (OSError, ValueError, TypeError, DatabaseError) as exc:
        raise lance_error(exc, f"ALTER TABLE {name} failed") from exc
