"""The rewriter: lancesql's SQL into SQL an engine runs, one small rule at a time.

Each rule is a pure function from a sqlglot tree to a sqlglot tree, in a file of its
own, with its before and after SQL as a doctest, as sqlglot's own optimizer rules are.
:data:`RULES` runs in order; later rules may rely on the shapes earlier ones leave.
As :func:`sqlglot.optimizer.optimize` does, :func:`rewrite` takes what the rules need as
arguments (the names of the table functions) and switches that turn rules off.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from sqlglot import exp

from lancesql.rewrite.bind_table_functions import bind_table_functions
from lancesql.rewrite.fetch_first import fetch_first
from lancesql.rewrite.lateral_search import lateral_search
from lancesql.rewrite.order_by_distance import order_by_distance
from lancesql.rewrite.project_table_functions import project_table_functions
from lancesql.rewrite.qualify_tables import qualify_tables
from lancesql.rewrite.time_travel import time_travel

#: A rule: ``rule(tree, **arguments) -> tree``, taking the arguments of :func:`rewrite` it names.
Rule = Callable[..., exp.Expression]


def order_by_distance_recomputed(expression: exp.Expression) -> exp.Expression:
    """:func:`order_by_distance` for DataFusion, which computes distances in ``DOUBLE``:
    the engine computes them over the search's k rows."""
    return order_by_distance(expression, recompute=True)


#: The rules in the order they run.
RULES: tuple[Rule, ...] = (
    fetch_first,
    time_travel,
    lateral_search,
    order_by_distance_recomputed,
    qualify_tables,
    bind_table_functions,
    project_table_functions,
)

def rewrite(
    expression: exp.Expression,
    rules: Sequence[Rule] = RULES,
    *,
    functions: Collection[str],
    switches: Mapping[str, bool] | None = None,
) -> exp.Expression:
    """Run ``rules`` over a copy of ``expression``: all but those ``switches`` (rule
    name -> on) turn off. ``functions`` are the table functions' names.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT * FROM t VERSION AS OF 2")
    >>> rewrite(tree, functions={"lance_scan"}).sql()
    'SELECT * FROM __lancesql_0 AS t'
    """
    arguments: dict[str, Any] = {"functions": functions}
    expression = expression.copy()
    for rule in rules:
        if switches is not None and switches.get(rule.__name__) is False:
            continue
        wanted = _parameters(rule)
        expression = rule(expression, **{k: v for k, v in arguments.items() if k in wanted})
    return expression


@functools.cache
def _parameters(rule: Rule) -> frozenset[str]:
    """The names of ``rule``'s parameters (read once: a statement runs every rule)."""
    return frozenset(inspect.signature(rule).parameters)
