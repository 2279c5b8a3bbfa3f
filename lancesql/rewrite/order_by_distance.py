"""Rule: answer ``ORDER BY <distance>(col, q) LIMIT k`` with a vector search."""

from __future__ import annotations

from sqlglot import exp

from lancesql.lance_sql import is_lance_predicate
from lancesql.rewrite.scopes import cte_references

#: Distance functions and the Lance metric that orders rows alike.
METRICS = {
    "array_cosine_distance": "cosine",
    "array_distance": "l2",
    "array_negative_inner_product": "dot",
}


def _lance_to_sql(metric: str, distance: exp.Expression) -> exp.Expression:
    """The SQL function's value from Lance's ``_distance`` (Lance's l2 is squared and its
    dot distance is ``1 - a·b``; cosine is ``1 - cos`` in both)."""
    if metric == "l2":
        return exp.Anonymous(this="sqrt", expressions=[distance])
    if metric == "dot":
        return exp.Paren(this=exp.Sub(this=distance, expression=exp.Literal.number(1)))
    return distance


def order_by_distance(expression: exp.Expression, recompute: bool = False) -> exp.Expression:
    """Rewrite a nearest-neighbour query on one table into a ``vector_search`` call.

    ``SELECT ... FROM t [WHERE p] ORDER BY array_cosine_distance(col, q) LIMIT k`` (also
    ``array_distance``, L2, and ``array_negative_inner_product``, dot) reads only the k
    nearest rows that satisfy ``p``: the WHERE clause becomes the search's prefilter
    (answered by scalar indices), and the distance is Lance's. The WHERE stays in the
    query too, and the search is told it is a WHERE (``as_where``): where Lance would
    read part of it otherwise than SQL (a literal of another type than its column, known
    once the dataset is open), the search returns every row the rest keeps, nearest
    first, and the engine filters and limits them, so the rows are always SQL's. The
    query vector ``q`` must not depend on the row. Anything else (joins, GROUP BY,
    DISTINCT, a WHERE that Lance cannot run, DESC) runs as written.

    Keys after the distance (``ORDER BY d, id``) break ties: the search then also returns
    every row as near as the k-th (``with_ties``), and the engine orders by all the
    keys and keeps k, so the rows are those the query as written gives.

    Whether the vector index fits (it must be built with the same metric) is decided
    when the call is bound, where the dataset is open: ``use_index => 'auto'`` searches
    through the index when its metric matches and exactly otherwise, so the rows are
    always those the query as written would give, and the rule itself stays a pure
    function of the tree. Distances are exact on the exact path and refined (re-ranked
    with exact distances) on the index path.

    The distance is what the engine would give. Lance computes it in float32, as
    DuckDB's ``array_cosine_distance`` of ``FLOAT[n]`` vectors does: there the select
    list and ORDER BY read Lance's ``_distance`` as a ``FLOAT`` (so a query vector bound
    as a list of Python floats still works). DataFusion computes distances in
    ``DOUBLE``; with ``recompute`` the select list and ORDER BY stay as written and the
    engine computes them over the k rows the search returns. An unaliased distance in
    the select list is always the engine's, so that its column keeps the engine's name.

    >>> import sqlglot
    >>> sql = "SELECT id, array_cosine_distance(e, [1]) AS d FROM t WHERE a = 3 ORDER BY d LIMIT 5"
    >>> tree = order_by_distance(sqlglot.parse_one(sql, read="duckdb"))
    >>> call = tree.find(exp.Table).sql("duckdb")
    >>> tree.sql("duckdb").replace(call, "<call>")
    'SELECT id, CAST(t._distance AS REAL) AS d FROM <call> WHERE a = 3 \
ORDER BY CAST(t._distance AS REAL) LIMIT 5'
    >>> call
    "VECTOR_SEARCH('t', 'e', [1], 5, filter => a = 3, metric => 'cosine', use_index => 'auto', \
as_where => TRUE) AS t"
    >>> tree = order_by_distance(sqlglot.parse_one(sql, read="duckdb"), recompute=True)
    >>> tree.sql("duckdb").replace(call, "<call>")
    'SELECT id, ARRAY_COSINE_DISTANCE(e, [1]) AS d FROM <call> WHERE a = 3 ORDER BY d LIMIT 5'
    >>> sql = "SELECT id FROM t ORDER BY array_distance(e, [1, 0]), id DESC LIMIT 2"
    >>> print(order_by_distance(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb", pretty=True))
    SELECT
      id
    FROM VECTOR_SEARCH('t', 'e', [1, 0], 2, metric => 'l2', use_index => 'auto', with_ties => TRUE) AS t
    ORDER BY
      CAST(SQRT(t._distance) AS REAL),
      id DESC
    LIMIT 2
    >>> sql = "SELECT id FROM t AS x JOIN u ON TRUE ORDER BY array_distance(x.e, [1, 0]) LIMIT 5"
    >>> order_by_distance(sqlglot.parse_one(sql, read="duckdb")).sql("duckdb")
    'SELECT id FROM t AS x JOIN u ON TRUE ORDER BY ARRAY_DISTANCE(x.e, [1, 0]) LIMIT 5'
    """
    selects = [s for s in expression.find_all(exp.Select) if s.args.get("order") and s.args.get("limit")]
    if not selects:
        return expression  # no ORDER BY ... LIMIT: the scopes need not be read
    ctes = cte_references(expression)
    for select in selects:
        _rewrite(select, ctes, recompute)
    return expression


def _rewrite(select: exp.Select, ctes: set[int], recompute: bool) -> None:
    source = _source(select, ctes)
    if source is None:
        return
    table, uri, version = source
    # the name qualify_tables would give it: ``x`` for 'dir/x.lance'
    alias = table.alias or table.name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".lance")
    order = select.args.get("order")
    limit = select.args.get("limit")
    if order is None or limit is None:
        return
    ordered, *tie_breakers = order.expressions
    if ordered.args.get("desc"):
        return
    if any(key.find(exp.AggFunc, exp.Window, exp.Subquery) for key in tie_breakers):
        return
    k = limit.expression
    if not (isinstance(k, exp.Placeholder) or (isinstance(k, exp.Literal) and k.is_int)):
        return
    offset = select.args.get("offset")
    if offset is not None:
        if not (isinstance(offset.expression, exp.Literal) and offset.expression.is_int):
            return
        k = exp.Literal.number(int(k.name) + int(offset.expression.name)) if k.is_int else None
        if k is None:
            return
    distance = _distance(select, ordered.this, alias)
    if distance is None:
        return
    metric, column, query = distance
    where = select.args.get("where")
    if where is not None and not is_lance_predicate(where.this, alias):
        return

    kwargs = []
    if where is not None:
        kwargs.append(exp.Kwarg(this=exp.var("filter"), expression=where.this.copy()))
    kwargs.append(exp.Kwarg(this=exp.var("metric"), expression=exp.Literal.string(metric)))
    kwargs.append(exp.Kwarg(this=exp.var("use_index"), expression=exp.Literal.string("auto")))
    if where is not None:
        kwargs.append(exp.Kwarg(this=exp.var("as_where"), expression=exp.true()))
    if version is not None:
        kwargs.append(exp.Kwarg(this=exp.var("version"), expression=version.copy()))
    if tie_breakers:
        # every row as near as the k-th, so the engine breaks the ties among all of them
        kwargs.append(exp.Kwarg(this=exp.var("with_ties"), expression=exp.true()))
    call = exp.Anonymous(
        this="vector_search",
        expressions=[uri.copy(), exp.Literal.string(column), query.copy(), k.copy(), *kwargs],
    )
    lance_distance = exp.column("_distance", table=alias)
    value = exp.cast(_lance_to_sql(metric, lance_distance), exp.DataType.build("FLOAT", dialect="duckdb"))
    for projection in [] if recompute else select.expressions:
        if not isinstance(projection, exp.Alias):
            continue  # unaliased: the engine computes it over the k rows, under its own name
        if _same_distance(projection.this, metric, column, query, alias):
            projection.this.replace(value.copy())
    if not recompute:
        ordered.set("this", value.copy())
    for projection in select.expressions:
        star = projection.this if isinstance(projection, exp.Column) else projection
        if isinstance(star, exp.Star) and not star.args.get("except_"):
            # the search adds _distance; ``*`` still means the table's own columns
            star.set("except_", [exp.column("_distance")])
    table.replace(exp.Table(this=call, alias=exp.TableAlias(this=exp.to_identifier(alias))))


def _source(
    select: exp.Select, ctes: set[int]
) -> tuple[exp.Table, exp.Expression, exp.Expression | None] | None:
    """The one Lance table the select reads: (table, its name or URI, its version)."""
    if select.args.get("joins") or select.args.get("group") or select.args.get("having"):
        return None
    if select.args.get("distinct") or select.args.get("qualify") or select.args.get("laterals"):
        return None
    if any(p.find(exp.AggFunc, exp.Window) for p in select.expressions):
        return None
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None or not isinstance(from_.this, exp.Table):
        return None
    table = from_.this
    if table.args.get("joins") or table.args.get("db") or table.args.get("catalog"):
        return None
    if isinstance(table.this, exp.Identifier):
        if id(table) in ctes:
            return None
        return table, exp.Literal.string(table.name), None
    if isinstance(table.this, exp.Anonymous) and table.this.name.lower() == "lance_scan":
        args = table.this.expressions
        if (
            not args
            or len(args) > 2
            or any(isinstance(a, (exp.Kwarg, exp.PropertyEQ)) for a in args)
        ):
            return None
        return table, args[0], args[1] if len(args) == 2 else None
    return None


def _distance(
    select: exp.Select, key: exp.Expression, alias: str
) -> tuple[str, str, exp.Expression] | None:
    """(metric, column, query vector) when ``key`` is a distance from a column to a constant."""
    if isinstance(key, exp.Column) and not key.table:
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias == key.name:
                key = projection.this
                break
    parsed = _parse_distance(key)
    if parsed is None:
        return None
    metric, a, b = parsed
    for column, query in ((a, b), (b, a)):
        if (
            isinstance(column, exp.Column)
            and column.table in ("", alias)
            and not column.args.get("db")
            and _constant(query)
        ):
            return metric, column.name, query
    return None


def _parse_distance(node: exp.Expression) -> tuple[str, exp.Expression, exp.Expression] | None:
    if (
        isinstance(node, exp.Anonymous)
        and node.name.lower() in METRICS
        and len(node.expressions) == 2
    ):
        return METRICS[node.name.lower()], node.expressions[0], node.expressions[1]
    return None


def _same_distance(
    node: exp.Expression, metric: str, column: str, query: exp.Expression, alias: str
) -> bool:
    parsed = _parse_distance(node)
    if parsed is None or parsed[0] != metric:
        return False
    _, a, b = parsed
    for col, q in ((a, b), (b, a)):
        if (
            isinstance(col, exp.Column)
            and col.name == column
            and col.table in ("", alias)
            and q == query
        ):
            return True
    return False


def _constant(node: exp.Expression) -> bool:
    """Whether ``node`` is the same for every row: no column outside a subquery."""
    for sub in node.walk(prune=lambda n: isinstance(n, exp.Subquery)):
        if isinstance(sub, exp.Column):
            return False
    return not isinstance(node, exp.Star)
