"""Expressions Lance can evaluate itself, translated into Lance's SQL: the one place.

Design notes: ``docs/ARCHITECTURE.md``, "What Lance evaluates itself".
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import pyarrow as pa
import sqlglot
import sqlglot.errors
from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB

from lancesql.errors import DataError, ProgrammingError


class _LanceSQL(DuckDB):
    """DuckDB's SQL with Lance's identifier quotes: Lance reads ``"x"`` in a filter as
    the string 'x', and ```x``` as the column; and with Lance's type names (DuckDB
    writes ``FLOAT`` as ``REAL``, which Lance refuses). Its parser reads backticked names
    (the text this module writes) as well as double-quoted ones."""

    class Tokenizer(DuckDB.Tokenizer):
        IDENTIFIERS: ClassVar[list[str | tuple[str, str]]] = ["`", '"']

    class Generator(DuckDB.Generator):  # type: ignore[misc,valid-type]
        TYPE_MAPPING: ClassVar[dict[Any, str]] = {
            **DuckDB.Generator.TYPE_MAPPING,
            exp.DataType.Type.FLOAT: "FLOAT",
        }


_LanceSQL.IDENTIFIER_START = "`"
_LanceSQL.IDENTIFIER_END = "`"
_DIALECT = _LanceSQL()
#: One generator per thread: building one costs more than generating a short expression.
_LOCAL = threading.local()


def _generate(tree: exp.Expression) -> str:
    generator = getattr(_LOCAL, "generator", None)
    if generator is None:
        generator = _LOCAL.generator = _DIALECT.generator()
    return str(generator.generate(tree))


#: Node types whose meaning is the same in DuckDB and in Lance's DataFusion.
_SAFE: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Like,
    exp.DPipe,
    exp.Coalesce,
    exp.Abs,
    exp.Lower,
    exp.Upper,
    exp.Cast,
    exp.DataType,
    exp.Tuple,
)

#: Casts Lance's SQL spells the same way.
_CASTS = {
    exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TEXT,
}


def to_lance(expression: exp.Expression, params: Sequence[Any] = ()) -> str | None:
    """Lance's SQL for ``expression``, or None when the engine must compute it.

    Bound ``?`` parameters (``$n``) are inlined as literals when they are plain values.

    >>> import sqlglot
    >>> def t(sql, *p):
    ...     return to_lance(sqlglot.parse_one(sql, read="duckdb"), p)
    >>> t("label IN (0, 3, 6) AND NOT name LIKE 'a%'")
    "label IN (0, 3, 6) AND NOT name LIKE 'a%'"
    >>> t("id = $1", "it's")
    "id = 'it''s'"
    >>> t('"Id" > 2'), t("f = CAST('NaN' AS FLOAT)")
    ('`Id` > 2', "f = CAST('NaN' AS FLOAT)")
    >>> t("label / 2"), t("embed_image(image)"), t("CASE WHEN a THEN 1 END")
    (None, None, None)

    A division runs in Lance only when one side is ``CAST(... AS DOUBLE)``: ``/`` of two
    integers is a double in DuckDB (``7 / 2 = 3.5``) and an integer in Lance (``3``).

    >>> t("CAST(width AS DOUBLE) / height")
    'CAST(width AS DOUBLE) / height'
    """
    tree = expression.copy()
    for node in list(tree.walk()):
        if isinstance(node, exp.Placeholder):
            literal = _literal(node, params)
            if literal is None:
                return None
            if node is tree:
                tree = literal
            else:
                node.replace(literal)
        elif not _safe(node):
            return None
        elif isinstance(node, exp.Column) and node.table:
            # ``t.col``: Lance knows one table only and reads the bare name.
            node.set("table", None)
    return _generate(tree)


def _safe(node: Any) -> bool:
    if not isinstance(node, _SAFE):
        return False
    if isinstance(node, exp.Cast):
        return node.to.this in _CASTS and not node.args.get("safe")
    if isinstance(node, exp.In):
        return not (node.args.get("query") or node.args.get("unnest"))
    if isinstance(node, exp.Div):
        return _is_double_cast(node.this) or _is_double_cast(node.expression)
    return True


def _is_double_cast(node: exp.Expression) -> bool:
    """``CAST(x AS DOUBLE)``: a division by or of it is a double in every engine."""
    while isinstance(node, exp.Paren):
        node = node.this
    return isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DOUBLE


def _literal(node: exp.Placeholder, params: Sequence[Any]) -> exp.Expression | None:
    try:
        value = params[int(node.name) - 1]
    except (ValueError, IndexError):
        return None
    return literal(value)


def literal(value: Any) -> exp.Expression | None:
    """A Python value as a SQL literal, or None for a value with no literal form.

    >>> literal(3).sql(), literal(-2.5).sql(), literal("a").sql(), literal(None).sql(), literal(True).sql()
    ('3', '-2.5', "'a'", 'NULL', 'TRUE')
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities have no literal in Lance's SQL: the engine runs it
    if isinstance(value, int) and value == -(2**63):
        # Lance reads -9223372036854775808 as minus a literal too large for BIGINT (a float).
        largest = exp.Neg(this=exp.Literal.number(2**63 - 1))
        return exp.paren(exp.Sub(this=largest, expression=exp.Literal.number(1)))
    if isinstance(value, (int, float)):
        number = exp.Literal.number(abs(value))
        return exp.Neg(this=number) if value < 0 else number
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), "TIMESTAMP")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if hasattr(value, "item"):  # numpy scalars
        return literal(value.item())
    return None


# -- types: whether Lance reads a filter as the engine does ------------------------------

_T = exp.DataType.Type
_INT_RANGES = {
    pa.int8(): 2**7,
    pa.int16(): 2**15,
    pa.int32(): 2**31,
    pa.int64(): 2**63,
}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _parse(text: str) -> exp.Expression | None:
    """Lance filter or value text as a tree, or None when it does not parse."""
    try:
        tree = sqlglot.parse_one(text, read=_DIALECT)
    except sqlglot.errors.SqlglotError:
        return None
    return tree if isinstance(tree, exp.Expression) else None


def alike(text: str, schema: pa.Schema) -> bool:
    """Whether Lance evaluates the filter ``text`` (Lance's SQL, as :func:`to_lance` and
    :func:`render` write it) over a dataset of ``schema`` exactly as DuckDB or DataFusion
    would: the one place that decides it, for every optional hand-off of a WHERE to Lance
    (a pushed LIMIT, a plain read, a grouped count, CTAS, DELETE, UPDATE).

    Lance converts a literal to its column's type where SQL widens both sides: ``d =
    0.04`` on a DECIMAL column is an error in Lance, ``f = 0.1`` on a FLOAT (float32)
    column compares 0.1 as a float32 in DuckDB and as a double in DataFusion. So each
    comparison must be between values of one family that both read alike: integers with
    integers (a literal within the column's range), doubles with numbers, strings with
    strings, booleans, dates with ``DATE '...'``, zone-less timestamps with
    ``TIMESTAMP '...'``. DECIMAL, FLOAT, TIME, zoned timestamps and binary columns are
    left to the engine (IS NULL on them is fine). Otherwise the engine filters.

    >>> import pyarrow as pa
    >>> s = pa.schema([("d", pa.decimal128(15, 2)), ("f", pa.float32()), ("x", pa.float64()),
    ...                ("i", pa.int8()), ("s", pa.string()), ("t", pa.timestamp("us"))])
    >>> [alike(f, s) for f in ("d = 0.04", "d IS NULL", "f = 0.1", "f = 2", "x = 0.04")]
    [False, True, False, True, True]
    >>> [alike(f, s) for f in ("i = 3", "i = 300", "i = 0.5", "s = 'a'", "s = 1", "s LIKE 'a%'")]
    [True, False, False, True, False, True]
    >>> [alike(f, s) for f in ("t > CAST('2026-01-01' AS TIMESTAMP)", "t > '2026-01-01'", "i IN (1, 2.5)")]
    [True, False, False]
    >>> alike("`i` = 3 AND `s` = 'a'", s)
    True
    """
    tree = _parse(text)
    if tree is None:
        return False
    types = {f.name: f.type for f in schema}
    return _predicate_alike(tree, types)


def assignable(text: str, target: pa.DataType | None, schema: pa.Schema) -> bool:
    """Whether Lance computes the value ``text`` (Lance's SQL) for a column of type
    ``target`` (None: the type the value has) over a dataset of ``schema`` exactly as
    the engine would, for ``UPDATE ... SET`` and ``ADD COLUMN ... AS``.

    Only values converted exactly qualify: NULL; a column, stored as its own type or
    into a column of its family (integers no wider, any number into a DOUBLE); arithmetic
    on doubles (a double column or ``CAST(... AS DOUBLE)`` on one side: IEEE in both,
    division by zero included), into a DOUBLE; a
    literal into a column of its family (an integer within range, a number into a
    DOUBLE, a string, a boolean, ``DATE '...'``, ``TIMESTAMP '...'``); a condition
    :func:`alike` accepts, into a BOOLEAN. Arithmetic and the rest are the engine's: it
    types results its own way (``1`` is an INTEGER in DuckDB, a BIGINT in Lance;
    DECIMAL scales) and fails on integer overflow, where Lance wraps around.

    >>> import pyarrow as pa
    >>> s = pa.schema([("i", pa.int8()), ("j", pa.int32()), ("x", pa.float64()), ("d", pa.decimal128(15, 2))])
    >>> [assignable(v, pa.int32(), s) for v in ("3", "i", "x", "j * 2", "NULL", "3000000000")]
    [True, True, False, False, True, False]
    >>> [assignable(v, None, s) for v in ("j", "d", "j = 3", "d = 0.04", "1")]
    [True, True, True, False, False]
    >>> [assignable(v, pa.float64(), s) for v in ("0.1", "j", "d")], assignable("j IN (1, 2)", pa.bool_(), s)
    ([True, True, False], True)
    >>> [assignable(v, pa.float64(), s) for v in ("CAST(j AS DOUBLE) / i", "x * 2", "j / 2", "d / x")]
    [True, True, False, False]
    """
    tree = _parse(text)
    if tree is None:
        return False
    if isinstance(tree, exp.Null):
        return True
    types = {f.name: f.type for f in schema}
    if isinstance(tree, exp.Column) and not tree.table and tree.name in types:
        given = types[tree.name]
        if target is None or given == target:
            return True
        if pa.types.is_integer(given) and pa.types.is_integer(target):
            return _fits(given, target)
        return pa.types.is_float64(target) and (pa.types.is_integer(given) or pa.types.is_float32(given))
    if target is None or pa.types.is_boolean(target):
        return _predicate_alike(tree, types)
    kind = _kind(tree, types)
    if kind == "intlit" and pa.types.is_integer(target):
        return _int_in_range(exp.column("_"), tree, {"_": target})
    family = {
        "intlit": pa.types.is_float64,
        "floatlit": pa.types.is_float64,
        "strlit": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
        "bool": pa.types.is_boolean,
        "date": pa.types.is_date32,
        "timestamp": lambda t: pa.types.is_timestamp(t) and t.tz is None,
    }
    if kind == "double" and isinstance(tree, (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Cast, exp.Paren)):
        return pa.types.is_float64(target)
    literal = isinstance(tree, (exp.Literal, exp.Boolean, exp.Neg, exp.Cast))
    return literal and kind in family and family[kind](target)


def _fits(given: pa.DataType, target: pa.DataType) -> bool:
    """Every value of integer type ``given`` is one of integer type ``target``."""
    if pa.types.is_signed_integer(given):
        return pa.types.is_signed_integer(target) and given.bit_width <= target.bit_width
    if pa.types.is_unsigned_integer(target):
        return given.bit_width <= target.bit_width
    return given.bit_width < target.bit_width


def alike_part(text: str, schema: pa.Schema) -> tuple[str | None, bool]:
    """The conjuncts of the filter ``text`` that Lance reads alike (see :func:`alike`),
    joined by AND (None: none), and whether they are the whole filter: a search that
    must read a WHERE as SQL does prefilters by that part and leaves the rest to the
    engine.

    >>> import pyarrow as pa
    >>> s = pa.schema([("d", pa.decimal128(15, 2)), ("k", pa.int32())])
    >>> alike_part("k = 1 AND d = 0.04", s), alike_part("d = 0.04", s), alike_part("k IN (1, 2)", s)
    (('k = 1', False), (None, False), ('k IN (1, 2)', True))
    """
    tree = _parse(text)
    if tree is None:
        return None, False
    types = {f.name: f.type for f in schema}
    conjuncts = [tree]
    if isinstance(tree, exp.And):
        conjuncts = [c for c in tree.flatten() if isinstance(c, exp.Expression)]
    kept = [c for c in conjuncts if _predicate_alike(c, types)]
    return (_generate(cast(exp.Expression, exp.and_(*kept))) if kept else None), len(kept) == len(conjuncts)


def _predicate_alike(node: exp.Expression, types: dict[str, pa.DataType]) -> bool:
    if isinstance(node, (exp.And, exp.Or)):
        return _predicate_alike(node.this, types) and _predicate_alike(node.expression, types)
    if isinstance(node, (exp.Not, exp.Paren)):
        return _predicate_alike(node.this, types)
    if isinstance(node, exp.Boolean):
        return True
    if isinstance(node, exp.Is):
        return isinstance(node.expression, exp.Null) and (
            _kind(node.this, types) is not None
            or (isinstance(node.this, exp.Column) and node.this.name in types)
        )
    if isinstance(node, _COMPARISONS):
        return _comparable(node.this, node.expression, types)
    if isinstance(node, exp.In):
        return all(_comparable(node.this, e, types) for e in node.expressions)
    if isinstance(node, exp.Between):
        return _comparable(node.this, node.args["low"], types) and _comparable(
            node.this, node.args["high"], types
        )
    if isinstance(node, exp.Like):
        return _kind(node.this, types) == "string" and _kind(node.expression, types) in ("string", "strlit")
    if isinstance(node, exp.Column):
        return _kind(node, types) == "bool"
    return False


def _kind(node: exp.Expression, types: dict[str, pa.DataType]) -> str | None:
    """The family of a value both engines read alike, or None."""
    if isinstance(node, exp.Paren):
        return _kind(node.this, types)
    if isinstance(node, exp.Neg):
        inner = _kind(node.this, types)
        return inner if inner in ("intlit", "floatlit", "int", "double") else None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "strlit"
        return "intlit" if node.is_int else "floatlit"
    if isinstance(node, exp.Null):
        return "null"
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Column):
        kind = types.get(node.name)
        if kind is None or node.table:
            return None
        if pa.types.is_boolean(kind):
            return "bool"
        if pa.types.is_integer(kind):
            return "int"
        if pa.types.is_float64(kind):
            return "double"
        if pa.types.is_float32(kind):
            return "float"
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return "string"
        if pa.types.is_date32(kind):
            return "date"
        if pa.types.is_timestamp(kind) and kind.tz is None:
            return "timestamp"
        return None  # decimal, float32, time, zoned timestamps, binary, nested
    if _is_double_cast(node) and _kind(node.this, types) in ("int", "double", "intlit", "floatlit"):
        return "double"
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        if node.to.this == _T.DATE:
            return "date"
        if node.to.this in (_T.TIMESTAMP, _T.TIMESTAMPNTZ, _T.DATETIME):
            return "timestamp"
        return None
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        a, b = _kind(node.this, types), _kind(node.expression, types)
        # integer / integer is a double in SQL but an integer in Lance
        if not isinstance(node, exp.Div) and {a, b} <= {"int", "intlit"} and "int" in (a, b):
            return "int"
        if {a, b} <= {"double", "int", "intlit", "floatlit"} and "double" in (a, b):
            return "double"
        return None
    if isinstance(node, (exp.Lower, exp.Upper)):
        return "string" if _kind(node.this, types) == "string" else None
    if isinstance(node, exp.DPipe):
        both = {_kind(node.this, types), _kind(node.expression, types)}
        return "string" if both <= {"string", "strlit"} else None
    return None


def _comparable(a: exp.Expression, b: exp.Expression, types: dict[str, pa.DataType]) -> bool:
    ka, kb = _kind(a, types), _kind(b, types)
    if ka is None or kb is None:
        return False
    if "null" in (ka, kb):
        return True
    pair = {ka, kb}
    if pair == {"float", "intlit"}:  # an integer a float32 holds exactly
        number = b if ka == "float" else a
        while isinstance(number, (exp.Neg, exp.Paren)):
            number = number.this
        return abs(int(number.name)) <= 2**24
    if pair == {"int", "intlit"}:
        column, literal_node = (a, b) if ka == "int" else (b, a)
        return _int_in_range(column, literal_node, types)
    families = (
        {"int"},
        {"double", "int", "intlit", "floatlit"},
        {"string", "strlit"},
        {"bool"},
        {"date"},
        {"timestamp"},
    )
    if not any(pair <= family for family in families):
        return False
    # a double column's family also holds ints and literals: one side must be a double
    return "double" in pair or len(pair) == 1 or pair == {"string", "strlit"}


def _int_in_range(column: exp.Expression, value: exp.Expression, types: dict[str, pa.DataType]) -> bool:
    """An integer literal compared with an integer column fits the column's type."""
    negative = isinstance(value, exp.Neg)
    while isinstance(value, (exp.Neg, exp.Paren)):
        value = value.this
    number = int(value.name) * (-1 if negative else 1)
    kind = types.get(column.name) if isinstance(column, exp.Column) else pa.int64()
    if kind is None:
        return False
    if pa.types.is_unsigned_integer(kind):
        return 0 <= number < 2 ** (kind.bit_width)
    bound = _INT_RANGES.get(kind, 2**63)
    return -bound <= number < bound


#: Expression shapes a table function takes as a predicate (rendered), not a value.
PREDICATE_SHAPES = (exp.Predicate, exp.Connector, exp.Not, exp.Paren, exp.Boolean)


def is_lance_predicate(node: exp.Expression, alias: str) -> bool:
    """Whether ``node`` can run in Lance as a filter on the table called ``alias``.

    >>> import sqlglot
    >>> is_lance_predicate(sqlglot.parse_one("t.label IN (1, 2) AND name LIKE 'a%'"), "t")
    True
    >>> is_lance_predicate(sqlglot.parse_one("my_udf(name) = 'a'"), "t")
    False
    >>> is_lance_predicate(sqlglot.parse_one("o.label = 1"), "t")
    False
    """
    for sub in node.walk():
        if not (_safe(sub) or isinstance(sub, exp.Placeholder)):
            return False
        if isinstance(sub, exp.Column) and (sub.args.get("db") or sub.table not in ("", alias)):
            return False
    return True


def render(node: exp.Expression, value_of: Callable[[exp.Placeholder], Any]) -> str:
    """``node`` as a filter in Lance's SQL, each parameter replaced by its value.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one('t.label = $1 AND NOT "Name" IS NULL', read="duckdb")
    >>> render(tree, lambda p: "x'y")
    "label = 'x''y' AND NOT `Name` IS NULL"
    """
    tables = {c.table for c in node.find_all(exp.Column) if c.table}
    alias = tables.pop() if len(tables) == 1 else ""
    if not is_lance_predicate(node, alias):
        raise ProgrammingError(
            f"the filter {node.sql('duckdb')!r} cannot run inside Lance: use comparisons, "
            "AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE and arithmetic on the table's columns, "
            "or write it as a string in Lance's filter syntax"
        )
    tree = node.copy()
    for placeholder in list(tree.find_all(exp.Placeholder)):
        value = value_of(placeholder)
        replacement = literal(value)
        if replacement is None:
            raise DataError(f"a parameter of type {type(value).__name__} cannot be used in a filter")
        if placeholder is tree:
            tree = replacement
        else:
            placeholder.replace(replacement)
    rendered = to_lance(tree)
    if rendered is None:  # a parameter whose literal Lance's SQL does not share (a date)
        raise DataError(
            f"the filter {node.sql('duckdb')!r} cannot run inside Lance with these parameter "
            "values: bind numbers, strings or booleans, or write the value in the filter"
        )
    return rendered


def lance_filter(text: str) -> str:
    """Filter text as written in SQL, in Lance's filter syntax: a double-quoted name is a
    column in SQL (``"NSFW" = 0``, as the laion card writes it) but a string in Lance, so
    it is written with Lance's backticks; strings, backticked names and the rest of the
    text are left as they are.

    >>> print(lance_filter('''"NSFW" = 0 AND caption = 'say "hi"' ''').strip())
    `NSFW` = 0 AND caption = 'say "hi"'
    >>> lance_filter('"a""b" > 1 AND `c` < 2'), lance_filter("label = 'it''s'")
    ('`a"b` > 1 AND `c` < 2', "label = 'it''s'")
    """
    if '"' not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "'`":  # a string or a backticked name: copied, doubled quotes included
            end = i + 1
            while end < n:
                if text[end] == char:
                    if end + 1 < n and text[end + 1] == char:
                        end += 2
                        continue
                    break
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
        elif char == '"':
            end, name = i + 1, []
            while end < n:
                if text[end] == '"':
                    if end + 1 < n and text[end + 1] == '"':
                        name.append('"')
                        end += 2
                        continue
                    break
                name.append(text[end])
                end += 1
            out.append("`" + "".join(name).replace("`", "``") + "`")
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def quote(name: str) -> str:
    """A column name as Lance's SQL reads it.

    >>> quote("label"), quote("my col")
    ('label', '`my col`')
    """
    return _generate(exp.column(name, quoted=not name.isidentifier() or name.lower() != name))


def columns_of(expression: exp.Expression) -> list[str]:
    """The names of the columns ``expression`` reads, in order of first mention.

    >>> import sqlglot
    >>> columns_of(sqlglot.parse_one("f(a, t.b) + a", read="duckdb"))
    ['a', 'b']
    """
    seen: dict[str, None] = {}
    for column in expression.find_all(exp.Column):
        seen.setdefault(column.name, None)
    return list(seen)
