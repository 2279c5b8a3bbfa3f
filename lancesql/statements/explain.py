"""``EXPLAIN [ANALYZE] <query>``: the engine's plan, and what reached Lance.

The engine's plan alone hides the searches: a vector_search's result is computed before
the engine runs and appears there as an in-memory table. So EXPLAIN binds the query as a
run would (the searches run, and each describes the Lance scan it made: dataset and
version, columns read, prefilter, scalar indices used, vector index, metric, nprobes,
refine factor, and whether the exact or the index path ran, with Lance's own verbose
plan), then asks the engine for its plan of the rewritten SQL. A Lance table the engine
scans itself is listed with its version and indices; the projection and filters the
engine pushes into it are in the engine's plan (DataFusion shows Lance's
``LanceRead``/``ScalarIndexExec`` nodes; DuckDB the ``ARROW_SCAN``'s projections and
filters).

The result has two columns, ``source`` and ``plan``: one row for the engine, then one
per Lance read. ``EXPLAIN`` of a writing statement an executor runs (a backfill, an index
build, a copy of a Lance scan) says instead which executor runs it and what it does there
(see :func:`lancesql.executors.explain`), without running it.
"""

from __future__ import annotations

import lance
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from lancesql import fast_path
from lancesql.catalog import TableRef
from lancesql.context import Result, StatementContext
from lancesql.errors import ProgrammingError
from lancesql.executors import explain as explain_write
from lancesql.explain import LanceRead, collecting
from lancesql.parse import DIALECT
from lancesql.query import SHOWN_AS_COPY, bind, evaluate, rewritten_for, to_sql
from lancesql.rewrite.bind_table_functions import META_KEY
from lancesql.statements.base import command_tokens, statement


@statement(exp.Command)
def explain(ctx: StatementContext, tree: exp.Expression) -> Result | None:
    """``EXPLAIN [ANALYZE] <query>``."""
    assert isinstance(tree, exp.Command)
    if str(tree.this).upper() != "EXPLAIN":
        return None
    text = command_tokens(tree)[len("EXPLAIN") :].strip()
    analyze = text.upper().startswith("ANALYZE ")
    if analyze:
        text = text[len("ANALYZE") :].strip()
    try:
        query = sqlglot.parse_one(text, read=DIALECT)
    except ParseError as exc:
        raise ProgrammingError(f"EXPLAIN needs a query: {str(exc).splitlines()[0]}") from None
    if not isinstance(query, exp.Query):
        described = explain_write(ctx, query)  # type: ignore[arg-type]
        if described is not None:
            return Result.of(
                pa.table({"source": [k for k, _ in described], "plan": [v for _, v in described]})
            )
    rewritten = rewritten_for(ctx, query)  # type: ignore[arg-type]
    with collecting() as reads:
        bind(ctx, rewritten)
    scanned = [
        _scanned_by_engine(ctx, t.name, t.meta[META_KEY])
        for t in rewritten.find_all(exp.Table)
        if META_KEY in t.meta and t.meta[META_KEY][0] == "lance_scan"
    ]
    sql, params = to_sql(ctx, rewritten)
    keyword = "EXPLAIN ANALYZE " if analyze else "EXPLAIN "
    plan = ctx.engine.execute(keyword + sql, params).read_all()
    sources = [f"engine ({ctx.connection.engine.name})"]
    plans = [_engine_plan(plan)]
    fast = fast_path.analyse(rewritten)
    if fast is not None and fast.reads:
        plans[0] = (
            "(the query only picks columns of one source: lancesql reads them from the "
            "search result, or with Lance's scanner and the filter below, without running "
            "the engine, when their types allow; otherwise this runs)\n" + plans[0]
        )
    elif fast is not None and fast.groups:
        plans[0] = (
            "(the query groups one source: once the engine has run a grouping of this shape "
            "on the connection (this one or another, at any version), lancesql reads the "
            "columns with Lance's scanner and the filter below and aggregates them with "
            "Arrow, without running the engine, when their types allow; otherwise this "
            "runs)\n" + plans[0]
        )
    for read in [*scanned, *reads]:
        sources.append(f"{read.function}({read.uri} @ version {read.version})")
        plans.append(_describe(read))
    return Result.of(
        pa.table({"source": pa.array(sources, pa.string()), "plan": pa.array(plans, pa.string())})
    )


def _scanned_by_engine(ctx: StatementContext, name: str, call: tuple) -> LanceRead:
    """A Lance table the engine scans (registered under ``name`` by the bind)."""
    _, args, kwargs = call
    values = [evaluate(ctx, a) for a in args]
    uri = ctx.catalog.resolve_uri(values[0])
    version = values[1] if len(values) > 1 else kwargs.get("version")
    if isinstance(version, exp.Expression):
        version = evaluate(ctx, version)
    ds: lance.LanceDataset = ctx.catalog.open(TableRef(uri, version))
    indices = ", ".join(
        f"{d.name} ({d.index_type} on {', '.join(d.field_names)})" for d in ds.describe_indices()
    )
    pushed = {k: evaluate(ctx, v) for k, v in kwargs.items() if k in ("columns", "filter", "limit")}
    if "limit" in pushed:
        # push_limit handed this plain scan's columns, filter and LIMIT to Lance itself
        plan = ds.scanner(
            columns=pushed.get("columns"), filter=pushed.get("filter"), limit=pushed["limit"]
        ).explain_plan(True)
        details = {
            "scan": f"by Lance's scanner (LIMIT {pushed['limit']} pushed), streamed to the engine as {name}",
            "indices": indices or "none",
            "lance plan": "\n" + "\n".join("  " + line for line in plan.splitlines()),
        }
        return LanceRead(
            "lance_scan", str(ds.uri), ds.version, pushed.get("columns") or [], pushed.get("filter"), details
        )
    scan = f"by the engine as {name}: the projection and filters it pushes are in its plan"
    if ctx.registered.get(name) is SHOWN_AS_COPY:
        scan = (
            f"by the engine as {name}, from its own copy of the columns read (made when "
            "statements reading several Lance tables read this version a second time, "
            "so that it plans with column statistics; setting join_cache_bytes)"
        )
    details = {"scan": scan, "indices": indices or "none"}
    return LanceRead("lance_scan", str(ds.uri), ds.version, [], None, details)


def _describe(read: LanceRead) -> str:
    lines = [f"columns: {', '.join(read.columns) if read.columns else '(per the engine plan)'}"]
    if read.filter is not None or read.function != "lance_scan":
        lines.append(f"prefilter: {read.filter if read.filter is not None else 'none'}")
    lines.extend(f"{key}: {value}" for key, value in read.details.items())
    scalar = [line.strip() for line in read.plan.splitlines() if "ScalarIndexQuery" in line]
    if read.function != "lance_scan":
        lines.append(f"scalar indices used: {'; '.join(scalar) if scalar else 'none'}")
    if read.plan:
        lines.append("lance plan:")
        lines.extend("  " + line for line in read.plan.rstrip().splitlines())
    return "\n".join(lines)


def _engine_plan(plan: pa.Table) -> str:
    """DuckDB's (key, value) rows or DataFusion's (plan_type, plan) rows as one text."""
    names = plan.column_names
    if "plan_type" in names and "plan" in names:
        rows = zip(plan.column("plan_type").to_pylist(), plan.column("plan").to_pylist(), strict=True)
        return "\n".join(f"{kind}:\n{text}" for kind, text in rows)
    return "\n".join(str(v) for v in plan.column(names[-1]).to_pylist())
