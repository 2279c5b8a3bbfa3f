"""Where the heavy writing statements run: in this process, or on a Ray cluster.

Reads always run here, on the connection's engine. The statements that compute or
rewrite a whole table (backfilled and merged columns, index builds, OPTIMIZE, and
``CREATE TABLE AS`` / ``INSERT ... SELECT`` of a plain Lance scan) go to the
connection's executor:

- ``local`` (the default): this process, through pylance.
- ``ray``: a Ray cluster through lance-ray (``pip install 'lancesql[ray]'``). Workers
  open the table by its URI, each does its share of the fragments and hands back
  what it wrote; the driver commits once, so a statement still makes one version or
  none.

Chosen with ``lancesql.connect(root, executor="ray")`` (start or join a local Ray;
``ray_address`` names another), ``executor="ray://host:10001"`` (Ray Client to a
cluster), ``SET lancesql.executor = 'ray' | 'local'`` or ``LANCESQL_EXECUTOR``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import lance
import pyarrow as pa
from sqlglot import exp

from lancesql.executors.local import LOCAL
from lancesql.executors.ray import RAY_SCALAR, RAY_VECTOR, RayExecutor, ray_scan
from lancesql.settings import declare
from lancesql.writes import table_uri

if TYPE_CHECKING:
    from lancesql.context import StatementContext


def parse_executor(text: str) -> str:
    """``local``, ``ray`` or a Ray Client address ``ray://host:port``.

    >>> parse_executor("Ray"), parse_executor("ray://head:10001")
    ('ray', 'ray://head:10001')
    """
    value = str(text).strip()
    if value.lower() in ("local", "ray"):
        return value.lower()
    if value.lower().startswith("ray://") and len(value) > len("ray://"):
        return value
    raise ValueError(f"expected 'local', 'ray' or 'ray://host:port', got {text!r}")


def _non_negative(cast: type) -> Any:
    def parse(text: str) -> Any:
        value = cast(text)
        if value < 0:
            raise ValueError(f"expected a number >= 0, got {text!r}")
        return value

    return parse


declare(
    "executor",
    "local",
    parse_executor,
    "Where backfills, merges, index builds, OPTIMIZE and CTAS / INSERT of a Lance scan run: "
    "local, ray (start or join a local Ray, or the one ray_address names) or ray://host:port.",
)
declare(
    "ray_address",
    "",
    str,
    "With executor = ray: the cluster to join (host:port of its head, or auto); empty: "
    "RAY_ADDRESS, a Ray already running on this machine, or a new local one.",
)
declare(
    "ray_workers",
    0,
    _non_negative(int),
    "Ray worker processes one statement uses at most; 0: one per CPU the cluster has.",
)
declare(
    "ray_cpus_per_task",
    1.0,
    _non_negative(float),
    "CPUs each Ray worker asks for.",
)
declare(
    "ray_gpus_per_task",
    0.0,
    _non_negative(float),
    "GPUs each Ray worker asks for (e.g. 1 for embed_image on GPU workers; 0.5 shares one).",
)
declare(
    "ray_batch_size",
    1024,
    _non_negative(int),
    "Rows per batch a Ray worker computes and writes at a time.",
)


class Executor(Protocol):
    """What the writing statements hand to an executor.

    Each method commits exactly one new version of the table, or raises a DB-API error
    and commits nothing; the dataset handle passed in ends at the version committed.
    """

    @property
    def name(self) -> str:
        """``local`` or ``ray``."""

    def add_columns(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        columns: Mapping[str, exp.Expression],
        types: Mapping[str, pa.DataType | None],
        lance_sql: Mapping[str, str] | None,
    ) -> None:
        """``ADD COLUMN c AS (expr)``: by Lance's SQL when ``lance_sql`` is given, else
        through the engine batch by batch."""

    def merge(self, ctx: StatementContext, ds: lance.LanceDataset, table: pa.Table, key: str) -> None:
        """``ADD COLUMNS FROM (query) ON key``: ``table`` (unique keys) joined on ``key``."""

    def create_index(
        self,
        ctx: StatementContext,
        ds: lance.LanceDataset,
        column: str,
        kind: str,
        name: str | None,
        options: dict[str, Any],
    ) -> None:
        """``CREATE INDEX``: vector (``kind`` IVF_*) or scalar."""

    def optimize(self, ctx: StatementContext, ds: lance.LanceDataset, options: Mapping[str, Any]) -> Any:
        """``OPTIMIZE``: compact small fragments (``options`` are Lance's compaction
        options), then bring the indices up to date; returns the compaction metrics."""

    def write_scan(
        self,
        ctx: StatementContext,
        query: exp.Expression,
        uri: str,
        mode: str,
        schema: pa.Schema | None,
    ) -> int | None:
        """``CREATE TABLE AS`` (mode create/overwrite) or ``INSERT`` (append, ``schema``:
        the table's) of ``query``; None when this executor leaves it to the engine."""

    def describe(self) -> str:
        """Where statements run, for EXPLAIN."""


def executor_for(ctx: StatementContext) -> Executor:
    """The executor the connection's ``lancesql.executor`` setting names."""
    choice = str(ctx.settings.get("executor"))
    if choice == "local":
        return LOCAL
    return RayExecutor.of(ctx.settings, choice)


#: The statements an executor runs, as EXPLAIN names them.
HEAVY = (
    "ALTER TABLE ... ADD COLUMN ... AS (...)",
    "ALTER TABLE ... ADD COLUMNS FROM (...) ON key",
    "CREATE INDEX",
    "OPTIMIZE",
    "CREATE TABLE ... AS SELECT / INSERT INTO ... SELECT of a plain Lance scan",
)


def explain(ctx: StatementContext, tree: exp.Expression) -> list[tuple[str, str]] | None:
    """``EXPLAIN`` of a writing statement: which executor runs it and what it does
    there, without running it; None for statements no executor takes."""
    executor = executor_for(ctx)
    work = _work(ctx, tree, executor)
    if work is None:
        return None
    runs_on, what = work
    where = executor.describe() if runs_on is executor else LOCAL.describe()
    return [("statement", tree.sql(dialect="duckdb")[:200]), ("executor", where), ("work", what)]


def _work(ctx: StatementContext, tree: exp.Expression, executor: Executor) -> tuple[Executor, str] | None:
    kind = str(tree.args.get("kind", "")).upper()
    remote = executor.name != "local"
    commit = "the driver commits one version"
    if isinstance(tree, exp.Alter) and kind == "TABLE":
        actions = tree.args.get("actions") or []
        merge = any(isinstance(a, exp.ColumnDef) and isinstance(a.this, exp.Anonymous) for a in actions)
        computed = any(
            isinstance(c.args.get("kind"), exp.ComputedColumnConstraint)
            for a in actions
            for c in (a.args.get("constraints") or [])
        )
        fragments = _fragments(ctx, table_uri(ctx, tree.this))
        if merge:
            return executor, (
                f"the query runs here on the engine; its rows are joined on the key to each of "
                f"{fragments} fragments{' by the workers' if remote else ''}; {commit}"
            )
        if computed:
            return executor, (
                f"new column files for each of {fragments} fragments, computed by Lance or, for "
                f"functions only the engine knows, by the engine"
                f"{' on a connection each worker opens' if remote else ''}; {commit}"
            )
        return LOCAL, "a change of the table's metadata, here"
    if isinstance(tree, exp.Create) and kind == "INDEX":
        params = tree.this.args.get("params")
        using = params.args.get("using") if params is not None else None
        index = using.name.upper() if using is not None else "the default kind"
        if remote and using is not None and index not in RAY_VECTOR + RAY_SCALAR:
            return LOCAL, f"lance-ray does not build {index} indices across workers: built here"
        return executor, f"{index} index segments built over the fragments, then {commit}"
    if isinstance(tree, exp.Create) and kind == "TABLE" and isinstance(tree.expression, exp.Query):
        return _copy(ctx, tree.expression, None, executor)
    if isinstance(tree, exp.Insert) and isinstance(tree.expression, exp.Query):
        if isinstance(tree.this, exp.Schema) or tree.args.get("by_name"):
            return LOCAL, "the engine's rows are mapped to the named columns and appended here"
        ds = ctx.catalog.latest(table_uri(ctx, tree.this))
        return _copy(ctx, tree.expression, ds.schema, executor)
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "OPTIMIZE":
        return executor, "compaction tasks over the small fragments, then the indices brought up to date"
    return None


def _copy(
    ctx: StatementContext, query: Any, schema: pa.Schema | None, executor: Executor
) -> tuple[Executor, str]:
    if executor.name != "local" and ray_scan(ctx, query, schema) is not None:
        return executor, (
            "workers read the Lance scan (projection and filter) fragment by fragment and "
            "write new fragments; the driver commits once"
        )
    return LOCAL, (
        "the query runs here (Lance's scanner or the engine) and its rows stream into one "
        "Lance write"
    )


def _fragments(ctx: StatementContext, uri: str) -> int:
    return len(ctx.catalog.latest(uri).get_fragments())
