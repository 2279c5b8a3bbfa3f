"""Rule: ``FETCH FIRST n ROWS ONLY | WITH TIES`` in terms both engines run alike."""

from __future__ import annotations

from sqlglot import exp

from lancesql.errors import NotSupportedError, ProgrammingError


def fetch_first(expression: exp.Expression) -> exp.Expression:
    """Write the standard ``FETCH FIRST`` clause as a ``LIMIT``, or, ``WITH TIES``, as a rank.

    ``FETCH FIRST n ROWS ONLY`` is ``LIMIT n``: written so, the later rules (a nearest
    neighbour ``ORDER BY distance``, the limits Lance answers itself) see it. Neither
    engine runs ``WITH TIES`` (DuckDB refuses it; written for it as a ``LIMIT``, the tied
    rows would be lost without a word), so it becomes ``QUALIFY rank() OVER (ORDER BY
    ...) <= offset + n``: every row ranked within the first ``offset + n``, which is the
    rows SQL gives, the ``OFFSET`` then skipping its rows of them. ``WITH TIES`` needs an
    ``ORDER BY`` (the ties are of its keys); over ``DISTINCT`` or a ``QUALIFY`` of the
    query's own, where the rank would be taken before them, it is refused.

    >>> import sqlglot
    >>> sql = "SELECT id FROM t ORDER BY x FETCH FIRST 3 ROWS ONLY"
    >>> fetch_first(sqlglot.parse_one(sql)).sql()
    'SELECT id FROM t ORDER BY x LIMIT 3'
    >>> sql = "SELECT id FROM t ORDER BY x OFFSET 2 ROWS FETCH FIRST 3 ROWS WITH TIES"
    >>> fetch_first(sqlglot.parse_one(sql)).sql()
    'SELECT id FROM t QUALIFY RANK() OVER (ORDER BY x) <= 5 ORDER BY x OFFSET 2'
    """
    for select in list(expression.find_all(exp.Select)):
        fetch = select.args.get("limit")
        if isinstance(fetch, exp.Fetch):
            _rewrite(select, fetch)
    return expression


def _rewrite(select: exp.Select, fetch: exp.Fetch) -> None:
    options = fetch.args.get("limit_options")
    count = fetch.args.get("count") or exp.Literal.number(1)  # FETCH FIRST ROW ONLY
    if options is not None and options.args.get("percent"):
        raise NotSupportedError(
            "FETCH FIRST ... PERCENT is not supported: fetch a number of rows, for instance "
            "LIMIT (SELECT CAST(count(*) * 0.1 AS BIGINT) FROM t)"
        )
    if options is None or not options.args.get("with_ties"):
        select.set("limit", exp.Limit(expression=count))
        return
    order = select.args.get("order")
    if order is None:
        raise ProgrammingError("FETCH ... WITH TIES needs an ORDER BY: the ties are rows equal in its keys")
    if select.args.get("distinct") or select.args.get("qualify"):
        raise NotSupportedError(
            "FETCH ... WITH TIES is not supported with DISTINCT or QUALIFY: put the query in a "
            "subquery and fetch from it"
        )
    offset = select.args.get("offset")
    bound: exp.Expression = count
    if offset is not None:
        skipped = offset.expression
        if all(isinstance(e, exp.Literal) and e.is_int for e in (count, skipped)):
            bound = exp.Literal.number(int(count.name) + int(skipped.name))
        else:
            bound = exp.Add(this=exp.paren(skipped.copy()), expression=exp.paren(count))
    rank = exp.Window(this=exp.Anonymous(this="RANK"), order=order.copy())
    select.set("limit", None)
    select.set("qualify", exp.Qualify(this=exp.LTE(this=rank, expression=bound)))
