"""A differential oracle: each query through lancesql over Lance datasets, and the same
query on the same engine with no lancesql at all, over the same rows as Arrow tables.

lancesql's answer must be the engine's: the same column names, the same Arrow types,
the same rows (in order where the query orders every output column, as multisets
otherwise; floats within a tight tolerance, NaN equal to NaN). Where both fail,
lancesql's DB-API class must be the one the plain engine's error maps to:
DuckDB's exceptions already are PEP 249 classes (``CatalogException`` is a
``duckdb.ProgrammingError``), so their class names are used as they stand; DataFusion
raises plain exceptions, mapped by :func:`datafusion_class` from the text DataFusion
puts first (``Error during planning`` is the user's SQL, ``Arrow error: Cast`` a value).

Only lancesql's public API is used (``lancesql.connect``, cursors,
``fetch_arrow_table``), so the harness outlives changes inside the package.

Query texts are templates: ``{t}`` is the table ``t``, ``{t@2}`` the table ``t`` at
version 2 (``t VERSION AS OF 2`` through lancesql, the Arrow table ``t_v2 AS t`` on
the plain engine; ``{t@2:at}`` and ``{t@2:scan}`` pick ``AT (VERSION => 2)`` and
``lance_scan('t', 2)``), ``{?}`` a bound parameter (``?`` for lancesql and DuckDB,
``$n`` for plain DataFusion), and ``{cos}`` / ``{l2}`` the engine's name for the cosine
and L2 distance of two vectors.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datafusion
import duckdb
import lance
import pyarrow as pa

import lancesql

# -- the data ----------------------------------------------------------------------------

UTC = dt.timezone.utc

#: Strings people store: quotes, unicode, empty, a LIKE wildcard, a trailing space.
STRINGS = ["a", "b", "it's", 'say "hi"', "Zürich", "東京", "", "50%_off", "a ", "NULL", "😀"]


def _t_part(start: int, n: int, seed: int) -> pa.Table:
    """Rows ``start .. start + n`` of table ``t``: every column type, NULLs in each column
    (not all at once), duplicate ids and duplicate whole rows."""
    rows: dict[str, list[Any]] = {c: [] for c in T_SCHEMA.names}
    for j in range(n):
        i = start + j
        h = (i * 7919 + seed * 104729) % 1009
        null = h % 9  # which column, if any, is NULL in this row
        rid = i if i % 10 != 3 else i - 1  # duplicate ids
        values = {
            "id": rid,
            "k": h % 5,
            "i8": (h % 255) - 127,
            "i16": (h * 37) % 60000 - 30000,
            "i32": (h * 7907) % 4_000_000 - 2_000_000,
            "i64": (h * 1_000_003) * (1 if h % 2 else -1) * 1_000_000,
            "u8": h % 256,
            "f32": [0.5, -1.25, 3.0, 0.1, float("nan"), 2.5, -0.0, 1e10][h % 8],
            "f64": [0.04, -2.5, 1.0 / 3.0, float("nan"), 1e-300, 100.0, float("inf"), 0.1][h % 8],
            "dec": decimal.Decimal(h % 700 - 350) / 100,
            "d": dt.date(2026, 1, 1) + dt.timedelta(days=h % 400 - 200),
            "ts": dt.datetime(2026, 1, 1) + dt.timedelta(minutes=h * 97),
            "tstz": dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=h * 3571),
            "s": STRINGS[h % len(STRINGS)],
            "b": bytes([h % 256, 0, 39]) if h % 3 else b"",
            "l": [h % 4, h % 3] if h % 4 else [],
            "bo": h % 3 == 0,
        }
        nullable = ["k", "i8", "i16", "i32", "f32", "f64", "dec", "d", "ts", "tstz", "s", "b", "l", "bo"]
        if null < len(nullable) and h % 4 == 0:
            values[nullable[(h // 4) % len(nullable)]] = None
        for c in rows:
            rows[c].append(values[c])
    table = pa.table(rows, schema=T_SCHEMA)
    return pa.concat_tables([table, table.slice(0, 2)])  # two duplicate whole rows


T_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("k", pa.int32()),
        ("i8", pa.int8()),
        ("i16", pa.int16()),
        ("i32", pa.int32()),
        ("i64", pa.int64()),
        ("u8", pa.uint8()),
        ("f32", pa.float32()),
        ("f64", pa.float64()),
        ("dec", pa.decimal128(15, 2)),
        ("d", pa.date32()),
        ("ts", pa.timestamp("us")),
        ("tstz", pa.timestamp("us", tz="UTC")),
        ("s", pa.string()),
        ("b", pa.binary()),
        ("l", pa.list_(pa.int64())),
        ("bo", pa.bool_()),
    ]
)

#: Column names of ``t`` by kind, for the generator.
T_COLUMNS = T_SCHEMA.names
DIM = 8


def _u_table() -> pa.Table:
    """Table ``u``: a small dimension table sharing ``id`` and ``k`` with ``t``."""
    ids = [0, 1, 2, 2, 5, 9, 10, 13, 20, 21, 33, 40, 41, 55, None, 70, 71, 99, 100, 150]
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "k": pa.array([i % 5 if i is not None and i % 7 else None for i in range(20)], pa.int32()),
            "s": pa.array([STRINGS[i % len(STRINGS)] for i in range(20)]),
            "f64": pa.array([i / 4 for i in range(20)], pa.float64()),
        }
    )


def _v_table(n: int = 64) -> pa.Table:
    """Table ``v``: vectors with no index, so that nearest neighbours are exact."""
    rows = []
    for i in range(n):
        vec = [math.sin(i * 1.3 + j * 0.7) + (0.01 * i if j == 0 else 0.0) for j in range(DIM)]
        rows.append(vec)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "k": pa.array([i % 4 for i in range(n)], pa.int32()),
            # columns whose literals Lance reads otherwise than SQL (a search's prefilter)
            "dec": pa.array([decimal.Decimal(i % 7) / 100 for i in range(n)], pa.decimal128(15, 2)),
            "f32": pa.array([[0.1, 0.5, 2.0][i % 3] for i in range(n)], pa.float32()),
            "emb": pa.array(rows, pa.list_(pa.float32(), DIM)),
        }
    )


def _tm_table() -> pa.Table:
    """Table ``tm``: a TIME column (DuckDB's scan of it is a known bug, kept apart)."""
    return pa.table(
        {
            "id": pa.array(range(6), pa.int64()),
            "tm": pa.array(
                [
                    dt.time(0, 0),
                    dt.time(1, 2, 3),
                    None,
                    dt.time(12, 30),
                    dt.time(23, 59, 59),
                    dt.time(1, 2, 3),
                ],
                pa.time64("us"),
            ),
        }
    )


@dataclass
class Data:
    """The datasets of one oracle root, and every version of each as Arrow tables."""

    root: Path
    #: Plain engine table name (``t``, ``t_v2``) -> its rows.
    tables: dict[str, pa.Table] = field(default_factory=dict)
    #: Versions of each dataset, oldest first.
    versions: dict[str, list[int]] = field(default_factory=dict)


def build(root: Path) -> Data:
    """Write the oracle's datasets under ``root``.

    ``t`` gets three appends (three fragments, versions 1-3) and a delete (version 4,
    a deletion file); ``u`` two appends; ``v`` and ``tm`` one write each.
    """
    root.mkdir(parents=True, exist_ok=True)
    data = Data(root)
    uri = str(root / "t.lance")
    parts = [_t_part(0, 40, 1), _t_part(40, 30, 2), _t_part(70, 35, 3)]
    for i, part in enumerate(parts):
        lance.write_dataset(part, uri, mode="create" if i == 0 else "append")
    lance.dataset(uri).delete("id % 17 = 5")
    u = _u_table()
    lance.write_dataset(u.slice(0, 12), str(root / "u.lance"))
    lance.write_dataset(u.slice(12), str(root / "u.lance"), mode="append")
    lance.write_dataset(_v_table(), str(root / "v.lance"))
    lance.write_dataset(_tm_table(), str(root / "tm.lance"))
    for name in ("t", "u", "v", "tm"):
        ds = lance.dataset(str(root / f"{name}.lance"))
        numbers = [v["version"] for v in ds.versions()]
        data.versions[name] = numbers
        for number in numbers:
            data.tables[f"{name}_v{number}"] = ds.checkout_version(number).to_table()
        data.tables[name] = ds.to_table()
    return data


# -- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A query template (see the module docstring) and how to compare its results."""

    template: str
    params: tuple[Any, ...] = ()
    #: Every output column is ordered: rows compare in order.
    ordered: bool = False
    #: A LIMIT without a total order: lancesql's rows must be as many as the engine's,
    #: and a sub-multiset of this template's rows (the query without its LIMIT).
    within: str | None = None
    #: Run it twice through lancesql (grouped counts are answered by Lance from the second).
    twice: bool = False


_MARKER = re.compile(r"\{(\w+|\?)(?:@(\d+))?(?::(\w+))?\}")

_FUNCTIONS = {
    "duckdb": {"cos": "array_cosine_distance", "l2": "array_distance"},
    "datafusion": {"cos": "cosine_distance", "l2": "array_distance"},
}


def lancesql_text(template: str) -> str:
    """The template as a lancesql user writes it."""

    def sub(m: re.Match[str]) -> str:
        name, version, style = m.group(1), m.group(2), m.group(3)
        if name == "?":
            return "?"
        if name in ("cos", "l2"):
            return _FUNCTIONS["duckdb"][name]
        if version is None:
            return name
        if style == "at":
            return f"{name} AT (VERSION => {version})"
        if style == "scan":
            return f"lance_scan('{name}', {version})"
        return f"{name} VERSION AS OF {version}"

    return _MARKER.sub(sub, template)


def plain_text(template: str, engine: str) -> str:
    """The template as the plain engine reads it, over the Arrow tables."""
    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        name, version = m.group(1), m.group(2)
        if name == "?":
            count += 1
            return "?" if engine == "duckdb" else f"${count}"
        if name in ("cos", "l2"):
            return _FUNCTIONS[engine][name]
        if version is None:
            return name
        # lancesql names an unaliased version of ``t`` ``t``, as the engine names ``t``
        aliased = template[m.end() :].startswith(" AS ")
        return f"{name}_v{version}" + ("" if aliased else f" AS {name}")

    return _MARKER.sub(sub, template)


# -- running -------------------------------------------------------------------------------

_PEP249 = (
    "IntegrityError",
    "DataError",
    "NotSupportedError",
    "InternalError",
    "OperationalError",
    "ProgrammingError",
    "DatabaseError",
    "InterfaceError",
    "Error",
)

#: DataFusion's error texts -> the PEP 249 class a user should see.
_DATAFUSION_CLASSES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"not implemented|NotImplemented|Unsupported"), "NotSupportedError"),
    (
        re.compile(r"SQL error|ParserError|Schema error|Error during planning|type_coercion|Plan\("),
        "ProgrammingError",
    ),
    (
        re.compile(r"Cast error|Arrow error|Compute error|Divide by zero|Overflow|overflow|out of range"),
        "DataError",
    ),
    (re.compile(r"IO error|Object Store"), "OperationalError"),
]


def datafusion_class(exc: BaseException) -> str:
    """The PEP 249 class name a plain DataFusion error stands for."""
    message = str(exc)
    for pattern, name in _DATAFUSION_CLASSES:
        if pattern.search(message):
            return name
    return "DatabaseError"


def duckdb_class(exc: BaseException) -> str:
    """The PEP 249 class DuckDB itself gives its error (its exceptions subclass them)."""
    for klass in type(exc).__mro__:
        if klass.__module__.startswith(("duckdb", "_duckdb")) and klass.__name__ in _PEP249:
            return klass.__name__
    return "DatabaseError"


class Plain:
    """One engine with no lancesql: the oracle's tables registered as Arrow tables."""

    def __init__(self, engine: str, tables: dict[str, pa.Table]):
        self.engine = engine
        if engine == "duckdb":
            self.duck = duckdb.connect()
            for name, table in tables.items():
                self.duck.register(name, table)
        else:
            # DataFusion 54's dynamic filters drop NULL keys from INTERSECT (a semi join
            # with NULLs equal) over in-memory tables: off, so that the oracle is SQL's
            config = datafusion.SessionConfig().set(
                "datafusion.optimizer.enable_dynamic_filter_pushdown", "false"
            )
            self.ctx = datafusion.SessionContext(config)
            for name, table in tables.items():
                self.ctx.register_record_batches(name, [table.to_batches()])

    def run(self, sql: str, params: Sequence[Any]) -> pa.Table:
        if self.engine == "duckdb":
            return self.duck.sql(sql, params=list(params) if params else None).to_arrow_table()
        values = {str(i + 1): _df_param(p) for i, p in enumerate(params)} if params else None
        # Read as any Arrow consumer reads a DataFrame (its Arrow C stream), under the
        # schema DataFusion declares for the query. ``to_arrow_table()`` hands out the
        # physical plan's batches instead, which differ where an optimizer rule retypes a
        # column: ``sum(dec), count(DISTINCT id)`` becomes a sum of per-id sums, so
        # DECIMAL(35,2) there against the declared DECIMAL(25,2) (``sum(dec)`` alone).
        return pa.RecordBatchReader.from_stream(self.ctx.sql(sql, param_values=values)).read_all()

    def error_class(self, exc: BaseException) -> str:
        return duckdb_class(exc) if self.engine == "duckdb" else datafusion_class(exc)


def _df_param(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return pa.scalar(list(value))
    return value


@dataclass
class Outcome:
    table: pa.Table | None
    error: BaseException | None

    @property
    def failed(self) -> bool:
        return self.error is not None


class Mismatch(AssertionError):
    """lancesql's answer is not the plain engine's."""


class Oracle:
    """lancesql on ``engine`` over ``data.root``, checked against the plain engine."""

    def __init__(self, data: Data, engine: str, **connect: Any):
        self.data = data
        self.engine = engine
        self.con = lancesql.connect(data.root, engine=engine, **connect)
        self.plain = Plain(engine, data.tables)

    def close(self) -> None:
        self.con.close()

    def lancesql(self, sql: str, params: Sequence[Any] = ()) -> Outcome:
        try:
            cur = self.con.cursor()
            cur.execute(sql, list(params) if params else None)
            return Outcome(cur.fetch_arrow_table(), None)
        except Exception as exc:  # every failure is compared below
            return Outcome(None, exc)

    def engine_result(self, sql: str, params: Sequence[Any] = ()) -> Outcome:
        try:
            return Outcome(self.plain.run(sql, params), None)
        except Exception as exc:
            return Outcome(None, exc)

    def check(self, query: Query) -> str:
        """Compare lancesql with the plain engine on ``query``; raise :class:`Mismatch`
        with both SQL texts and the difference. Returns ``"rows"`` or ``"error"``."""
        ours_sql = lancesql_text(query.template)
        plain_sql = plain_text(query.template, self.engine)
        ours = self.lancesql(ours_sql, query.params)
        if query.twice and not ours.failed:
            ours = self.lancesql(ours_sql, query.params)
        theirs = self.engine_result(plain_sql, query.params)
        context = f"[{self.engine}] lancesql: {ours_sql}\n  plain: {plain_sql}\n  params: {query.params!r}"
        if theirs.failed or ours.failed:
            self._compare_errors(ours, theirs, context)
            return "error"
        assert ours.table is not None and theirs.table is not None
        if query.within is not None:
            full = self.engine_result(plain_text(query.within, self.engine), query.params)
            assert full.table is not None, f"{context}\n  the query without LIMIT failed: {full.error}"
            compare_within(ours.table, theirs.table, full.table, context)
        else:
            compare(ours.table, theirs.table, query.ordered, context)
        return "rows"

    def _compare_errors(self, ours: Outcome, theirs: Outcome, context: str) -> None:
        if not theirs.failed:
            raise Mismatch(f"{context}\n  lancesql failed, the engine did not: {_describe(ours.error)}")
        if not ours.failed:
            raise Mismatch(f"{context}\n  the engine failed, lancesql did not: {_describe(theirs.error)}")
        assert ours.error is not None and theirs.error is not None
        if not isinstance(ours.error, lancesql.Error):
            raise Mismatch(f"{context}\n  lancesql raised a non-DB-API error: {_describe(ours.error)}")
        expected = self.plain.error_class(theirs.error)
        got = type(ours.error).__name__
        if got != expected:
            raise Mismatch(
                f"{context}\n  lancesql raised {got}, the engine's error is a {expected}:\n"
                f"  lancesql: {_describe(ours.error)}\n  engine: {_describe(theirs.error)}"
            )


def _describe(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


# -- comparing -----------------------------------------------------------------------------


def compare(ours: pa.Table, theirs: pa.Table, ordered: bool, context: str = "") -> None:
    """Raise :class:`Mismatch` unless the two results are the same (see the module doc)."""
    if ours.schema.names != theirs.schema.names:
        raise Mismatch(f"{context}\n  column names {ours.schema.names} != engine's {theirs.schema.names}")
    if ours.schema.types != theirs.schema.types:
        raise Mismatch(f"{context}\n  types {ours.schema.types} != engine's {theirs.schema.types}")
    a, b = ours.to_pylist(), theirs.to_pylist()
    if len(a) != len(b):
        raise Mismatch(f"{context}\n  {len(a)} rows != engine's {len(b)}")
    rows_a = [tuple(r.values()) for r in a]
    rows_b = [tuple(r.values()) for r in b]
    if not ordered:
        rows_a.sort(key=_sort_key)
        rows_b.sort(key=_sort_key)
    # float32 results (vector distances) are summed in a different order by Lance and
    # the engine: equal to float32's precision, not to the last bit
    single = [pa.types.is_float32(t) for t in ours.schema.types]
    for i, (x, y) in enumerate(zip(rows_a, rows_b, strict=True)):
        if not all(_same(p, q, s) for p, q, s in zip(x, y, single, strict=True)):
            raise Mismatch(f"{context}\n  row {i}: {x!r} != engine's {y!r}")


def compare_within(ours: pa.Table, theirs: pa.Table, full: pa.Table, context: str) -> None:
    """A LIMIT with no total order: same schema and count, rows drawn from ``full``."""
    if ours.schema != theirs.schema and (
        ours.schema.names != theirs.schema.names or ours.schema.types != theirs.schema.types
    ):
        raise Mismatch(f"{context}\n  schema {ours.schema} != engine's {theirs.schema}")
    if ours.num_rows != theirs.num_rows:
        raise Mismatch(f"{context}\n  {ours.num_rows} rows != engine's {theirs.num_rows}")
    pool = Counter(_sort_key(tuple(r.values())) for r in full.to_pylist())
    for row in ours.to_pylist():
        key = _sort_key(tuple(row.values()))
        if pool[key] <= 0:
            raise Mismatch(f"{context}\n  row {row!r} is not a row of the query without LIMIT")
        pool[key] -= 1


def _norm(value: Any) -> Any:
    """A sortable, hashable stand-in for a value: floats rounded, NaN and NULL ranked."""
    if value is None:
        return (0, "")
    if isinstance(value, float):
        if math.isnan(value):
            return (1, "nan")
        return (2, float(f"{value:.6g}"))
    if isinstance(value, (list, tuple)):
        return (3, tuple(_norm(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _norm(v)) for k, v in sorted(value.items())))
    if isinstance(value, (int, decimal.Decimal)) and not isinstance(value, bool):
        return (2, float(value)) if abs(value) < 2**53 else (5, str(value))
    return (6, type(value).__name__, str(value))


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_norm(v) for v in row)


def _same(x: Any, y: Any, single: bool = False) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        if single:
            return x == y or math.isclose(x, y, rel_tol=1e-5, abs_tol=1e-6)
        return x == y or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(a, b, single) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k], single) for k in x)
    return type(x) is type(y) and x == y


Check = Callable[[Query], str]
