"""A query's table references and which of them are CTEs, resolved by scope as
sqlglot's own rules do."""

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


def table_references(expression: exp.Expression) -> list[exp.Table]:
    """Each table (a name or a table function's call) a query reads in its FROM and
    JOINs, in every scope: subqueries, CTEs, set operations; in the order
    ``find_all`` walks the tree, so that placeholders are numbered as they always
    were. A tree scope cannot read gives all of its ``exp.Table`` nodes.

    >>> import sqlglot
    >>> sql = "WITH c AS (SELECT * FROM t VERSION AS OF 2) SELECT * FROM c WHERE x IN (SELECT y FROM u)"
    >>> sorted(t.name for t in table_references(sqlglot.parse_one(sql, read="duckdb")))
    ['c', 't', 'u']
    """
    every = list(expression.find_all(exp.Table))
    try:
        found = {id(table) for scope in traverse_scope(expression) for table in scope.tables}
    except OptimizeError:
        return every
    return [table for table in every if id(table) in found] if found else every
