"""What every writing statement shares: its target, the read-only check, Lance's errors,
and running SQL over rows lancesql hands to the engine itself.

Writes go through Lance's own commit, so each statement makes exactly one new version
or none: Lance writes data files first and commits a manifest last, and a statement
that fails before the commit leaves the table where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import lance
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from lancesql.catalog import MAIN, SUFFIX, is_uri, split_branch
from lancesql.context import StatementContext
from lancesql.errors import (
    DataError,
    Error,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    lance_error,
    translate,
)
from lancesql.fast_path import analyse
from lancesql.html import type_name
from lancesql.lance_sql import alike, assignable, quote, to_lance
from lancesql.memory import releasing
from lancesql.parse import BRANCH_MARK
from lancesql.query import bind, rewritten_for, sources, to_sql
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.settings import declare, parse_bool
from lancesql.udfs.registry import Source

log = logging.getLogger("lancesql")

def cast_to_column(array: pa.Array, field: pa.Field, source: str = "the query") -> pa.Array:
    """``array`` as column ``field`` stores it, or a DataError in the user's words (an
    IntegrityError for a NULL in a NOT NULL column: a constraint, as PEP 249 and the
    engines class it).

    >>> def show(values, field):
    ...     try:
    ...         cast_to_column(pa.array(values), field)
    ...     except DataError as exc:
    ...         print(exc)
    >>> show([[1.0, 2.0]], pa.field("image_emb", pa.list_(pa.float32(), 4)))
    column image_emb holds 4 values; a row has 2: give FLOAT[4] vectors of 4 numbers
    >>> show(["x"], pa.field("label", pa.int32()))
    column label is INTEGER: cannot store the VARCHAR value 'x' in it; CAST it, or give an INTEGER
    """
    if array.type != field.type:
        try:
            array = pc.cast(array, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise _cannot_store(array, field, exc) from None
    if not field.nullable and array.null_count:
        raise IntegrityError(f"column {field.name} is NOT NULL but {source} gives NULL for it")
    return array


def _cannot_store(array: pa.Array, field: pa.Field, exc: BaseException) -> DataError:
    want = type_name(field.type)
    kind = array.type
    if pa.types.is_fixed_size_list(field.type) and (
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    ):
        size = field.type.list_size
        lengths = pc.list_value_length(array).to_pylist()
        for length in lengths:
            if length is not None and length != size:
                return DataError(
                    f"column {field.name} holds {size} values; a row has {length}: "
                    f"give {want} vectors of {size} numbers"
                )
    bad = None
    for value in array.to_pylist()[:1000]:
        try:
            pc.cast(pa.array([value], kind), field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            bad = value
            break
    if bad is not None and _is_number(kind) and _is_number(field.type):
        return DataError(f"column {field.name} is {want}: the value {bad} is out of its range")
    shown = f" value {bad!r}" if bad is not None and len(repr(bad)) < 60 else " values"
    return DataError(
        f"column {field.name} is {want}: cannot store the {type_name(kind)}{shown} in it; "
        f"CAST it, or give {'an' if want[0] in 'AEIOU' else 'a'} {want}"
    )


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


#: Stores lancesql can read but never write.
READ_ONLY_SCHEMES = ("hf://", "http://", "https://")


def table_uri(ctx: StatementContext, table: exp.Expression) -> str:
    """The URI a statement's target names: a bare name under the root, or a quoted path."""
    if isinstance(table, exp.Schema):
        table = table.this
    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        raise ProgrammingError(f"expected a table name or a quoted path, got {table.sql()!r}")
    if table.args.get("db") or table.args.get("catalog"):
        raise ProgrammingError(
            f"{table.sql()!r}: lancesql tables have no schema; name a table under the root "
            f"or quote a path ('./dir/{table.name}{SUFFIX}')"
        )
    when = table.args.get("when")
    marked = when.expression if isinstance(when, exp.HistoricalData) else None
    if (
        isinstance(marked, exp.Anonymous)
        and str(marked.this).lower() == BRANCH_MARK
        and len(marked.expressions) == 1
        and isinstance(marked.expressions[0], exp.Literal)
        and not is_uri(table.name)
    ):
        # INSERT INTO t AT (BRANCH => 'exp') ...: the branch's newest version
        return str(ctx.catalog.resolve_uri(table.name, marked.expressions[0].name))
    if when is not None or table.args.get("version") is not None:
        raise ProgrammingError(
            f"{table.sql(dialect='duckdb')!r}: a statement writes the newest version of a "
            f"table, not a pinned one: drop the AT / AS OF clause (to write to a branch, "
            f"USE BRANCH 'name' first; to go back to an old version, RESTORE TABLE "
            f"{table.name} TO VERSION n)"
        )
    catalog = ctx.catalog
    uri = str(catalog.resolve_uri(table.name))
    current = catalog.current_branch()
    if (
        current not in (None, MAIN)
        and not is_uri(table.name)
        and split_branch(uri)[1] != current
        and catalog.exists(uri)
    ):
        raise ProgrammingError(
            f"table {table.name!r} has no branch {current!r}, the connection's current "
            f"branch, so writing to it would change its main line: create the branch "
            f"(ALTER TABLE {table.name} CREATE BRANCH '{current}') or USE BRANCH 'main'"
        )
    return uri


def check_writable(ctx: StatementContext, uri: str) -> None:
    """Refuse writes to stores that cannot take them, before anything is written."""
    if uri.lower().startswith(READ_ONLY_SCHEMES):
        name = ctx.catalog.name_of(uri)
        raise OperationalError(
            f"{name!r} is on a read-only store ({uri.split('://', 1)[0]}://): lancesql cannot "
            f"write there. Materialise what you need locally instead, e.g. "
            f"CREATE TABLE './{name.rsplit('/', 1)[-1].removesuffix(SUFFIX)}{SUFFIX}' AS "
            f"SELECT * FROM {name}"
        )


def open_target(ctx: StatementContext, table: exp.Expression) -> tuple[str, lance.LanceDataset]:
    """The URI and latest version of an existing table a statement writes to."""
    uri = table_uri(ctx, table)
    check_writable(ctx, uri)
    return uri, ctx.catalog.latest(uri)


def committed(ctx: StatementContext, uri: str, ds: lance.LanceDataset | None = None) -> None:
    """Point the catalog's cache at the version just committed to ``uri``.

    Lance's write calls move the handle they were called on to the version they
    commit, in place. Cursors keep a dataset registered on their engine while the
    catalog hands them the same handle object, and the engine keeps the schema it saw
    then, so the catalog gets a new handle at the new version (cheap: it shares the
    session's caches) and every cursor registers it afresh. Without a handle, the
    cache forgets ``uri`` and the next statement opens it anew.
    """
    if ds is None:
        ctx.catalog.forget(uri)
    else:
        ctx.catalog.refreshed(ds.checkout_version(ds.version))
        ctx.commits.append((uri, int(ds.version)))


#: The name under which a statement's own rows are registered for the engine.
LOCAL = "__lancesql_local"


class LocalQuery:
    """A query over rows lancesql registers itself (as table ``__lancesql_local``), run
    again and again: the rest of the query (subqueries on other tables, table
    functions) is rewritten and bound once.
    """

    def __init__(self, ctx: StatementContext, tree: exp.Expression):
        self.ctx = ctx
        tree = rewritten_for(ctx, tree)
        for table in list(tree.find_all(exp.Table)):
            call = table.meta.get(META_KEY)
            if call and call[0] == "lance_scan" and _is_local(call[1]):
                table.replace(exp.Table(this=exp.to_identifier(LOCAL), alias=table.args.get("alias")))
        bind(ctx, tree)
        self.sql, self.params = to_sql(ctx, tree)

    def run(self, source: Source) -> pa.RecordBatchReader:
        """The query's result over ``source``."""
        self.ctx.engine.register(LOCAL, source)
        try:
            return self.ctx.engine.execute(self.sql, self.params)
        except Error:
            raise
        except Exception as exc:
            raise translate(exc) from exc

    def close(self) -> None:
        try:
            self.ctx.engine.unregister(LOCAL)
        except Exception:  # never registered
            log.debug("could not unregister %s", LOCAL)


def _is_local(args: list[exp.Expression]) -> bool:
    return bool(args) and isinstance(args[0], exp.Literal) and args[0].name == LOCAL


def local_select(
    expressions: Mapping[str, exp.Expression] | list[exp.Expression],
    alias: str | None = None,
    where: exp.Expression | None = None,
) -> exp.Select:
    """``SELECT <expressions> FROM __lancesql_local [AS alias] [WHERE ...]``."""
    items = (
        [exp.alias_(e.copy(), name, quoted=True) for name, e in expressions.items()]
        if isinstance(expressions, Mapping)
        else [e.copy() for e in expressions]
    )
    table = exp.Table(this=exp.to_identifier(LOCAL))
    if alias:
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    select = exp.select(*items).from_(table)
    if where is not None:
        select = select.where(where.copy())
    return select


class Stream:
    """Batches handed to a Lance write, remembering the error that stopped them.

    Lance pulls batches through the Arrow C stream interface, which turns a Python
    exception into an opaque ``OSError``; the original (a DataError from a cast, the
    engine's own error) is kept here so the user sees it instead.
    """

    def __init__(self, schema: pa.Schema, batches: Iterator[pa.RecordBatch]):
        self.schema = schema
        self.rows = 0
        self.error: BaseException | None = None
        self._batches = batches

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._pull())

    def _pull(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
                self.rows += batch.num_rows
                yield batch
        except BaseException as exc:
            self.error = exc
            raise

    def failure(self, exc: BaseException, what: str) -> BaseException:
        """The error to raise for ``exc``, which Lance raised while writing the stream."""
        if self.error is not None:
            if isinstance(self.error, Error):
                return self.error
            if isinstance(self.error, Exception):
                return translate(self.error)
            return self.error
        if isinstance(exc, Error):
            return exc
        if isinstance(exc, (OSError, ValueError, pa.ArrowException)):
            return lance_error(exc, what)
        return exc


declare(
    "direct_scan",
    True,
    parse_bool,
    "Let CREATE TABLE AS / INSERT ... SELECT read a plain scan of one Lance table (columns, "
    "Lance-evaluable expressions and filter, LIMIT) with Lance's own scanner instead of the engine.",
)


@dataclass(frozen=True)
class PlainScan:
    """A query that is a plain scan of one Lance table: what Lance's scanner takes."""

    ds: lance.LanceDataset
    columns: list[str] | dict[str, str]
    filter: str | None
    limit: int | None

    def reader(self) -> pa.RecordBatchReader:
        """The scan's rows, from Lance's scanner.

        When a column read holds bytes (images), the scan is a copy of large values,
        and three things keep its memory flat in the rows copied:

        * batches of ``WIDE_BATCH_ROWS``: Lance's default batch of 8,192 rows of images
          is hundreds of megabytes, and the write holds several (measured: a 100,000-row
          laion subset took 1.7x the memory LanceDB's copy takes; 1,024-row batches take
          the same);
        * a handle of its own on the same version (:func:`_one_pass`), whose metadata
          cache stays small: the handle the catalog keeps caches what it learns of each
          page it reads, which a one-pass copy never reads again (measured: 137 MB after
          copying 84,839 image rows scattered over a million, growing with the pages);
        * the C heap's free memory handed back every few hundred megabytes
          (:func:`lancesql.memory.releasing`): glibc keeps what Lance's threads free in
          their arenas, and the process's memory otherwise creeps up with the rows.
        """
        names = self.columns if isinstance(self.columns, list) else None
        read = [f for f in self.ds.schema if names is None or f.name in names]
        wide = isinstance(self.columns, dict) or any(_holds_bytes(f.type) for f in read)
        if not wide:
            return self.ds.scanner(columns=self.columns, filter=self.filter, limit=self.limit).to_reader()
        scan = _one_pass(self.ds).scanner(
            columns=self.columns, filter=self.filter, limit=self.limit, batch_size=WIDE_BATCH_ROWS
        ).to_reader()
        return pa.RecordBatchReader.from_batches(scan.schema, releasing(scan))


#: The metadata cache of the handle a copy scans through (Lance's default: 1 GiB).
ONE_PASS_METADATA_CACHE_BYTES = 8 << 20


def _one_pass(ds: lance.LanceDataset) -> lance.LanceDataset:
    """A handle on ``ds``'s version with a small metadata cache of its own, made from the
    manifest ``ds`` holds (nothing read again); ``ds`` itself where Lance's pickled form
    is not the one known here."""
    try:
        _, state = ds.__reduce__()
        uri, storage_options, version, manifest, scan_options, read_params, stores = state
        return lance.LanceDataset(
            uri,
            version,
            storage_options=storage_options,
            serialized_manifest=manifest,
            default_scan_options=scan_options,
            read_params=read_params,
            base_store_params=stores,
            metadata_cache_size_bytes=ONE_PASS_METADATA_CACHE_BYTES,
        )
    except (TypeError, ValueError, OSError):
        log.debug("copying through the catalog's handle of %s", ds.uri, exc_info=True)
        return ds


#: Rows in a batch of a scan that reads bytes (LanceDB's batch size).
WIDE_BATCH_ROWS = 1024


def _holds_bytes(kind: pa.DataType) -> bool:
    """Whether values of ``kind`` may be large: binary, a list, or a struct holding one."""
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_holds_bytes(kind.field(i).type) for i in range(kind.num_fields))
    return pa.types.is_list(kind) or pa.types.is_large_list(kind)


def plain_scan(ctx: StatementContext, query: exp.Expression) -> PlainScan | None:
    """``query`` as a scan of one Lance table when it is one, else None.

    ``SELECT a, b AS c, label * 2 AS d FROM t [AT version] WHERE <Lance filter> [LIMIT n]``
    needs nothing the engine adds: Lance reads, projects and filters it.
    """
    fast = analyse(query)
    if fast is None or fast.source != "name" or not fast.alone({"limit"}):
        return None
    table = fast.table
    condition = to_lance(fast.where, ctx.params) if fast.where is not None else None
    if fast.where is not None and condition is None:
        return None
    found = sources(ctx, exp.select("*").from_(table.copy()))
    if len(found) != 1 or not isinstance(found[0], lance.LanceDataset):
        return None
    ds = found[0]
    if condition is not None and not alike(condition, ds.schema):
        return None  # Lance would read the filter otherwise than the engine
    columns: dict[str, str] = {}
    for item in fast.items:
        star = item if isinstance(item, exp.Star) else item.this if isinstance(item, exp.Column) else None
        if isinstance(star, exp.Star) and any(star.args.values()):
            return None  # * EXCLUDE / REPLACE / RENAME: the engine applies them
        if isinstance(item, exp.Star):
            columns.update({name: quote(name) for name in ds.schema.names})
            continue
        inner = item.this if isinstance(item, exp.Alias) else item
        if isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star):
            columns.update({name: quote(name) for name in ds.schema.names})
            continue
        text = to_lance(inner, ctx.params)
        if text is None or not item.alias_or_name or item.alias_or_name in columns:
            return None  # no name (the engine names it), or one Lance cannot compute
        if not isinstance(inner, exp.Column) and not assignable(text, None, ds.schema):
            return None  # a value Lance types or computes otherwise than the engine
        columns[item.alias_or_name] = text
    if any(name not in ds.schema.names for name in fast.named):
        return None  # let the engine report the unknown column
    plain = [name for name, text in columns.items() if text == quote(name)]
    projection: list[str] | dict[str, str] = plain if len(plain) == len(columns) else columns
    return PlainScan(ds, projection, condition, fast.limit)


def direct_scan(ctx: StatementContext, query: exp.Expression) -> pa.RecordBatchReader | None:
    """A Lance scanner for ``query`` when it is a plain scan of one Lance table (see
    :func:`plain_scan`), else None: the rows go straight to the write, without a copy
    into and out of the engine."""
    if not ctx.settings.get("direct_scan"):
        return None
    scan = plain_scan(ctx, query)
    if scan is None:
        return None
    try:
        return scan.reader()
    except (OSError, ValueError):
        return None  # Lance refused it: the engine runs the query instead
