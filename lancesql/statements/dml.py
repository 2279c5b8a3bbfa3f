"""``INSERT``, ``DELETE`` and ``UPDATE``: one Lance version each, rowcount on the cursor.

``INSERT INTO t SELECT ... | VALUES ...`` streams the engine's result into a Lance
append, each batch cast to the table's schema (checked before anything is written).
``DELETE`` and ``UPDATE`` hand their WHERE and SET expressions to Lance when Lance
evaluates them as the engine would (see :func:`lancesql.lance_sql.alike` and
:func:`~lancesql.lance_sql.assignable`); otherwise the engine finds the rows (a
subquery, a UDF) by reading only the columns the WHERE names plus Lance's row id, and
Lance deletes or updates those rows by id.
"""

from __future__ import annotations

import lance
import pyarrow as pa
import pyarrow.compute as pc
from lance.fragment import RowIdSequence, write_fragments
from sqlglot import exp

from lancesql.arrow_types import sql_type
from lancesql.context import Result, StatementContext
from lancesql.errors import (
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    lance_error,
)
from lancesql.executors import executor_for
from lancesql.lance_sql import alike, assignable, columns_of, quote, to_lance
from lancesql.query import run_query
from lancesql.statements.base import statement
from lancesql.writes import (
    LocalQuery,
    Stream,
    cast_to_column,
    committed,
    direct_scan,
    local_select,
    open_target,
)


# -- INSERT ---------------------------------------------------------------------------------
@statement(exp.Insert)
def insert(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``INSERT INTO t [(cols)] SELECT ... | VALUES ...``: a Lance append."""
    for unsupported in ("conflict", "alternative", "overwrite", "returning", "where"):
        if tree.args.get(unsupported):
            raise NotSupportedError(
                f"INSERT ... {unsupported.upper()} is not supported: lancesql appends rows; "
                "use UPDATE or DELETE for the rest"
            )
    target = tree.this
    uri, ds = open_target(ctx, target)
    name = ctx.catalog.name_of(uri)
    schema = ds.schema
    listed = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else None
    source = tree.expression
    if source is None:
        raise ProgrammingError(f"INSERT INTO {name} needs a SELECT or VALUES")
    by_name = bool(tree.args.get("by_name"))
    if listed is None and not by_name:
        written = executor_for(ctx).write_scan(ctx, source, uri, "append", schema)
        if written is not None:
            ds.checkout_latest()
            committed(ctx, uri, ds)
            return Result.done(written)
    reader = direct_scan(ctx, source)
    if reader is None:
        result = run_query(ctx, source)
        assert result.reader is not None
        reader = result.reader
    mapping = _column_mapping(name, schema, reader.schema, listed, by_name)
    stream = Stream(schema, (_conform(b, schema, mapping) for b in reader if b.num_rows))
    try:
        written = lance.write_dataset(
            stream.reader(),
            uri,
            schema=schema,
            mode="append",
            storage_options=ctx.catalog.storage_options,
        )
    except BaseException as exc:
        raise stream.failure(exc, f"INSERT INTO {name} failed") from None
    committed(ctx, uri, written)
    return Result.done(stream.rows)


def _column_mapping(
    name: str, target: pa.Schema, source: pa.Schema, listed: list[str] | None, by_name: bool
) -> list[int | None]:
    """For each target column, the index of the source column that fills it (None: NULL)."""
    if by_name:
        listed = list(source.names)
    if listed is not None:
        unknown = [c for c in listed if c not in target.names]
        if unknown:
            raise ProgrammingError(
                f"{name} has no column {unknown[0]!r} (columns: {', '.join(target.names)})"
            )
        if len(listed) != len(source):
            raise ProgrammingError(
                f"INSERT INTO {name} names {len(listed)} column(s) but the query gives {len(source)}"
            )
        mapping = [listed.index(f.name) if f.name in listed else None for f in target]
    else:
        if len(source) != len(target):
            raise ProgrammingError(
                f"{name} has {len(target)} columns ({', '.join(target.names)}) but the query "
                f"gives {len(source)}: name the columns you insert, "
                f"INSERT INTO {name} (col, ...) SELECT ..."
            )
        mapping = list(range(len(target)))
    for field, index in zip(target, mapping, strict=True):
        if index is None:
            if not field.nullable:
                raise IntegrityError(f"column {field.name!r} of {name} is NOT NULL: give it a value")
            continue
        given = source.field(index).type
        if not _castable(given, field.type):
            raise ProgrammingError(
                f"column {field.name!r} of {name} is {field.type}, but the query gives {given} "
                f"(column {index + 1}, {source.names[index]!r}): CAST it"
            )
    return mapping


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    if source == target or pa.types.is_null(source):
        return True
    try:
        pc.cast(pa.array([], source), target)
        return True
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def _conform(batch: pa.RecordBatch, schema: pa.Schema, mapping: list[int | None]) -> pa.RecordBatch:
    arrays = []
    for field, index in zip(schema, mapping, strict=True):
        if index is None:
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        arrays.append(cast_to(batch.column(index), field, "the query"))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- DELETE ---------------------------------------------------------------------------------
@statement(exp.Delete)
def delete(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``DELETE FROM t [WHERE ...]``: rows are marked deleted; nothing else is rewritten."""
    if tree.args.get("using") or tree.args.get("returning"):
        raise NotSupportedError("DELETE ... USING/RETURNING is not supported: use a subquery in WHERE")
    uri, ds = open_target(ctx, tree.this)
    name = ctx.catalog.name_of(uri)
    where = tree.args.get("where")
    predicate = where.this if where is not None else exp.true()
    text = to_lance(predicate, ctx.params)
    if text is None or not _alike(text, predicate, ds):
        text = _rowid_filter(ctx, ds, tree.this, predicate)
    try:
        outcome = ds.delete(text)
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"DELETE FROM {name} failed") from exc
    committed(ctx, uri, ds)
    return Result.done(int(outcome["num_deleted_rows"]) if isinstance(outcome, dict) else -1)


def _alike(text: str, predicate: exp.Expression, ds: lance.LanceDataset) -> bool:
    """Whether Lance reads the WHERE as the engine would; a WHERE naming a column the table
    lacks stays with Lance, whose error names it (the engine's would name ``_rowid``)."""
    if not set(columns_of(predicate)) <= set(ds.schema.names):
        return True
    return alike(text, ds.schema)


def _rowid_filter(
    ctx: StatementContext, ds: lance.LanceDataset, table: exp.Expression, predicate: exp.Expression
) -> str:
    """A Lance filter on row ids for the rows where the engine finds ``predicate`` true."""
    ids = matching_rows(ctx, ds, table, predicate, {})
    if not len(ids):
        return "false"
    return f"_rowid IN ({', '.join(str(i) for i in ids.column('_rowid').to_pylist())})"


def matching_rows(
    ctx: StatementContext,
    ds: lance.LanceDataset,
    table: exp.Expression,
    predicate: exp.Expression,
    values: dict[str, exp.Expression],
    addresses: bool = False,
) -> pa.Table:
    """``_rowid`` (and ``values``) of the rows where ``predicate`` holds, computed by the
    engine over only the columns of the table that the expressions name."""
    names = set()
    for expression in [predicate, *values.values()]:
        names.update(columns_of(expression))
    read = [c for c in ds.schema.names if c in names]
    alias = table.alias_or_name if isinstance(table, exp.Table) else None
    items: dict[str, exp.Expression] = {"_rowid": exp.column("_rowid")}
    if addresses:
        items["_rowaddr"] = exp.column("_rowaddr")
    items.update(values)
    query = LocalQuery(ctx, local_select(items, alias=alias, where=predicate))
    try:
        source = ds.scanner(columns=read, with_row_id=True, with_row_address=addresses).to_reader()
        return query.run(source).read_all()
    finally:
        query.close()


# -- UPDATE ---------------------------------------------------------------------------------
@statement(exp.Update)
def update(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``UPDATE t SET c = expr, ... [WHERE ...]``."""
    if tree.args.get("from_") or tree.args.get("from") or tree.args.get("returning"):
        raise NotSupportedError(
            "UPDATE ... FROM/RETURNING is not supported: use ALTER TABLE t ADD COLUMNS FROM "
            "(query) ON key to bring in columns from another table, or a subquery in WHERE"
        )
    uri, ds = open_target(ctx, tree.this)
    name = ctx.catalog.name_of(uri)
    sets: dict[str, exp.Expression] = {}
    for assignment in tree.expressions:
        column = assignment.this.name
        if column not in ds.schema.names:
            raise ProgrammingError(f"{name} has no column {column!r} (columns: {', '.join(ds.schema.names)})")
        sets[column] = assignment.expression
    where = tree.args.get("where")
    predicate = where.this if where is not None else None
    lance_sets = {c: to_lance(e, ctx.params) for c, e in sets.items()}
    lance_where = to_lance(predicate, ctx.params) if predicate is not None else None
    types = {f.name: f.type for f in ds.schema}
    if any(v is None or not assignable(v, types[c], ds.schema) for c, v in lance_sets.items()):
        return _update_through_engine(ctx, uri, ds, tree.this, sets, predicate)
    if predicate is not None and (lance_where is None or not _alike(lance_where, predicate, ds)):
        lance_where = _rowid_filter(ctx, ds, tree.this, predicate)
    try:
        outcome = ds.update({c: v for c, v in lance_sets.items() if v is not None}, where=lance_where)
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"UPDATE {name} failed") from exc
    committed(ctx, uri, ds)
    return Result.done(int(outcome["num_rows_updated"]) if isinstance(outcome, dict) else -1)


def _update_through_engine(
    ctx: StatementContext,
    uri: str,
    ds: lance.LanceDataset,
    table: exp.Expression,
    sets: dict[str, exp.Expression],
    predicate: exp.Expression | None,
) -> Result:
    """``UPDATE`` whose SET needs the engine (``SET emb = embed_image(image)``).

    The engine computes the new values (reading only the columns the expressions name)
    with each matching row's id and address; the matching rows are rewritten whole into
    new fragments carrying their stable row ids, the old copies are marked deleted, and
    both are committed as one Lance ``Update``: one version, or none if anything fails.
    """
    name = ctx.catalog.name_of(uri)
    schema = ds.schema
    for column, value in sets.items():  # SQL's assignment cast (DuckDB rounds a DECIMAL), not Arrow's
        target = sql_type(schema.field(column).type)
        sets[column] = exp.cast(value.copy(), target) if target is not None else value
    found = matching_rows(ctx, ds, table, predicate if predicate is not None else exp.true(), sets, True)
    if found.num_rows == 0:
        try:
            ds.update({next(iter(sets)): quote(next(iter(sets)))}, where="false")
        except (OSError, ValueError) as exc:
            raise lance_error(exc, f"UPDATE {name} failed") from exc
        committed(ctx, uri, ds)
        return Result.done(0)
    row_ids = found.column("_rowid").combine_chunks()
    kept = [f.name for f in schema if f.name not in sets]
    try:
        old = ds._take_rows(row_ids.to_pylist(), columns=kept) if kept else None
    except (OSError, ValueError) as exc:
        raise lance_error(exc, f"UPDATE {name} failed") from exc
    arrays = []
    for field in schema:
        if field.name in sets:
            column = found.column(field.name).combine_chunks()
            arrays.append(cast_to(column, field))
        else:
            assert old is not None
            arrays.append(old.column(field.name).combine_chunks())
    rows = pa.Table.from_arrays(arrays, schema=schema)
    by_fragment: dict[int, list[int]] = {}
    for address in found.column("_rowaddr").to_pylist():
        by_fragment.setdefault(address >> 32, []).append(address & 0xFFFFFFFF)
    try:
        new = write_fragments(rows, uri, schema=schema, storage_options=ctx.catalog.storage_options)
        if ds.has_stable_row_ids:
            ids = row_ids.to_pylist()
            start = 0
            for fragment in new:
                count = fragment.physical_rows
                fragment.row_id_meta = RowIdSequence(ids[start : start + count]).to_inline_metadata()
                start += count
        removed, updated = [], []
        for fragment_id, offsets in by_fragment.items():
            fragment_handle = ds.get_fragment(fragment_id)
            if fragment_handle is None:
                raise OperationalError(f"{name} changed while it was being updated: run the UPDATE again")
            meta = fragment_handle.delete_rows(offsets)
            if meta is None:
                removed.append(fragment_id)
            else:
                updated.append(meta)
        operation = lance.LanceOperation.Update(
            removed_fragment_ids=removed, updated_fragments=updated, new_fragments=new
        )
        result = lance.LanceDataset.commit(
            uri, operation, read_version=ds.version, storage_options=ctx.catalog.storage_options
        )
    except (OSError, ValueError, TypeError) as exc:
        raise lance_error(exc, f"UPDATE {name} failed") from exc
    committed(ctx, uri, result)
    return Result.done(rows.num_rows)


def cast_to(array: pa.Array, field: pa.Field, source: str = "the SET") -> pa.Array:
    """``array`` as ``field`` stores it, or a DataError naming the column."""
    return cast_to_column(array, field, source)
