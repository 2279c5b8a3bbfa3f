"""lancesql against the plain engine (see :mod:`tests.oracle`): generated queries of
every shape people write, on both engines, every fast path included; CTAS and
INSERT ... SELECT read back and compared with the engine's result of the SELECT; and a
regression case for each difference the oracle found."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import lance
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lancesql
from lancesql.arrow_types import storage_schema
from tests import oracle
from tests.conftest import ENGINES, fuzz_settings
from tests.oracle import Oracle, Query
from tests.oracle_queries import plain_read, queries

#: Generated queries per engine in CI (two engines: twice as many in all).
EXAMPLES = 1000


@pytest.fixture(scope="session")
def oracle_data(tmp_path_factory: pytest.TempPathFactory) -> oracle.Data:
    """The oracle's datasets, built once per session (read only)."""
    return oracle.build(tmp_path_factory.mktemp("oracle_root"))


@pytest.fixture(scope="module", params=ENGINES)
def check(request: pytest.FixtureRequest, oracle_data: oracle.Data) -> Iterator[Oracle]:
    """An oracle per engine."""
    o = Oracle(oracle_data, str(request.param))
    yield o
    o.close()


#: Engine bugs where the plain engine's answer is not SQL's: (engine, query pattern, why).
ENGINE_BUGS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "datafusion",
        re.compile(r"(INTERSECT|EXCEPT) ALL"),
        "DataFusion 54 counts INTERSECT ALL / EXCEPT ALL wrongly over both lancesql and Arrow "
        "(SELECT s FROM t INTERSECT ALL SELECT s FROM t_v2: 102 or 105 rows by plan, DuckDB 74)",
    ),
]


#: Differences found and not yet fixed (reported on issue 12): (engine, query, difference, why).
_OPEN: list[tuple[str, re.Pattern[str], re.Pattern[str], str]] = []


def known(query: Query, engine: str, difference: str) -> str | None:
    """Why ``query`` differs on ``engine`` by a recorded open difference, or None."""
    for on, pattern, message, why in _OPEN:
        if on in ("any", engine) and pattern.search(query.template) and message.search(difference):
            return why
    return None


@fuzz_settings(EXAMPLES)
@given(query=queries)
def test_generated_queries(check: Oracle, query: Query) -> None:
    """Every generated query: lancesql's answer (or error class) is the plain engine's."""
    if any(on == check.engine and pattern.search(query.template) for on, pattern, _ in ENGINE_BUGS):
        return
    try:
        check.check(query)
    except oracle.Mismatch as exc:
        if not known(query, check.engine, str(exc)):
            raise


# -- CTAS and INSERT ... SELECT ---------------------------------------------------------------


@pytest.fixture(scope="module")
def writable(oracle_data: oracle.Data, tmp_path_factory: pytest.TempPathFactory) -> oracle.Data:
    """A writable copy of the oracle root (same Arrow tables)."""
    root = tmp_path_factory.mktemp("oracle_writable") / "root"
    shutil.copytree(oracle_data.root, root)
    return oracle.Data(root, oracle_data.tables, oracle_data.versions)


_written = iter(range(10**9))


def _same_rows(written: pa.Table, expected: pa.Table, context: str) -> None:
    """The written table holds the engine's rows under the types lancesql documents for
    writes (README: binary as large_binary, list items named ``item``, UTC as ``UTC``),
    each a renaming that keeps every value: the engine's result cast to the stored types
    and back is the engine's result."""
    stored = storage_schema(expected.schema)
    assert written.schema.types == stored.types, f"{context}\n  {written.schema} != {stored}"
    oracle.compare(expected.cast(stored).cast(expected.schema), expected, ordered=True, context=context)
    oracle.compare(written, expected.cast(stored), ordered=False, context=context)


@fuzz_settings(25)
@given(query=plain_read(), engine=st.sampled_from(ENGINES))
def test_ctas_and_insert_select(writable: oracle.Data, query: Query, engine: str) -> None:
    """``CREATE TABLE x AS <select>`` writes the engine's rows, types and names;
    ``INSERT INTO x <select>`` appends them once more."""
    if query.within is not None:
        return  # a LIMIT with no order picks any rows: nothing to compare with
    plain = oracle.Plain(engine, writable.tables)
    select = oracle.lancesql_text(query.template)
    try:
        expected = plain.run(oracle.plain_text(query.template, engine), query.params)
    except Exception:
        return  # the SELECT fails on the engine: test_generated_queries covers its error
    if any(pa.types.is_null(t) for t in expected.schema.types) or len(set(expected.schema.names)) < len(
        expected.schema.names
    ):
        return  # no Lance type for a NULL column; duplicate names cannot be stored
    name = f"out_{next(_written)}"
    context = f"[{engine}] CREATE TABLE {name} AS {select} {query.params!r}"
    with lancesql.connect(writable.root, engine=engine) as con:
        if any("." in n for n in expected.schema.names):  # DataFusion's "t.id + Int64(1)"
            with pytest.raises(lancesql.ProgrammingError, match="name each computed column with AS"):
                con.cursor().execute(f"CREATE TABLE {name} AS {select}", list(query.params) or None)
            assert not (writable.root / f"{name}.lance").exists()
            return
        con.cursor().execute(f"CREATE TABLE {name} AS {select}", list(query.params) or None)
        written = lance.dataset(str(writable.root / f"{name}.lance")).to_table()
        _same_rows(written, expected, context)
        con.cursor().execute(f"INSERT INTO {name} {select}", list(query.params) or None)
        written = lance.dataset(str(writable.root / f"{name}.lance")).to_table()
        _same_rows(
            written, pa.concat_tables([expected, expected]), context.replace("CREATE TABLE", "+ INSERT")
        )


# -- regressions: each difference the oracle found, as a plain case ---------------------------

REGRESSIONS = [
    # DataFusion names unaliased columns by their table: lance_scan(...) with no alias
    # showed the placeholder (count(__lancesql_0.k)); it is now named after the dataset
    pytest.param("SELECT count(k), max(i8) FROM {t@3:scan}", {}, id="unaliased-lance-scan-name"),
    pytest.param("SELECT DISTINCT dec * 2, k FROM {t@2:scan}", {}, id="unaliased-lance-scan-expression"),
    # ORDER BY distance: the distance keeps the engine's type (FLOAT on DuckDB, DOUBLE on
    # DataFusion; sqrt of Lance's squared L2 was a DOUBLE on DuckDB, Lance's float a FLOAT
    # on DataFusion) and an unaliased distance keeps the engine's column name
    pytest.param(
        "SELECT id, {cos}(emb, CAST([1, 0, 0, 0, 0, 0, 0, 0.5] AS FLOAT[8])) AS dist "
        "FROM {v} ORDER BY dist LIMIT 5",
        {"ordered": True},
        id="order-by-cosine-type",
    ),
    pytest.param(
        "SELECT id, {l2}(emb, CAST([1, 0, 0, 0, 0, 0, 0, 0.5] AS FLOAT[8])) AS dist FROM {v} WHERE k = 1 "
        "ORDER BY dist LIMIT 4",
        {"ordered": True},
        id="order-by-l2-type",
    ),
    pytest.param(
        "SELECT id, {cos}(emb, CAST([1, 0, 0, 0, 0, 0, 0, 0.5] AS FLOAT[8])) FROM {v} "
        "ORDER BY {cos}(emb, CAST([1, 0, 0, 0, 0, 0, 0, 0.5] AS FLOAT[8])) LIMIT 3",
        {"ordered": True},
        id="order-by-distance-unaliased",
    ),
    # X'..' binary literals: DuckDB and DataFusion read them, lancesql did not parse them
    pytest.param("SELECT id, b FROM {t} WHERE b IN (X'', X'0A0027')", {}, id="hex-literal"),
    pytest.param(
        "SELECT k, count(*) FROM {t} WHERE b = X'' GROUP BY k", {"twice": True}, id="hex-literal-grouped"
    ),
    # a date parameter in a plain read: the direct path's Lance filter hit an assert
    pytest.param("SELECT d FROM {t} WHERE d >= {?}", {"params": (dt.date(2026, 1, 1),)}, id="date-parameter"),
    pytest.param(
        "SELECT k, count(*) FROM {t} WHERE ts < {?} GROUP BY k",
        {"params": (dt.datetime(2026, 1, 3),), "twice": True},
        id="timestamp-parameter-grouped",
    ),
    # DuckDB: a filter on an unsigned integer column failed in Lance's Substrait
    # conversion ("pushdown filter referenced a field that is not yet supported")
    pytest.param("SELECT s, dec FROM {t} WHERE u8 < 255 AND k = 1", {}, id="uint-filter"),
    pytest.param("SELECT * FROM {t} WHERE NOT (k = 0) AND u8 >= 3", {}, id="uint-filter-star"),
    pytest.param("SELECT id, tm FROM {tm} WHERE tm > TIME '01:00:00'", {}, id="time-filter"),
    # DuckDB's pushed LIMIT handed Lance CAST(... AS REAL), a type Lance does not know
    pytest.param(
        "SELECT * FROM {t} WHERE f32 IN (0.5, CAST('NaN' AS FLOAT)) LIMIT 3",
        {"within": "SELECT * FROM {t} WHERE f32 IN (0.5, CAST('NaN' AS FLOAT))"},
        id="float-cast-pushed-limit",
    ),
    # DataFusion: INTERSECT lost the NULL row (dynamic join filters drop NULL keys)
    pytest.param(
        "SELECT s FROM {t} INTERSECT SELECT s FROM {t} ORDER BY 1", {"ordered": True}, id="intersect-null"
    ),
    pytest.param("SELECT k, s FROM {t} INTERSECT SELECT k, s FROM {t@2}", {}, id="intersect-null-versions"),
    # streaming errors (a DataFusion panic read through fetch_arrow_table) were ArrowInvalid
    pytest.param("SELECT CAST(s AS INT) AS n FROM {t}", {}, id="streaming-error-class"),
    # a parameter, then '' at the very end: sqlglot's tokenizer failed (a non-DB-API TokenError)
    pytest.param(
        "SELECT DISTINCT * FROM {t} WHERE id = {?} AND b = X''", {"params": (5,)}, id="param-hex-end"
    ),
    pytest.param("SELECT id, s FROM {t} WHERE id > {?} AND s = ''", {"params": (5,)}, id="param-empty-end"),
    # DataFusion declares sum(DECIMAL(15,2)) DECIMAL(25,2); beside count(DISTINCT ...) its
    # optimizer sums per-group sums, whose batches are DECIMAL(35,2): the declared type counts
    pytest.param(
        "SELECT sum(dec), count(DISTINCT id) FROM {t}", {"twice": True}, id="sum-decimal-count-distinct"
    ),
    # ORDER BY distance: a WHERE Lance reads otherwise than SQL (a DECIMAL or FLOAT column
    # against a double literal) was handed to the search as its prefilter (an error, or no
    # rows on DataFusion); the engine filters it now, Lance the part it reads alike
    pytest.param(
        "SELECT id, {cos}(emb, CAST([1, 0, 0, 0, 0, 0, 0, 0.5] AS FLOAT[8])) AS dist FROM {v} "
        "WHERE dec = 0.04 ORDER BY dist LIMIT 4",
        {"ordered": True},
        id="order-by-distance-decimal-where",
    ),
    pytest.param(
        "SELECT id, k FROM {v} WHERE k = 1 AND f32 = 0.1 "
        "ORDER BY {l2}(emb, CAST([1, 0, 0, 0, 0, 0, 0, 0.5] AS FLOAT[8])) LIMIT 3 OFFSET 1",
        {"ordered": True},
        id="order-by-distance-float-where-part",
    ),
]


@pytest.mark.parametrize(("template", "options"), REGRESSIONS)
def test_regression(check: Oracle, template: str, options: dict) -> None:
    check.check(Query(template, **options))


def test_oracle_catches_a_difference(check: Oracle) -> None:
    """The harness itself: a wrong row, a wrong type or a missing row is caught; NaN equals
    NaN; an unknown column is an error on both sides with the same class."""
    ours = pa.table({"x": pa.array([1, 2], pa.int64())})
    with pytest.raises(oracle.Mismatch, match="row 1"):
        oracle.compare(ours, pa.table({"x": pa.array([1, 3], pa.int64())}), ordered=True)
    with pytest.raises(oracle.Mismatch, match="types"):
        oracle.compare(ours, pa.table({"x": pa.array([1, 2], pa.int32())}), ordered=True)
    with pytest.raises(oracle.Mismatch, match="rows"):
        oracle.compare(ours, ours.slice(0, 1), ordered=False)
    oracle.compare(ours, pa.table({"x": pa.array([2, 1], pa.int64())}), ordered=False)
    nan = pa.table({"f": pa.array([float("nan"), 0.1 + 0.2])})
    oracle.compare(nan, pa.table({"f": pa.array([float("nan"), 0.3])}), ordered=True)
    assert check.check(Query("SELECT k, count(*) FROM {t} GROUP BY k", twice=True)) == "rows"
    assert check.check(Query("SELECT nope FROM {t}")) == "error"


def test_error_classes() -> None:
    """The oracle's mapping of plain engine errors to DB-API classes."""
    import duckdb

    assert oracle.duckdb_class(duckdb.CatalogException("x")) == "ProgrammingError"
    assert oracle.duckdb_class(duckdb.ConversionException("x")) == "DataError"
    assert oracle.datafusion_class(Exception("Error during planning: x")) == "ProgrammingError"
    assert oracle.datafusion_class(Exception("Arrow error: Cast error: x")) == "DataError"


def test_ctas_unaliased_expression(writable: oracle.Data, engine: str) -> None:
    """An unaliased computed column is named by the engine (DuckDB: ``(id + 1)``), never
    written with no name (Lance's direct scan of CTAS gave it ``""``)."""
    expected = oracle.Plain(engine, writable.tables).run("SELECT id + 1 FROM t", ())
    name = f"out_{next(_written)}"
    with lancesql.connect(writable.root, engine=engine) as con:
        try:
            con.cursor().execute(f"CREATE TABLE {name} AS SELECT id + 1 FROM t")
        except lancesql.ProgrammingError as exc:
            assert "." in expected.schema.names[0] and "name each computed column with AS" in str(exc)
            return
    written = lance.dataset(str(writable.root / f"{name}.lance")).to_table()
    _same_rows(written, expected, f"[{engine}] CREATE TABLE {name} AS SELECT id + 1 FROM t")


# -- UPDATE ... SET and ALTER TABLE ... ADD COLUMN AS: the engine's values --------------------

#: (column, value): exact conversions Lance computes, and values only the engine computes
#: as SQL does (literal types, DECIMAL scales, integer overflow, which Lance wraps around).
ASSIGNMENTS = [
    ("k", "k + 1"),
    ("k", "3"),
    ("i8", "i8 * 100"),
    ("i64", "i32"),
    ("i32", "i16 - 1"),
    ("f64", "0.1"),
    ("f32", "f32 + 0.1"),
    ("dec", "dec * 2"),
    ("dec", "0.045"),
    ("s", "s || '!'"),
    ("d", "DATE '2026-02-01'"),
    ("bo", "k IN (1, 2)"),
    ("i16", "NULL"),
]


def _copy_t(data: oracle.Data, tmp: Path) -> Path:
    root = tmp / "root"
    root.mkdir()
    shutil.copytree(data.root / "t.lance", root / "t.lance")
    return root


@pytest.mark.parametrize(("column", "value"), ASSIGNMENTS)
def test_add_column_as(
    oracle_data: oracle.Data, tmp_path: Path, engine: str, column: str, value: str
) -> None:
    """``ADD COLUMN c AS (expr)`` stores what the plain engine's ``SELECT expr`` gives
    (under the documented storage types), or fails as the engine does."""
    root = _copy_t(oracle_data, tmp_path)
    plain = oracle.Plain(engine, oracle_data.tables)
    try:
        expected: pa.Table | None = plain.run(f"SELECT {value} AS c FROM t", ())
    except Exception as exc:
        expected, error = None, plain.error_class(exc)
    with lancesql.connect(root, engine=engine) as con:
        if expected is None:
            with pytest.raises(lancesql.Error) as raised:
                con.cursor().execute(f"ALTER TABLE t ADD COLUMN c AS ({value})")
            assert type(raised.value).__name__ == error
            return
        con.cursor().execute(f"ALTER TABLE t ADD COLUMN c AS ({value})")
    written = lance.dataset(str(root / "t.lance")).to_table(columns=["c"])
    if pa.types.is_null(expected.schema.field("c").type):
        return  # a NULL column gets a type of lancesql's choosing
    _same_rows(written, expected, f"[{engine}] ADD COLUMN c AS ({value})")


@pytest.mark.parametrize(
    ("declared", "value"),
    [
        ("DECIMAL(15, 2)", "0.045"),
        ("INT", "i16 + 0.5"),
        ("DOUBLE", "k"),
        ("VARCHAR", "id"),
        ("TINYINT", "i16"),
    ],
)
def test_add_column_typed(
    oracle_data: oracle.Data, tmp_path: Path, engine: str, declared: str, value: str
) -> None:
    """``ADD COLUMN c <type> AS (expr)`` stores the plain engine's ``CAST(expr AS type)``."""
    root = _copy_t(oracle_data, tmp_path)
    plain = oracle.Plain(engine, oracle_data.tables)
    statement = f"ALTER TABLE t ADD COLUMN c {declared} AS ({value})"
    with lancesql.connect(root, engine=engine) as con:
        try:
            expected = plain.run(f"SELECT CAST({value} AS {declared}) AS c FROM t", ())
        except Exception as exc:
            with pytest.raises(lancesql.Error) as raised:
                con.cursor().execute(statement)
            assert type(raised.value).__name__ == plain.error_class(exc)
            return
        con.cursor().execute(statement)
    written = lance.dataset(str(root / "t.lance")).to_table(columns=["c"])
    _same_rows(written, expected, f"[{engine}] {statement}")


@pytest.mark.parametrize(("column", "value"), ASSIGNMENTS)
def test_update_set(oracle_data: oracle.Data, tmp_path: Path, engine: str, column: str, value: str) -> None:
    """``UPDATE t SET col = expr WHERE ...`` leaves the rows plain DuckDB's UPDATE leaves
    (on DataFusion, which has no UPDATE over Arrow tables: the SELECT that computes them
    with SQL's CAST to the column's type), or fails as the engine does."""
    root = _copy_t(oracle_data, tmp_path)
    kind = oracle_data.tables["t"].schema.field(column).type
    where = "id % 3 = 0"
    plain = oracle.Plain(engine, oracle_data.tables)
    expected: pa.Table | None = None
    try:
        if engine == "duckdb":
            plain.duck.execute("CREATE TABLE w AS SELECT * FROM t")
            plain.duck.execute(f"UPDATE w SET {column} = {value} WHERE {where}")
            expected = plain.run(f"SELECT id, {column} FROM w", ())
        else:
            names = {pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INT", pa.int64(): "BIGINT"}
            names.update({pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.string(): "VARCHAR"})
            names.update({pa.date32(): "DATE", pa.bool_(): "BOOLEAN", pa.decimal128(15, 2): "DECIMAL(15, 2)"})
            cast = f"CAST({value} AS {names[kind]})"
            expected = plain.run(
                f"SELECT id, CASE WHEN {where} THEN {cast} ELSE {column} END AS {column} FROM t", ()
            )
    except Exception as exc:
        error = plain.error_class(exc)
    with lancesql.connect(root, engine=engine) as con:
        statement = f"UPDATE t SET {column} = {value} WHERE {where}"
        if expected is None:
            with pytest.raises(lancesql.Error) as raised:
                con.cursor().execute(statement)
            assert type(raised.value).__name__ == error
            return
        con.cursor().execute(statement)
    written = lance.dataset(str(root / "t.lance")).to_table(columns=["id", column])
    # an UPDATE keeps the column's type (DataFusion's CASE gives string_view for VARCHAR)
    expected = expected.cast(written.schema)
    oracle.compare(written, expected, ordered=False, context=f"[{engine}] {statement}")
