"""Rule: a similarity join, ``LATERAL vector_search(..., a.emb, ...)``, as a join on the
query vector with a table of batched searches."""

from __future__ import annotations

from sqlglot import exp

from lancesql.rewrite.bind_table_functions import call_parts

#: Key under ``Table.meta`` of the lateral search's left-hand query and argument slots.
LATERAL_KEY = "lancesql_lateral"
#: Name of the column of the searches' table holding argument ``i`` of its left row.
ARGUMENT = "__lancesql_arg{}"


def lateral_search(expression: exp.Expression) -> exp.Expression:
    """Rewrite ``FROM <left>, LATERAL vector_search(t, col, <q>, k, ...) AS s`` into a join.

    The arguments that name the left side's columns (the query vector, and a filter or
    k that differs per row) are read by a query of their own over the left side (with
    the WHERE conditions that name only the left side's tables), the distinct ones are
    searched in batches, and the searches' table (each row with the arguments it was
    found for) is joined back on those arguments. ``CROSS JOIN LATERAL`` and
    ``JOIN LATERAL ... ON c`` are the same; ``LEFT JOIN LATERAL`` keeps left rows that
    have no neighbour (a NULL vector has none). The call becomes a plain ``vector_search``
    table whose placeholder carries the left query under ``meta[LATERAL_KEY]``.

    >>> import sqlglot
    >>> sql = "SELECT a.id, s.id FROM t AS a, LATERAL vector_search('t', 'e', a.e, 3) AS s"
    >>> tree = lateral_search(sqlglot.parse_one(sql, read="duckdb"))
    >>> print(tree.sql("duckdb", pretty=True))
    SELECT
      a.id,
      s.id
    FROM t AS a
    JOIN VECTOR_SEARCH('t', 'e', s.__lancesql_arg0, 3) AS s
      ON s.__lancesql_arg0 = a.e
    >>> tree.find(exp.Join).this.meta[LATERAL_KEY]["left"].sql("duckdb")
    'SELECT a.e AS __lancesql_arg0 FROM t AS a'
    """
    for join in list(expression.find_all(exp.Join)):
        lateral = join.this
        if not isinstance(lateral, exp.Lateral) or not isinstance(lateral.this, exp.Func):
            continue
        name, args, kwargs = call_parts(lateral.this)
        if name != "vector_search":
            continue
        select = join.parent
        if not isinstance(select, exp.Select):
            continue
        _rewrite(select, join, lateral, args, kwargs)
    return expression


def _correlated(node: exp.Expression) -> bool:
    """Whether ``node`` names a column outside a subquery (so differs from row to row)."""
    walked = node.walk(prune=lambda n: isinstance(n, exp.Subquery))
    return any(isinstance(n, exp.Column) for n in walked)


def _left_only(condition: exp.Expression, aliases: set[str]) -> bool:
    """Whether ``condition`` names columns of the tables ``aliases`` only."""
    columns = list(condition.find_all(exp.Column))
    return (
        bool(columns)
        and all(c.table in aliases for c in columns)
        and condition.find(exp.Subquery) is None
    )


def _rewrite(
    select: exp.Select,
    join: exp.Join,
    lateral: exp.Lateral,
    args: list[exp.Expression],
    kwargs: dict[str, exp.Expression],
) -> None:
    alias = lateral.alias or "vector_search"
    joins = select.args.get("joins") or []
    before = joins[: joins.index(join)]
    from_ = select.args.get("from_") or select.args.get("from")
    if from_ is None:
        return
    left_aliases = {t.alias_or_name for t in [from_.this, *(j.this for j in before)]}

    slots: list[exp.Expression] = []
    vectors: set[int] = set()

    def slot(node: exp.Expression, vector: bool) -> exp.Expression:
        if not _correlated(node):
            return node
        if vector:
            vectors.add(len(slots))
        slots.append(node)
        return exp.column(ARGUMENT.format(len(slots) - 1), table=alias)

    new_args = [slot(a, i == 2) for i, a in enumerate(args)]
    new_kwargs = [
        exp.Kwarg(this=exp.var(key), expression=slot(value, key == "query"))
        for key, value in kwargs.items()
    ]
    call = exp.Anonymous(this="vector_search", expressions=[*new_args, *new_kwargs])
    table = exp.Table(this=call, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    if slots:
        left = exp.select(
            *[exp.alias_(node.copy(), ARGUMENT.format(i)) for i, node in enumerate(slots)]
        )
        left.set("from_", from_.copy())
        if before:
            left.set("joins", [j.copy() for j in before])
        where = select.args.get("where")
        if where is not None:
            # conditions on the left side alone narrow the rows searched for
            conjuncts: list[exp.Expression] = (
                list(where.this.flatten())  # type: ignore[arg-type]
                if isinstance(where.this, exp.And)
                else [where.this]
            )
            kept = [c.copy() for c in conjuncts if _left_only(c, left_aliases)]
            if kept:
                left.where(exp.and_(*kept), copy=False)
        table.meta[LATERAL_KEY] = {"left": left, "slots": len(slots)}
        conditions: list[exp.Expression] = []
        for i, node in enumerate(slots):
            column = exp.column(ARGUMENT.format(i), table=alias)
            if i in vectors:
                # a NULL vector matches nothing: its row has no neighbours
                conditions.append(exp.EQ(this=column, expression=node.copy()))
            else:
                conditions.append(
                    exp.paren(exp.NullSafeEQ(this=column, expression=exp.paren(node.copy())))
                )
        on = join.args.get("on")
        if on is not None and not (isinstance(on, exp.Boolean) and on.this):
            conditions.append(on.copy())
        new_join = exp.Join(this=table, on=exp.and_(*conditions))
    else:
        new_join = exp.Join(this=table, on=join.args.get("on") or exp.true())
    if join.args.get("side"):
        new_join.set("side", join.args["side"])
    join.replace(new_join)
