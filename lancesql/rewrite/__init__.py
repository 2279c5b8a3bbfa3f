"""The rewriter: lancesql's SQL into SQL an engine runs, one small rule at a time.

Each rule is a pure function from a sqlglot tree to a sqlglot tree, in a file of its
own, with its before and after SQL as a doctest, as sqlglot's own optimizer rules are.
:data:`RULES` runs in order; later rules may rely on the shapes earlier ones leave.
A rule named in :data:`SWITCHES` runs only while its boolean setting is on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlglot import exp

from lancesql.rewrite.bind_table_functions import bind_table_functions
from lancesql.rewrite.lateral_search import lateral_search
from lancesql.rewrite.order_by_distance import order_by_distance
from lancesql.rewrite.project_table_functions import project_table_functions
from lancesql.rewrite.push_limit import push_limit
from lancesql.rewrite.qualify_tables import qualify_tables
from lancesql.rewrite.time_travel import time_travel

Rule = Callable[[exp.Expression], exp.Expression]

#: The rules in the order they run.
RULES: tuple[Rule, ...] = (
    time_travel,
    lateral_search,
    order_by_distance,
    qualify_tables,
    bind_table_functions,
    project_table_functions,
)

#: Rules a setting turns off: rule -> the name of its boolean setting.
SWITCHES: dict[Rule, str] = {order_by_distance: "rewrite_order_by_distance"}

#: DuckDB's rules: it stops a scan only after reading fragments in parallel, so a plain
#: scan's LIMIT is handed to Lance first (DataFusion's Lance provider takes it natively).
DUCKDB_RULES: tuple[Rule, ...] = (
    time_travel,
    lateral_search,
    order_by_distance,
    qualify_tables,
    push_limit,
    bind_table_functions,
    project_table_functions,
)


def rewrite(
    expression: exp.Expression, rules: Sequence[Rule] = RULES, settings: Any = None
) -> exp.Expression:
    """Run ``rules`` over a copy of ``expression`` (those ``settings`` leave on).

    >>> import sqlglot
    >>> rewrite(sqlglot.parse_one("SELECT * FROM t VERSION AS OF 2")).sql()
    'SELECT * FROM __lancesql_0 AS t'
    """
    expression = expression.copy()
    for rule in rules:
        switch = SWITCHES.get(rule)
        if switch is not None and settings is not None and not settings.get(switch):
            continue
        expression = rule(expression)
    return expression
