"""Which clauses a SELECT has beyond its projections, FROM and WHERE: the one list that
every path answering a query without the engine checks (a plain read and a grouped count
in :mod:`lancesql.direct` and :mod:`lancesql.direct_aggregate`, CTAS's direct scan in
:mod:`lancesql.writes`, DuckDB's pushed LIMIT in :mod:`lancesql.engines.push_limit`).

Each path says which of them it can take: a plain read takes LIMIT and OFFSET, a grouped
count takes GROUP BY. Anything else needs the engine.

>>> import sqlglot
>>> sorted(clauses(sqlglot.parse_one("SELECT a FROM t WHERE b = 1 ORDER BY a LIMIT 5")))
['limit', 'order']
>>> answers_alone(sqlglot.parse_one("SELECT a FROM t LIMIT 5"), accepts={"limit", "offset"})
True
"""

from __future__ import annotations

from collections.abc import Collection

from sqlglot import exp

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


def clauses(select: exp.Expression) -> frozenset[str]:
    """The clauses of :data:`CLAUSES` that ``select`` has."""
    return frozenset(name for name in CLAUSES if select.args.get(name))


def answers_alone(tree: exp.Expression, accepts: Collection[str] = ()) -> bool:
    """Whether ``tree`` is a SELECT with no clause beyond those a path ``accepts``."""
    return isinstance(tree, exp.Select) and clauses(tree) <= set(accepts)
