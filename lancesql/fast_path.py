"""The one fast-path analysis: what a SELECT over one source asks of it, so that Lance can
answer without the engine (the direct read, the grouped count, CTAS's direct scan, the
pushed LIMIT each take the shapes they can answer).

>>> import sqlglot
>>> fast = analyse(sqlglot.parse_one("SELECT a, b AS c FROM t WHERE b = 1 LIMIT 5 OFFSET 2"))
>>> fast.columns, fast.where.sql(), fast.limit, fast.offset, sorted(fast.clauses)
((('a', 'a'), ('b', 'c')), 'b = 1', 5, 2, ['limit', 'offset'])
>>> analyse(sqlglot.parse_one("SELECT label, count(*) FROM t GROUP BY label")).aggregates
(('', 'label'), ('count_all', None))
>>> analyse(sqlglot.parse_one("SELECT a FROM t LIMIT n")) is None
True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from lancesql.lance_sql import is_lance_predicate
from lancesql.rewrite.bind_table_functions import META_KEY

#: Every clause of a SELECT beyond its projections, FROM and WHERE, by sqlglot's arg name.
CLAUSES = (
    "group",
    "limit",
    "offset",
    "having",
    "order",
    "distinct",
    "joins",
    "laterals",
    "qualify",
    "with_",
    "with",
    "windows",
    "pivots",
    "into",
    "sample",
    "prewhere",
)

#: SQL aggregate -> Arrow's hash aggregate.
AGGREGATES: dict[type[exp.Expression], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "mean",
    exp.Min: "min",
    exp.Max: "max",
}

#: An output column of a grouping: a grouping column (function ``""``), or an aggregate
#: of a column (column ``None`` for ``count(*)``).
Output = tuple[str, "str | None"]


@dataclass(frozen=True)
class FastPath:
    """What a SELECT with one table in its FROM asks of that table."""

    #: The one table of the FROM.
    table: exp.Table
    #: The clauses of :data:`CLAUSES` the select has.
    clauses: frozenset[str]
    #: The projections as written.
    items: tuple[exp.Expression, ...]
    #: Whether the projection is a lone bare ``*``.
    star: bool
    #: (column, output name) per projection, when each is a plain column of the table.
    columns: tuple[tuple[str, str], ...] | None
    #: The names of the columns the select mentions, in order of first mention.
    named: tuple[str, ...]
    #: The WHERE condition, and whether Lance can evaluate it as a filter.
    where: exp.Expression | None
    lance_where: bool
    #: A literal LIMIT and OFFSET (None when absent).
    limit: int | None
    offset: int | None
    #: The grouping columns and outputs, when the select only groups by plain columns
    #: and computes plain aggregates of plain columns (an empty key without GROUP BY).
    keys: tuple[str, ...] | None
    aggregates: tuple[Output, ...] | None

    @property
    def source(self) -> str:
        """What the table is: ``"function"`` (a bound table function's placeholder),
        ``"lance_scan"`` (an unbound ``lance_scan(...)`` call) or ``"name"``."""
        if META_KEY in self.table.meta:
            return "function"
        if isinstance(self.table.this, exp.Anonymous) and str(self.table.this.this).lower() == "lance_scan":
            return "lance_scan"
        return "name" if isinstance(self.table.this, exp.Identifier) else ""

    @functools.cached_property
    def written(self) -> tuple[Any, ...]:
        """What an engine names the outputs by, worked out once per prepared statement:
        each projection's alias and whether it is quoted (DataFusion lower-cases a bare
        one), or the projection's SQL text when it has none; and the table's name and
        alias (an unnamed output may be qualified with it)."""
        names: list[Any] = []
        for item in self.items:
            alias = item.args.get("alias") if isinstance(item, exp.Alias) else None
            if isinstance(alias, exp.Identifier) and alias.name:
                names.append((alias.name, alias.quoted))
            else:
                names.append(item.sql())
        alias = self.table.args.get("alias")
        identifier = alias.this if isinstance(alias, exp.TableAlias) else None
        table_alias = (identifier.name, identifier.quoted) if isinstance(identifier, exp.Identifier) else None
        return tuple(names), self.table.name, table_alias

    def alone(self, accepts: frozenset[str] | set[str] | tuple[str, ...] = ()) -> bool:
        """Whether the select has no clause beyond those a path ``accepts``."""
        return self.clauses <= set(accepts)

    @property
    def reads(self) -> bool:
        """A plain read of a bound source: columns (or ``*``), WHERE, LIMIT, OFFSET."""
        return (
            self.source == "function"
            and self.alone({"limit", "offset"})
            and (self.star or self.columns is not None)
        )

    @property
    def groups(self) -> bool:
        """A grouping of a bound source by its columns, through a Lance filter."""
        return (
            self.source == "function"
            and self.alone({"group"})
            and self.aggregates is not None
            and self.lance_where
        )


def analyse(tree: exp.Expression) -> FastPath | None:
    """What ``tree`` asks of its one table, or None when it is no SELECT of one table
    with a literal LIMIT and OFFSET."""
    if not isinstance(tree, exp.Select):
        return None
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table) or from_.this.args.get("joins"):
        return None
    limit, offset = _count(tree, "limit"), _count(tree, "offset")
    if limit == _NOT_LITERAL or offset == _NOT_LITERAL:
        return None
    table = from_.this
    alias = table.alias_or_name
    items = tuple(tree.expressions)
    star = len(items) == 1 and isinstance(items[0], exp.Star) and not any(items[0].args.values())
    columns: list[tuple[str, str]] | None = []
    for item in items:
        name = column_name(item.this if isinstance(item, exp.Alias) else item, alias)
        if name is None or columns is None:
            columns = None
            continue
        columns.append((name, item.alias_or_name))
    where = tree.args.get("where")
    condition = where.this if where is not None else None
    keys = _keys(tree, alias)
    named = (c.name for c in tree.find_all(exp.Column) if not isinstance(c.this, exp.Star))
    return FastPath(
        table=table,
        clauses=frozenset(name for name in CLAUSES if tree.args.get(name)),
        items=items,
        star=star,
        columns=None if star or columns is None else tuple(columns),
        named=tuple(dict.fromkeys(named)),
        where=condition,
        lance_where=condition is None or is_lance_predicate(condition, alias),
        limit=limit,
        offset=offset,
        keys=keys,
        aggregates=_aggregates(items, keys, alias) if keys is not None else None,
    )


def column_name(node: exp.Expression, alias: str) -> str | None:
    """The name of ``node`` when it is a plain column of the source aliased ``alias``."""
    if not isinstance(node, exp.Column) or not isinstance(node.this, exp.Identifier):
        return None
    if node.args.get("db") or node.table not in ("", alias):
        return None
    return node.name


#: What :func:`_count` gives for a LIMIT or OFFSET that is no literal count.
_NOT_LITERAL = -1


def _count(select: exp.Select, clause: str) -> int | None:
    """The n of a ``LIMIT n`` or ``OFFSET n`` clause; None without it, :data:`_NOT_LITERAL`
    when n is no literal count."""
    node = select.args.get(clause)
    if node is None:
        return None
    value = node.args.get("expression")
    if isinstance(node, (exp.Limit, exp.Offset)) and isinstance(value, exp.Literal) and value.is_int:
        return int(value.name)
    return _NOT_LITERAL


def _keys(select: exp.Select, alias: str) -> tuple[str, ...] | None:
    """The plain columns of the GROUP BY (none without one), or None for another grouping."""
    group = select.args.get("group")
    if group is None:
        return ()
    if any(group.args.get(a) for a in ("grouping_sets", "cube", "rollup", "totals", "all")):
        return None
    keys = [column_name(node, alias) for node in group.expressions]
    return None if None in keys else tuple(dict.fromkeys(k for k in keys if k is not None))


def _aggregates(
    items: tuple[exp.Expression, ...], keys: tuple[str, ...], alias: str
) -> tuple[Output, ...] | None:
    """The outputs of a select of grouping columns and aggregates of columns (at least one)."""
    outputs: list[Output] = []
    for item in items:
        node = item.this if isinstance(item, exp.Alias) else item
        name = column_name(node, alias)
        if name is not None:
            if name not in keys:
                return None  # not grouped: the engine says so
            outputs.append(("", name))
            continue
        function = AGGREGATES.get(type(node))
        if function is None or node.args.get("expressions"):
            return None
        argument = node.this
        if isinstance(argument, exp.Star) and function == "count":
            outputs.append(("count_all", None))
            continue
        column = column_name(argument, alias)
        if column is None:
            return None
        outputs.append((function, column))
    if not any(function for function, _ in outputs):
        return None  # a DISTINCT in disguise: the engine does it as well
    return tuple(outputs)
