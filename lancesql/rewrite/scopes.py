"""Which table names in a query are CTEs, resolved by scope as sqlglot's own rules do."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.scope import traverse_scope


def cte_references(expression: exp.Expression) -> set[int]:
    """The ``id`` of each ``exp.Table`` in ``expression`` that names a CTE visible where it
    stands; every other unqualified name is a table of the root.

    A CTE is visible in the query that defines it and the subqueries inside that query,
    and in the CTEs written after it (a recursive CTE in its own body too): a CTE inside
    a subquery does not hide a Lance table of the same name outside it. A quoted name
    (``'x.lance'``) is a path, never a CTE.

    >>> import sqlglot
    >>> sql = "SELECT * FROM t JOIN (WITH t AS (SELECT 1 AS id) SELECT id FROM t) AS s USING (id)"
    >>> tree = sqlglot.parse_one(sql, read="duckdb")
    >>> refs = cte_references(tree)
    >>> [(t.find_ancestor(exp.Subquery) is not None, id(t) in refs) for t in tree.find_all(exp.Table)]
    [(False, False), (True, True)]
    """
    try:
        scopes = list(traverse_scope(expression))
    except OptimizeError:  # a tree scope cannot read: no name is taken for a CTE
        return set()
    found: set[int] = set()
    for scope in scopes:
        for table in scope.tables:
            if (
                table.name in scope.cte_sources
                and isinstance(table.this, exp.Identifier)
                and not table.this.quoted
                and not table.args.get("db")
            ):
                found.add(id(table))
    return found
