"""Rule: note which columns a query reads of each table-function placeholder."""

from __future__ import annotations

from sqlglot import exp

from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.rewrite.scopes import table_references

#: Key under ``Table.meta`` holding the column names the query may read (None: all).
COLUMNS_KEY = "lancesql_columns"


def project_table_functions(expression: exp.Expression) -> exp.Expression:
    """Record under ``meta[COLUMNS_KEY]`` the columns the query may read of each placeholder.

    A lance_scan source is a dataset the engine scans with its projection pushed down,
    but a search's result is computed before the engine runs, so the search must be
    told which columns to fetch (image bytes cost far more than ids). The set is a safe
    superset: every column named through the placeholder's alias or without a table
    name anywhere in the statement (the function keeps those its table has), and None,
    meaning all, when a ``*`` or ``alias.*`` selects from it, the row itself is named or
    DuckDB's ``COLUMNS(...)`` picks columns by pattern.
    The tree is unchanged: only the placeholders' ``meta`` is written.

    >>> import sqlglot
    >>> from lancesql.rewrite.bind_table_functions import bind_table_functions
    >>> sql = (
    ...     "SELECT v.id, label FROM vector_search('t', 'e', [1], 3) AS v "
    ...     "JOIN o USING (key) WHERE o.x > 1"
    ... )
    >>> bound = bind_table_functions(sqlglot.parse_one(sql, read="duckdb"), {"vector_search"})
    >>> project_table_functions(bound).find(exp.Table).meta[COLUMNS_KEY]
    ['id', 'key', 'label']
    >>> sql = "SELECT count(*) FROM (SELECT * FROM vector_search('t', 'e', [1], 3))"
    >>> bound = bind_table_functions(sqlglot.parse_one(sql, read="duckdb"), {"vector_search"})
    >>> project_table_functions(bound).find(exp.Table).meta[COLUMNS_KEY] is None
    True
    """
    if not any(META_KEY in t.meta for t in expression.find_all(exp.Table)):
        return expression  # no placeholder: the scopes need not be read
    for table in table_references(expression):
        if META_KEY in table.meta:
            table.meta[COLUMNS_KEY] = _columns(expression, table)
    return expression


def _columns(root: exp.Expression, table: exp.Table) -> list[str] | None:
    if root.find(exp.Columns) is not None:
        return None  # DuckDB's COLUMNS(...) picks columns by pattern: any may be read
    alias = table.alias_or_name
    select = table.find_ancestor(exp.Select)
    if select is not None:
        for projection in select.expressions:
            if isinstance(projection, exp.Star):
                return None
            if (
                isinstance(projection, exp.Column)
                and isinstance(projection.this, exp.Star)
                and projection.table in ("", alias)
            ):
                return None
        for join in select.args.get("joins") or []:
            if (
                join.args.get("kind", "").upper() == "NATURAL"
                or join.args.get("method", "").upper() == "NATURAL"
            ):
                return None
    others = {t.alias_or_name for t in root.find_all(exp.Table)}
    others |= {s.alias for s in root.find_all(exp.Subquery, exp.CTE) if s.alias}
    others.discard(alias)
    names: set[str] = set()
    for column in root.find_all(exp.Column):
        parts = [p.name for p in column.parts]
        if len(parts) == 1:
            names.add(parts[0])
        elif alias in parts[:-1]:
            # alias.col or alias.col.field: the column after the alias.
            names.add(parts[parts.index(alias) + 1])
        elif parts[0] not in others:
            # a struct field (col.field): the column is the first part.
            names.add(parts[0])
    for join in root.find_all(exp.Join):
        for identifier in join.args.get("using") or []:
            names.add(identifier.name)
    if alias in names:
        return None
    return sorted(names)
