"""Hypothesis strategies for the oracle: the queries people write, as templates of
:mod:`tests.oracle` (``{t}``, ``{t@2}``, ``{?}``, ``{cos}``), over the tables it builds.

Shapes: plain reads (with and without LIMIT, which reach lancesql's direct path and
pushed LIMIT), groupings (the direct aggregate path), joins of every kind (two tables,
self, two versions of one table), set operations, CTEs (nested, referenced twice,
shadowing a table), scalar / IN / EXISTS / correlated subqueries, window functions,
DISTINCT, ORDER BY / LIMIT / OFFSET, nearest-neighbour ORDER BY distance, and literals
or bound parameters of every type against columns of every type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math

from hypothesis import strategies as st

from tests.oracle import DIM, STRINGS, Query

# -- values ----------------------------------------------------------------------------------


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


#: Column -> SQL literals people compare it with (of its type and of others).
LITERALS: dict[str, list[str]] = {
    "id": ["5", "-1", "40", "0.5", "'7'", "NULL", "CAST(12 AS TINYINT)", "1e1"],
    "k": ["0", "2", "4", "2.0", "NULL", "CAST(3 AS SMALLINT)"],
    "i8": ["-127", "0", "100", "300", "1.5", "CAST(-3 AS TINYINT)"],
    "i16": ["-30000", "5", "70000", "CAST(5 AS SMALLINT)"],
    "i32": ["0", "-2000000", "123456", "2.5", "CAST(7 AS BIGINT)"],
    "i64": ["0", "-9223372036854775807", "1000003000000", "1e12", "9223372036854775807"],
    "u8": ["0", "255", "-1", "128"],
    "f32": ["0.5", "-1.25", "0.1", "1e10", "CAST('NaN' AS FLOAT)", "CAST(0.1 AS FLOAT)", "3"],
    "f64": ["0.04", "0.1", "-2.5", "1e-300", "CAST('NaN' AS DOUBLE)", "CAST('Infinity' AS DOUBLE)", "100"],
    "dec": ["0.04", "-1.5", "1", "CAST(0.04 AS DECIMAL(15,2))", "0.045", "-3.50", "1e0"],
    "d": ["DATE '2026-01-01'", "DATE '2025-07-01'", "'2026-03-04'", "TIMESTAMP '2026-01-01 00:00:00'"],
    "ts": [
        "TIMESTAMP '2026-01-02 03:04:00'",
        "TIMESTAMP '2026-01-05 00:00:00'",
        "DATE '2026-01-03'",
        "'2026-01-02 10:00:00'",
    ],
    "tstz": [
        "TIMESTAMPTZ '2026-01-01 05:00:00+00'",
        "TIMESTAMP '2026-01-01 12:00:00'",
        "TIMESTAMPTZ '2026-01-02 00:00:00+02'",
    ],
    "s": [sql_string(s) for s in STRINGS] + ["'%'", "'z'", "5"],
    "b": ["X'0000'", "X''", "X'270027'", "X'FF0027'"],
    "l": ["[1, 2]", "[]", "[0, 0]", "[3, 2]"],
    "bo": ["TRUE", "FALSE", "NULL"],
}

#: Column -> Python values bound as parameters.
PARAMS: dict[str, list[object]] = {
    "id": [5, 40, -1, 2.5, None],
    "k": [0, 3, None],
    "i8": [-127, 100, 1000],
    "i16": [5, -30000],
    "i32": [0, 123456],
    "i64": [0, 2**62, -(2**63)],
    "u8": [0, 255],
    "f32": [0.5, 0.1, float("nan")],
    "f64": [0.04, 1.0 / 3.0, float("inf"), 1],
    "dec": [decimal.Decimal("0.04"), decimal.Decimal("-1.5"), 0.04, 1],
    "d": [dt.date(2026, 1, 1), dt.date(2025, 8, 1)],
    "ts": [dt.datetime(2026, 1, 2, 3, 4), dt.datetime(2026, 1, 5)],
    "tstz": [dt.datetime(2026, 1, 1, 5, tzinfo=dt.timezone.utc)],
    "s": ["it's", "Zürich", "", "a", "😀"],
    "b": [b"\x00\x00", b"", b"\x01\x00'"],
    "l": [[1, 2], [0, 0]],
    "bo": [True, False],
}

COLUMNS = list(LITERALS)
NUMERIC = ["id", "k", "i8", "i16", "i32", "i64", "u8", "f32", "f64", "dec"]
ORDERABLE = [c for c in COLUMNS if c not in ("b", "l")]
INTEGER = ["id", "k", "i8", "i16", "i32", "u8"]


@st.composite
def predicate(draw: st.DrawFn, alias: str = "", columns: list[str] | None = None) -> tuple[str, tuple]:
    """A condition on one column of ``t``, and the parameters it binds."""
    column = draw(st.sampled_from(columns or COLUMNS))
    ref = f"{alias}.{column}" if alias else column
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return f"{ref} IS {draw(st.sampled_from(['', 'NOT ']))}NULL", ()
    if shape == 1:
        value = draw(st.sampled_from(PARAMS[column]))
        op = draw(st.sampled_from(["=", "<>", "<", ">="]))
        return f"{ref} {op} {{?}}", (value,)
    literal = draw(st.sampled_from(LITERALS[column]))
    if shape == 2:
        other = draw(st.sampled_from(LITERALS[column]))
        return f"{ref} IN ({literal}, {other})", ()
    if shape == 3 and column in ORDERABLE:
        other = draw(st.sampled_from(LITERALS[column]))
        return f"{ref} BETWEEN {literal} AND {other}", ()
    if shape == 4 and column == "s":
        pattern = draw(st.sampled_from(["'a%'", "'%''%'", "'Z_rich'", "'%ü%'", "'50\\%%'", "'_'"]))
        return f"{ref} {draw(st.sampled_from(['LIKE', 'NOT LIKE']))} {pattern}", ()
    if shape == 5 and column in NUMERIC:
        return f"{ref} + 1 > {literal}", ()
    if shape == 6:
        return f"NOT ({ref} = {literal})", ()
    op = draw(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]))
    return f"{ref} {op} {literal}", ()


@st.composite
def where(draw: st.DrawFn, alias: str = "", max_size: int = 2) -> tuple[str, tuple]:
    preds = draw(st.lists(predicate(alias), max_size=max_size))
    if not preds:
        return "", ()
    joiner = draw(st.sampled_from([" AND ", " OR "]))
    text = joiner.join(f"({p})" if joiner == " OR " else p for p, _ in preds)
    params = tuple(v for _, ps in preds for v in ps)
    return f" WHERE {text}", params


def source(name: str = "t") -> st.SearchStrategy[str]:
    """The table, or one of its versions in one of the three spellings."""
    latest = st.just(f"{{{name}}}")
    if name != "t":
        return latest
    versions = st.builds(
        lambda v, style: f"{{t@{v}{':' + style if style else ''}}}",
        st.integers(1, 4),
        st.sampled_from(["", "at", "scan"]),
    )
    return st.one_of(latest, latest, versions)


EXPRESSIONS = [
    "id + 1",
    "i32 * 2",
    "s || '!'",
    "upper(s)",
    "CAST(i16 AS BIGINT)",
    "coalesce(k, -1)",
    "abs(i8)",
    "CASE WHEN k > 2 THEN 'hi' ELSE 'lo' END",
    "f64 / 2",
    "dec * 2",
    "d + 1",
    "length(s)",
    "k IS NULL",
    "i64 % 7",
    "CAST(dec AS DOUBLE)",
    "lower(s) = 'a'",
]


@st.composite
def projection(draw: st.DrawFn) -> tuple[list[str], bool]:
    """Output expressions, and whether they are ``*``."""
    if draw(st.integers(0, 5)) == 0:
        return ["*"], True
    items = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 3)) == 0:
            expr = draw(st.sampled_from(EXPRESSIONS))
            alias = draw(st.sampled_from(["", f" AS e{len(items)}"]))
            items.append(expr + alias)
        else:
            items.append(draw(st.sampled_from(COLUMNS)))
    return list(dict.fromkeys(items)), False


def order_all(n: int) -> str:
    return " ORDER BY " + ", ".join(str(i + 1) for i in range(n))


@st.composite
def plain_read(draw: st.DrawFn) -> Query:
    """SELECT [DISTINCT] cols FROM src [WHERE] [ORDER BY] [LIMIT [OFFSET]]."""
    items, star = draw(projection())
    src = draw(source(draw(st.sampled_from(["t", "t", "t", "u"]))))
    if "{u}" in src:
        items, star = (
            (["*"], True)
            if star
            else (
                draw(st.lists(st.sampled_from(["id", "k", "s", "f64"]), min_size=1, max_size=3, unique=True)),
                False,
            )
        )
        cond, params = draw(st.sampled_from([("", ()), (" WHERE k = 1", ()), (" WHERE id > {?}", (5,))]))
    else:
        cond, params = draw(where())
    distinct = "DISTINCT " if draw(st.integers(0, 5)) == 0 else ""
    base = f"SELECT {distinct}{', '.join(items)} FROM {src}{cond}"
    limit = draw(st.one_of(st.none(), st.integers(0, 12)))
    offset = draw(st.one_of(st.none(), st.integers(0, 5))) if limit is not None else None
    tail = ""
    if limit is not None:
        tail = f" LIMIT {limit}" + (f" OFFSET {offset}" if offset is not None else "")
    if draw(st.booleans()) and not (star or any(c in ("b", "l") for c in items)):
        return Query(base + order_all(len(items)) + tail, params, ordered=True)
    if limit is not None:
        return Query(base + tail, params, within=base)
    return Query(base, params)


AGGREGATES = [
    "count(*)",
    "count({c})",
    "min({c})",
    "max({c})",
    "sum({n})",
    "avg({n})",
    "count(DISTINCT {c})",
    "sum({n}) FILTER (WHERE k > 1)",
]


@st.composite
def grouping(draw: st.DrawFn) -> Query:
    """SELECT keys, aggregates FROM t [WHERE] [GROUP BY] [HAVING] [ORDER BY]: run twice."""
    src = draw(source())
    keys = draw(st.lists(st.sampled_from(["k", "bo", "s", "d", "i8", "u8"]), max_size=2, unique=True))
    aggs = []
    for _ in range(draw(st.integers(1, 3))):
        template = draw(st.sampled_from(AGGREGATES))
        c = draw(st.sampled_from([c for c in COLUMNS if c not in ("l",)]))
        n = draw(st.sampled_from(NUMERIC))
        aggs.append(template.format(c=c, n=n))
    aggs = list(dict.fromkeys(aggs))
    cond, params = draw(where(max_size=1))
    sql = f"SELECT {', '.join(keys + aggs)} FROM {src}{cond}"
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
        if draw(st.integers(0, 3)) == 0:
            sql += f" HAVING count(*) > {draw(st.integers(0, 8))}"
    ordered = False
    if keys and draw(st.booleans()):
        sql += order_all(len(keys) + len(aggs))
        ordered = True
    return Query(sql, params, ordered=ordered, twice=True)


@st.composite
def join(draw: st.DrawFn) -> Query:
    """Inner / left / semi / anti / self joins, and joins of two versions of ``t``."""
    kind = draw(st.integers(0, 8))
    cond, params = draw(where("a", max_size=1))
    left = draw(source())
    if kind == 0:
        sql = f"SELECT a.id, a.s, b.f64, b.s AS bs FROM {left} AS a JOIN {{u}} AS b ON a.id = b.id{cond}"
    elif kind == 1:
        sql = (
            f"SELECT a.id, a.k, b.s FROM {left} AS a LEFT JOIN {{u}} AS b ON a.id = b.id AND a.k = b.k{cond}"
        )
    elif kind == 2:
        sql = f"SELECT a.id, a.dec FROM {left} AS a WHERE a.id IN (SELECT id FROM {{u}})"
    elif kind == 3:
        neg = draw(st.sampled_from(["", "NOT "]))
        exists = "EXISTS (SELECT 1 FROM {u} AS b WHERE b.id = a.id)"
        sql = f"SELECT a.id, a.s FROM {left} AS a WHERE {neg}{exists}"
    elif kind == 4:
        sql = f"SELECT a.id FROM {left} AS a WHERE a.id NOT IN (SELECT id FROM {{u}})"
    elif kind == 5:
        sql = f"SELECT a.id, b.i32 FROM {left} AS a JOIN {{t}} AS b ON a.id = b.id AND a.k = b.k{cond}"
    elif kind == 6:
        v1, v2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        sql = f"SELECT a.id, a.s, b.s AS s2 FROM {{t@{v1}}} AS a JOIN {{t@{v2}:at}} AS b USING (id){cond}"
    elif kind == 7:
        v = draw(st.integers(1, 3))
        sql = (
            f"SELECT a.id, a.k FROM {{t@{v}}} AS a WHERE NOT EXISTS "
            f"(SELECT 1 FROM {{t}} AS b WHERE b.id = a.id AND b.k IS NOT DISTINCT FROM a.k)"
        )
    else:
        how = draw(st.sampled_from(["SEMI", "ANTI"]))
        sql = f"SELECT a.id, a.k FROM {left} AS a {how} JOIN {{u}} AS b ON a.id = b.id"
    if kind in (2, 3, 4, 7, 8):
        params = ()
    return Query(sql, params)


@st.composite
def set_operation(draw: st.DrawFn) -> Query:
    op = draw(st.sampled_from(["UNION", "UNION ALL", "EXCEPT", "EXCEPT ALL", "INTERSECT", "INTERSECT ALL"]))
    cols = draw(st.sampled_from(["id, k", "id", "s", "k, bo", "d"]))
    left, right = draw(source()), draw(source())
    cond, params = draw(where(max_size=1))
    sql = f"SELECT {cols} FROM {left}{cond} {op} SELECT {cols} FROM {right}"
    ordered = draw(st.booleans())
    if ordered:
        sql += order_all(len(cols.split(",")))
    return Query(sql, params, ordered=ordered)


@st.composite
def cte(draw: st.DrawFn) -> Query:
    kind = draw(st.integers(0, 6))
    src = draw(source())
    cond, params = draw(where(max_size=1))
    if kind == 0:
        sql = f"WITH c AS (SELECT k, count(*) AS n FROM {src}{cond} GROUP BY k) SELECT * FROM c"
    elif kind == 1:  # referenced twice
        sql = (
            f"WITH c AS (SELECT id, k, s FROM {src}{cond}) "
            "SELECT a.id, b.s FROM c AS a JOIN c AS b ON a.id = b.id AND a.k = b.k"
        )
    elif kind == 2:  # nested: one CTE reads another
        sql = (
            f"WITH c AS (SELECT id, k, i32 FROM {src}{cond}), "
            "d AS (SELECT k, max(i32) AS m FROM c GROUP BY k) "
            "SELECT c.id, d.m FROM c JOIN d ON c.k = d.k"
        )
    elif kind == 3:  # a CTE inside a subquery
        inner = f"WITH c AS (SELECT k FROM {src}{cond}) SELECT k, count(*) AS n FROM c GROUP BY k"
        sql = f"SELECT s.k, s.n FROM ({inner}) AS s"
    elif kind == 4:  # shadowing a table name at the top
        sql = "WITH t AS (SELECT id, s FROM {u} WHERE id > 5) SELECT t.id, t.s FROM t"
        params = ()
    elif kind == 5:  # shadowing inside a subquery (the first example)
        sql = "SELECT t.id FROM {t} JOIN (WITH t AS (SELECT 1 AS id) SELECT id FROM t) AS s USING (id)"
        params = ()
    else:  # a CTE named like a table, reading that table
        sql = f"WITH u AS (SELECT id, k FROM {src}{cond}) SELECT u.id, x.s FROM u JOIN {{t}} AS x USING (id)"
    return Query(sql, params)


@st.composite
def subquery(draw: st.DrawFn) -> Query:
    kind = draw(st.integers(0, 4))
    src = draw(source())
    if kind == 0:
        sql = f"SELECT id, (SELECT max(f64) FROM {{u}}) AS m FROM {src}"
    elif kind == 1:
        sql = f"SELECT a.id, (SELECT count(*) FROM {{u}} AS b WHERE b.k = a.k) AS n FROM {src} AS a"
    elif kind == 2:
        sql = (
            f"SELECT id, i32 FROM {src} AS a WHERE a.i32 > (SELECT avg(i32) FROM {{t}} AS b WHERE b.k = a.k)"
        )
    elif kind == 3:
        sql = f"SELECT id FROM {src} WHERE k IN (SELECT k FROM {{u}} WHERE s = 'a')"
    else:
        sql = f"SELECT id, (SELECT s FROM {{u}} AS b WHERE b.id = a.id) AS us FROM {src} AS a"
    return Query(sql)


WINDOWS = [
    "rank() OVER (PARTITION BY k ORDER BY id)",
    "dense_rank() OVER (ORDER BY s)",
    "count(*) OVER ()",
    "sum(i32) OVER (PARTITION BY k)",
    "sum(i16) OVER (PARTITION BY k ORDER BY id)",
    "min(d) OVER (PARTITION BY bo)",
    "max(f64) OVER (PARTITION BY k)",
    "avg(dec) OVER (PARTITION BY k)",
]


@st.composite
def window(draw: st.DrawFn) -> Query:
    src = draw(source())
    wins = draw(st.lists(st.sampled_from(WINDOWS), min_size=1, max_size=2, unique=True))
    cond, params = draw(where(max_size=1))
    cols = ", ".join(f"{w} AS w{i}" for i, w in enumerate(wins))
    return Query(f"SELECT id, k, {cols} FROM {src}{cond}", params)


#: Query vectors for nearest-neighbour queries.
VECTORS = [[round(math.cos(i + j * 0.9), 3) for j in range(DIM)] for i in range(4)]


@st.composite
def nearest(draw: st.DrawFn) -> Query:
    """``ORDER BY <distance>(emb, q) LIMIT k``, which lancesql answers with a search."""
    vec = draw(st.sampled_from(VECTORS))
    q = f"CAST({vec} AS FLOAT[{DIM}])"
    metric = draw(st.sampled_from(["cos", "l2"]))
    dist = f"{{{metric}}}(emb, {q})"
    cond = draw(
        st.sampled_from(
            [
                "",
                " WHERE k = 1",
                " WHERE k IN (0, 3) AND id > 10",
                " WHERE id < 0",
                " WHERE dec = 0.04",
                " WHERE k = 1 AND dec >= 0.03",
                " WHERE f32 = 0.1 OR k = 2",
                " WHERE id > 5 AND f32 <> 0.5",
            ]
        )
    )
    k = draw(st.integers(1, 8))
    offset = draw(st.sampled_from(["", " OFFSET 2"]))
    shape = draw(st.integers(0, 2))
    if shape == 0:
        return Query(
            f"SELECT id, {dist} AS dist FROM {{v}}{cond} ORDER BY dist LIMIT {k}{offset}", ordered=True
        )
    if shape == 1:
        return Query(f"SELECT id, k FROM {{v}}{cond} ORDER BY {dist} LIMIT {k}{offset}", ordered=True)
    return Query(f"SELECT * FROM {{v}}{cond} ORDER BY {dist} LIMIT {k}", ordered=True)


@st.composite
def time_query(draw: st.DrawFn) -> Query:
    """The TIME column (in a table of its own)."""
    lit = draw(st.sampled_from(["TIME '01:02:03'", "'12:30:00'", "TIME '23:00:00'", "NULL"]))
    op = draw(st.sampled_from(["=", ">", "<>"]))
    shape = draw(st.integers(0, 2))
    if shape == 0:
        return Query(f"SELECT id, tm FROM {{tm}} WHERE tm {op} {lit}")
    if shape == 1:
        return Query("SELECT tm, count(*) FROM {tm} GROUP BY tm", twice=True)
    return Query("SELECT id, tm FROM {tm} ORDER BY id LIMIT 3", ordered=True)


queries = st.one_of(
    plain_read(),
    plain_read(),
    grouping(),
    join(),
    set_operation(),
    cte(),
    subquery(),
    window(),
    nearest(),
    time_query(),
)
