"""``MERGE INTO``: update, insert and delete in one statement, one Lance version.

::

    MERGE INTO t [AS a] USING <table | (query) | t AT (...) | vector_search(...)> AS s
        ON a.key = s.key [AND a.k2 = s.k2]
    WHEN MATCHED [AND cond] THEN UPDATE SET c = expr, ... | UPDATE SET * | DELETE | DO NOTHING
    WHEN NOT MATCHED [BY TARGET] [AND cond] THEN INSERT [(cols)] VALUES (...) | INSERT *
    WHEN NOT MATCHED BY SOURCE [AND cond] THEN UPDATE SET ... | DELETE

Everything is committed by one Lance ``merge_insert`` on the ON keys, so the statement
makes one version or none, updated rows keep their stable row ids, and rowcount is the
rows inserted, updated and deleted. A target row that two source rows match is an
IntegrityError, as the SQL standard says (Lance refuses such a merge too).

Two ways to the one commit:

- the source goes straight to Lance when the clauses are what ``merge_insert`` does
  itself: at most one clause of each kind, a full-row ``UPDATE SET *`` (or every column
  from a source column), ``INSERT *`` (likewise), ``DELETE``, and a ``BY SOURCE``
  condition on the target's own columns that Lance evaluates. The upsert of 10,000
  rows into 1,000,000 runs at pylance's own speed (see BENCHMARKS.md).
- anything else (conditions on matched or new rows, several clauses of a kind, SET of
  computed values, ``UPDATE`` of rows not in the source) is worked out by the engine
  first: one join of the source with the target decides, per row, the first clause
  that applies (as SQL says) and the row it leaves; Lance then updates and inserts
  exactly those rows and deletes the chosen ones (by key) in the same merge.

The ON clause must be equalities between target and source columns: the keys Lance
joins on. A SET may not change a key column (that would be a delete and an insert:
write them as such).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import lance
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lancesql.context import Result, StatementContext
from lancesql.errors import DataError, IntegrityError, NotSupportedError, ProgrammingError
from lancesql.lance_sql import literal, to_lance
from lancesql.query import run_query
from lancesql.statements.base import statement
from lancesql.statements.dml import cast_to
from lancesql.writes import LOCAL, LocalQuery, Stream, committed, lance_error, open_target

_IN_SOURCE = "__lancesql_in_source"
_ACTION = "__lancesql_action"
_ROWID = "__lancesql_rowid"


@dataclass
class Clause:
    """One ``WHEN`` clause: which rows (``matched``, ``new``, ``gone``), an optional
    condition, and what to do (``update``, ``insert``, ``delete``, ``nothing``)."""

    kind: str
    condition: exp.Expression | None
    action: str
    #: target column -> expression (UPDATE SET / INSERT VALUES); ``*`` is every
    #: column from the source column of the same name.
    values: dict[str, exp.Expression] = field(default_factory=dict)
    star: bool = False


@statement(exp.Merge)
def merge(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``MERGE INTO t USING s ON ... WHEN ...``."""
    target = tree.this
    uri, ds = open_target(ctx, target)
    name = ctx.catalog.name_of(uri)
    schema = ds.schema
    using = tree.args.get("using")
    if using is None:
        raise ProgrammingError(f"MERGE INTO {name} needs USING <table or (query)> AS s")
    target_alias = target.alias_or_name
    source_alias = using.alias_or_name
    if not source_alias or source_alias == target_alias:
        raise ProgrammingError(
            f"MERGE INTO {name}: give the source a name of its own (USING ... AS s) so that "
            "ON and SET can tell its columns from the target's"
        )
    keys = _keys(tree.args.get("on"), target_alias, source_alias, schema, name)
    whens = tree.args.get("whens")
    clauses = [_clause(w, schema, name, source_alias) for w in (whens.expressions if whens else [])]
    if not clauses:
        raise ProgrammingError(f"MERGE INTO {name} needs at least one WHEN ... THEN clause")
    for clause in clauses:
        changed = [k for k, _ in keys if k in clause.values and clause.action == "update"]
        if changed:
            raise NotSupportedError(
                f"MERGE INTO {name}: SET {changed[0]} changes the ON key; a changed key is a "
                f"delete and an insert: write them as DELETE and INSERT statements"
            )
    source_query = exp.select("*").from_(using.copy())
    plain = _plain_mapping(clauses, keys, schema, source_alias)
    if plain is not None:
        return _merge_directly(ctx, uri, ds, name, source_query, clauses, keys, plain)
    return _merge_through_engine(ctx, uri, ds, name, using, target_alias, source_alias, tree, clauses, keys)


# -- reading the statement ------------------------------------------------------------------
def _keys(
    on: exp.Expression | None, target: str, source: str, schema: pa.Schema, name: str
) -> list[tuple[str, str]]:
    """The ON clause as (target column, source column) pairs, or a NotSupportedError."""
    hint = f"write ON {target}.key = s.key [AND {target}.key2 = s.key2]"
    if on is None:
        raise ProgrammingError(f"MERGE INTO {name} needs ON: {hint}")
    pairs = []
    for part in on.flatten() if isinstance(on, exp.And) else [on]:
        if not (
            isinstance(part, exp.EQ)
            and isinstance(part.this, exp.Column)
            and isinstance(part.expression, exp.Column)
        ):
            raise NotSupportedError(
                f"MERGE INTO {name}: ON {part.sql(dialect='duckdb')} is not an equality of a target "
                f"and a source column; Lance merges on key columns: {hint} (put other conditions "
                "in WHEN MATCHED AND ...)"
            )
        left, right = part.this, part.expression
        if left.table == source and right.table == target:
            left, right = right, left
        if left.table != target or right.table != source:
            raise ProgrammingError(
                f"MERGE INTO {name}: qualify both columns of ON {part.sql(dialect='duckdb')} "
                f"with the target's and the source's names: {hint}"
            )
        if left.name not in schema.names:
            raise ProgrammingError(f"{name} has no column {left.name!r} (columns: {', '.join(schema.names)})")
        pairs.append((left.name, right.name))
    return pairs


def _clause(when: exp.When, schema: pa.Schema, name: str, source: str) -> Clause:
    matched = bool(when.args.get("matched"))
    by_source = bool(when.args.get("source"))
    kind = "matched" if matched else "gone" if by_source else "new"
    condition = when.args.get("condition")
    then = when.args.get("then")
    if isinstance(then, exp.Var) and then.name.upper() == "DELETE":
        if kind == "new":
            raise ProgrammingError("WHEN NOT MATCHED THEN DELETE: there is no target row to delete")
        return Clause(kind, condition, "delete")
    if isinstance(then, exp.Var) and "NOTHING" in then.name.upper():
        return Clause(kind, condition, "nothing")
    if isinstance(then, exp.Update):
        if kind == "new":
            raise ProgrammingError("WHEN NOT MATCHED THEN UPDATE: there is no target row to update; INSERT")
        if len(then.expressions) == 1 and isinstance(then.expressions[0], exp.Star):
            if kind == "gone":
                raise ProgrammingError("WHEN NOT MATCHED BY SOURCE THEN UPDATE SET *: there is no source row")
            return Clause(kind, condition, "update", star=True)
        values = {}
        for assignment in then.expressions:
            column = assignment.this.name
            if column not in schema.names:
                raise ProgrammingError(
                    f"{name} has no column {column!r} (columns: {', '.join(schema.names)})"
                )
            values[column] = assignment.expression
        return Clause(kind, condition, "update", values)
    if isinstance(then, exp.Insert):
        if kind != "new":
            raise ProgrammingError("INSERT belongs to WHEN NOT MATCHED: the row is already in the target")
        columns = then.this
        if isinstance(columns, exp.Star):
            return Clause(kind, condition, "insert", star=True)
        listed = (
            [c.name for c in columns.expressions] if isinstance(columns, exp.Tuple) else list(schema.names)
        )
        given = then.expression.expressions if isinstance(then.expression, exp.Tuple) else []
        if len(listed) != len(given):
            raise ProgrammingError(
                f"MERGE INTO {name}: INSERT names {len(listed)} column(s) but VALUES gives {len(given)}"
            )
        unknown = [c for c in listed if c not in schema.names]
        if unknown:
            raise ProgrammingError(
                f"{name} has no column {unknown[0]!r} (columns: {', '.join(schema.names)})"
            )
        return Clause(kind, condition, "insert", dict(zip(listed, given, strict=True)))
    raise NotSupportedError(f"MERGE ... THEN {then.sql(dialect='duckdb') if then else ''} is not supported")


def _plain_mapping(
    clauses: list[Clause], keys: list[tuple[str, str]], schema: pa.Schema, source: str
) -> dict[str, str] | None:
    """target column -> source column when Lance's merge_insert can run the statement on
    the source as it is (see the module's docstring), else None."""
    kinds = [c.kind for c in clauses]
    if len(set(kinds)) != len(kinds) or any(c.action == "nothing" for c in clauses):
        return None
    mapping = {t: s for t, s in keys}
    for clause in clauses:
        if clause.kind == "gone":
            if clause.action != "delete":
                return None
            if clause.condition is not None and any(
                c.table == source for c in clause.condition.find_all(exp.Column)
            ):
                return None
            continue
        if clause.condition is not None:
            return None
        if clause.action == "delete":
            continue
        if clause.star:
            columns = {f.name: f.name for f in schema}
        else:
            columns = {}
            for column, value in clause.values.items():
                if not (isinstance(value, exp.Column) and value.table in (source, "")):
                    return None
                columns[column] = value.name
            if set(columns) | {t for t, _ in keys} != set(schema.names):
                return None
        for column, value in columns.items():
            if mapping.setdefault(column, value) != value:
                return None
    return mapping


# -- straight to Lance ----------------------------------------------------------------------
def _merge_directly(
    ctx: StatementContext,
    uri: str,
    ds: lance.LanceDataset,
    name: str,
    source_query: exp.Select,
    clauses: list[Clause],
    keys: list[tuple[str, str]],
    mapping: dict[str, str],
) -> Result:
    result = run_query(ctx, source_query)
    assert result.reader is not None
    reader = result.reader
    missing = [s for s in dict.fromkeys(mapping.values()) if s not in reader.schema.names]
    if missing:
        reader.close()
        raise ProgrammingError(
            f"MERGE INTO {name}: the source has no column {missing[0]!r} (its columns: "
            f"{', '.join(reader.schema.names)}); name the columns the target needs "
            f"({', '.join(ds.schema.names)}) in the source query"
        )
    schema = ds.schema
    needs_rows = any(c.action in ("update", "insert") for c in clauses)
    fields = [f for f in schema if f.name in mapping] if needs_rows else [schema.field(k) for k, _ in keys]
    out_schema = pa.schema(fields)

    def conform(batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = [cast_to(batch.column(mapping[f.name]), f, "the source") for f in fields]
        return pa.RecordBatch.from_arrays(arrays, schema=out_schema)

    builder = ds.merge_insert([k for k, _ in keys])
    for clause in clauses:
        if clause.kind == "matched":
            if clause.action == "update":
                builder = builder.when_matched_update_all()
            else:
                builder = builder.when_matched_delete()
        elif clause.kind == "new":
            builder = builder.when_not_matched_insert_all()
        else:
            condition = _target_filter(ctx, clause.condition, name) if clause.condition is not None else None
            builder = builder.when_not_matched_by_source_delete(condition)
    stream = Stream(out_schema, (conform(b) for b in reader))
    return _execute(ctx, uri, ds, name, builder, _buffered(stream.reader()), stream)


#: Source rows held in memory before a merge: Lance's merge_insert runs about twice as
#: fast on an in-memory table as on a stream (it plans its join knowing the source's
#: size), and a MERGE's source is mostly far smaller than its target. Larger sources
#: stream.
BUFFER_BYTES = 256 * 2**20


def _buffered(reader: pa.RecordBatchReader) -> pa.Table | pa.RecordBatchReader:
    """``reader``'s rows as a table when they fit in :data:`BUFFER_BYTES`, else a stream
    of the same rows."""
    held: list[pa.RecordBatch] = []
    size = 0
    for batch in reader:
        held.append(batch)
        size += batch.nbytes
        if size > BUFFER_BYTES:

            def rest() -> Iterator[pa.RecordBatch]:
                yield from held
                yield from reader

            return pa.RecordBatchReader.from_batches(reader.schema, rest())
    return pa.Table.from_batches(held, schema=reader.schema)


def _target_filter(ctx: StatementContext, condition: exp.Expression, name: str) -> str:
    bare = condition.copy()
    for column in bare.find_all(exp.Column):
        column.set("table", None)
    text = to_lance(bare, ctx.params)
    if text is None:
        raise NotSupportedError(
            f"MERGE INTO {name}: cannot evaluate {condition.sql(dialect='duckdb')} in Lance"
        )
    return text


def _execute(
    ctx: StatementContext,
    uri: str,
    ds: lance.LanceDataset,
    name: str,
    builder: lance.MergeInsertBuilder,
    source: pa.Table | pa.RecordBatchReader,
    stream: Stream | None = None,
) -> Result:
    try:
        outcome = builder.execute(source)
    except DataError:
        raise
    except (OSError, ValueError) as exc:
        if stream is not None and stream.error is not None:
            raise stream.failure(exc, f"MERGE INTO {name} failed") from None
        text = str(exc)
        if "Ambiguous merge insert" in text:
            detail = text.split("on (", 1)[1].split(")", 1)[0] if "on (" in text else "a key"
            raise IntegrityError(
                f"MERGE INTO {name}: several source rows match the same target row ({detail}); "
                "a target row may be matched once: make the source's keys unique (GROUP BY "
                "the key, or pick one row per key with QUALIFY row_number() ...)"
            ) from None
        raise lance_error(exc, f"MERGE INTO {name} failed") from exc
    committed(ctx, uri, ds)
    touched = sum(
        int(outcome.get(k, 0)) for k in ("num_inserted_rows", "num_updated_rows", "num_deleted_rows")
    )
    return Result.done(touched)


# -- through the engine ---------------------------------------------------------------------
def _merge_through_engine(
    ctx: StatementContext,
    uri: str,
    ds: lance.LanceDataset,
    name: str,
    using: exp.Expression,
    target_alias: str,
    source_alias: str,
    tree: exp.Expression,
    clauses: list[Clause],
    keys: list[tuple[str, str]],
) -> Result:
    schema = ds.schema
    target_columns = list(schema.names)
    if any(c.star for c in clauses):
        probe = run_query(ctx, exp.select("*").from_(using.copy()).limit(0))
        assert probe.reader is not None
        source_names = probe.reader.schema.names
        probe.reader.close()
        missing = [c for c in target_columns if c not in source_names]
        if missing:
            raise ProgrammingError(
                f"MERGE INTO {name}: SET * / INSERT * need every column of {name} in the "
                f"source, which has no {missing[0]!r} (its columns: {', '.join(source_names)})"
            )
    in_source = exp.column(_IN_SOURCE, table=source_alias)
    in_target = exp.column("_rowid", table=target_alias).is_(exp.null()).not_()
    kinds = {
        "matched": exp.and_(in_source.copy(), in_target.copy()),
        "new": exp.and_(in_source.copy(), exp.not_(in_target.copy())),
        "gone": exp.column(_IN_SOURCE, table=source_alias).is_(exp.null()),
    }
    action = exp.Case()
    for index, clause in enumerate(clauses):
        test = kinds[clause.kind].copy()
        if clause.condition is not None:
            test = exp.and_(test, exp.paren(clause.condition.copy()))
        action = action.when(test, exp.Literal.number(index))
    items: dict[str, exp.Expression] = {_ACTION: action, _ROWID: exp.column("_rowid", table=target_alias)}
    for column in target_columns:
        value = exp.Case()
        for index, clause in enumerate(clauses):
            if clause.action == "update":
                given = clause.values.get(column)
                if clause.star:
                    given = exp.column(column, table=source_alias)
                if given is not None:
                    value = value.when(action.copy().eq(index), given.copy())
            elif clause.action == "insert":
                given = exp.column(column, table=source_alias) if clause.star else clause.values.get(column)
                value = value.when(action.copy().eq(index), given.copy() if given is not None else exp.null())
        items[column] = (
            value.else_(exp.column(column, table=target_alias))
            if value.args.get("ifs")
            else exp.column(column, table=target_alias)
        )
    marked = exp.select("*", exp.alias_(exp.true(), _IN_SOURCE)).from_(using.copy())
    source = exp.Subquery(this=marked, alias=exp.TableAlias(this=exp.to_identifier(source_alias)))
    target_table = exp.Table(
        this=exp.to_identifier(LOCAL), alias=exp.TableAlias(this=exp.to_identifier(target_alias))
    )
    side = "FULL" if any(c.kind == "gone" for c in clauses) else "LEFT"
    query = (
        exp.select(*[exp.alias_(e, n, quoted=True) for n, e in items.items()])
        .from_(source)
        .join(target_table, on=tree.args["on"].copy(), join_type=side)
    )
    local = LocalQuery(ctx, query)
    try:
        scan = ds.scanner(columns=target_columns, with_row_id=True).to_reader()
        found = local.run(scan).read_all()
    finally:
        local.close()
    found = found.filter(pc.is_valid(found.column(_ACTION)))
    actions = found.column(_ACTION).to_numpy(zero_copy_only=False)
    matched = [i for i, c in enumerate(clauses) if c.kind == "matched"]
    if matched:
        hit = found.filter(pc.is_in(found.column(_ACTION), pa.array(matched, found.column(_ACTION).type)))
        ids = hit.column(_ROWID)
        if len(ids) != pc.count_distinct(ids).as_py():
            counts = pa.table({"id": ids}).group_by("id").aggregate([("id", "count")])
            twice = counts.filter(pc.greater(counts.column("id_count"), 1)).column("id")[0].as_py()
            row = hit.filter(pc.equal(hit.column(_ROWID), twice)).slice(0, 1).to_pylist()[0]
            key = ", ".join(f"{k} = {row[k]!r}" for k, _ in keys)
            raise IntegrityError(
                f"MERGE INTO {name}: several source rows match the same target row ({key}); a "
                "target row may be matched once: make the source's keys unique"
            )
    by_action = {i: c.action for i, c in enumerate(clauses)}
    kind_of = [by_action.get(int(a)) for a in actions]
    upsert = found.filter(pa.array([k in ("update", "insert") for k in kind_of], pa.bool_()))
    deleted = found.filter(pa.array([k == "delete" for k in kind_of], pa.bool_()))
    rows = pa.Table.from_arrays(
        [cast_to(upsert.column(f.name).combine_chunks(), f, "the MERGE") for f in schema], schema=schema
    )
    if not rows.num_rows and not deleted.num_rows:
        return Result.done(0)  # nothing to change: no version
    builder = ds.merge_insert([k for k, _ in keys])
    if any(k == "update" for k in kind_of):
        builder = builder.when_matched_update_all()
    if any(k == "insert" for k in kind_of):
        builder = builder.when_not_matched_insert_all()
    if deleted.num_rows:
        builder = builder.when_not_matched_by_source_delete(_key_filter(deleted, [k for k, _ in keys], name))
    return _execute(ctx, uri, ds, name, builder, rows)


def _key_filter(rows: pa.Table, keys: list[str], name: str) -> str:
    """A Lance filter that holds for exactly the target rows with ``rows``' keys."""
    if len(keys) == 1:
        values = rows.column(keys[0]).to_pylist()
        parts = [literal(v) for v in dict.fromkeys(v for v in values if v is not None)]
        if any(p is None for p in parts):
            raise NotSupportedError(f"MERGE INTO {name}: cannot delete by a key of this type")
        condition: exp.Expression = (
            exp.In(this=exp.column(keys[0]), expressions=parts) if parts else exp.false()
        )
        if any(v is None for v in values):
            condition = exp.or_(condition, exp.column(keys[0]).is_(exp.null())).assert_is(exp.Expression)
    else:
        conditions = []
        for row in rows.select(keys).to_pylist():
            tests = []
            for key in keys:
                value = row[key]
                lit = literal(value) if value is not None else None
                if value is not None and lit is None:
                    raise NotSupportedError(f"MERGE INTO {name}: cannot delete by a key of this type")
                tests.append(exp.column(key).is_(exp.null()) if lit is None else exp.column(key).eq(lit))
            conditions.append(exp.and_(*tests))
        condition = exp.or_(*conditions).assert_is(exp.Expression)
    text = to_lance(condition)
    if text is None:
        raise NotSupportedError(f"MERGE INTO {name}: cannot delete by these keys in Lance")
    return text
