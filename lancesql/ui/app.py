"""The web page of ``lancesql ui``: a Starlette app over one lancesql connection.

Every request must carry the token the server printed (``?token=`` once, then a
cookie, as Jupyter does) and name 127.0.0.1 or localhost as its host; anything else
is refused with 403. Without ``--write`` only reading statements run (SELECT, SHOW,
DESCRIBE, EXPLAIN of a read). Results stream: rows are rendered batch by batch as
they come from the cursor, at most ``max_rows`` of them are shown and the rest only
counted, so a large result never sits in the server's memory.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pyarrow as pa
from sqlglot import exp
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

import lancesql
from lancesql import html
from lancesql.parse import DIALECT, parse

HERE = Path(__file__).parent
COOKIE = "lancesql_token"
#: Thumbnails on the page are at most this many pixels a side.
THUMBNAIL = 128
#: Statement kinds that only read.
_READS = (exp.Query, exp.Describe, exp.Show, exp.Summarize)
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Set)


class TokenMiddleware:
    """Refuse any request without the server's token (query, header or cookie)."""

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = (
            request.query_params.get("token")
            or request.headers.get("x-lancesql-token")
            or request.cookies.get(COOKIE)
            or ""
        )
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            response: Response = PlainTextResponse(
                "403 Forbidden: this lancesql ui needs its token; open the URL it printed "
                "when it started (http://127.0.0.1:PORT/?token=...).",
                status_code=403,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def read_only_refusal(sql: str) -> str | None:
    """Why ``sql`` may not run on a read-only page, or None when it only reads.

    >>> read_only_refusal("SELECT * FROM t") is None, read_only_refusal("SHOW VERSIONS FROM t") is None
    (True, True)
    >>> read_only_refusal("SELECT 1; DROP TABLE t")
    'DROP changes data: this page is read-only (start it with lancesql ui --write)'
    """
    for tree in parse(sql).statements:
        if isinstance(tree, exp.Command):
            word = tree.name.upper()
            rest = tree.expression.name if isinstance(tree.expression, exp.Expression) else ""
            if word == "SHOW":
                continue
            analyze = rest.strip().upper().startswith("ANALYZE")
            if word == "EXPLAIN" and not analyze and read_only_refusal(rest) is None:
                continue
            return f"{word} {_refusal_tail()}"
        write = next(iter(tree.find_all(*_WRITES)), None)
        if write is not None or not isinstance(tree, _READS):
            word = type(write or tree).__name__.upper()
            return f"{word} {_refusal_tail()}"
    return None


def _refusal_tail() -> str:
    return "changes data: this page is read-only (start it with lancesql ui --write)"


def at_version(sql: str, table: str, at: str) -> str:
    """``sql`` with each plain reference to ``table`` read at ``at``: ``v:3`` (a
    version), ``t:name`` (a tag) or ``b:name`` (a branch); ``""`` leaves it as is.

    >>> at_version("SELECT count(*) FROM pics WHERE id > 2", "pics", "t:first")
    "SELECT COUNT(*) FROM pics AT (VERSION => 'first') WHERE id > 2"
    """
    if not at or not table:
        return sql
    kind, _, value = at.partition(":")
    out = []
    for tree in parse(sql).statements:
        for node in list(tree.find_all(exp.Table)):
            if node.name != table or node.args.get("when") or node.args.get("version") or node.db:
                continue
            if kind == "b":
                call = exp.Anonymous(
                    this="lance_scan",
                    expressions=[exp.Literal.string(table), exp.Kwarg(this=exp.var("branch"),
                                                                        expression=exp.Literal.string(value))],
                )
                node.replace(exp.Table(this=call, alias=exp.TableAlias(this=exp.to_identifier(
                    node.alias_or_name))))
                continue
            literal = exp.Literal.number(int(value)) if kind == "v" else exp.Literal.string(value)
            node.set("when", exp.HistoricalData(this="AT", kind="VERSION", expression=literal))
        out.append(tree.sql(dialect=DIALECT, normalize_functions=False))
    return "; ".join(out)


def main_table(sql: str, tables: list[str]) -> str | None:
    """The first table of the root that ``sql`` reads (for "similar" and the picker)."""
    try:
        statements = parse(sql).statements
    except lancesql.Error:
        return None
    for tree in statements:
        for node in tree.find_all(exp.Table):
            if node.name in tables and not node.db:
                return node.name
            if isinstance(node.this, exp.Anonymous) and node.this.expressions:
                first = node.this.expressions[0]
                if isinstance(first, exp.Literal) and first.is_string and first.name in tables:
                    return first.name
    return None


class Page:
    """The page's handlers, over one connection."""

    def __init__(self, connection: lancesql.Connection, write: bool, max_rows: int):
        self.connection = connection
        self.write = write
        self.max_rows = max_rows
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True
        )

    def render(self, template: str, **values: Any) -> str:
        return self.templates.get_template(template).render(write=self.write, **values)

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    def tables(self) -> list[str]:
        return sorted(r[0] for r in self.rows("SHOW TABLES"))

    # -- handlers -------------------------------------------------------------------
    def index(self, request: Request) -> Response:
        response = HTMLResponse(
            self.render("page.html", root=self.connection.root, table="", versions=[], tags=[], branches=[])
        )
        token = request.query_params.get("token")
        if token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    def sidebar(self, request: Request) -> Response:
        return HTMLResponse(self.render("tables.html", tables=self.tables()))

    def table(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self.tables():
            return HTMLResponse(f'<div class="error">no table {html.escape(name)}</div>', status_code=404)
        quoted = '"' + name.replace('"', '""') + '"'
        columns = self.rows(f"DESCRIBE {quoted}")
        versions = self.rows(f"SHOW VERSIONS FROM {quoted}")
        tags = self.rows(f"SHOW TAGS FROM {quoted}")
        try:
            branches = self.rows(f"SHOW BRANCHES FROM {quoted}")
        except lancesql.Error:  # a lancesql without branches: leave them out
            branches = None
        return HTMLResponse(
            self.render(
                "table.html",
                name=name,
                quoted=quoted,
                columns=columns,
                versions=versions,
                tags=tags,
                branches=branches,
                branch_names=[b[0] for b in branches or []],
                limit=min(self.max_rows, 100),
            )
        )

    async def query(self, request: Request) -> Response:
        form = await request.form()
        sql = str(form.get("sql") or "").strip()
        at = str(form.get("at") or "")
        view = str(form.get("view") or "auto")
        if not sql:
            return HTMLResponse('<div class="error">type a query first</div>', status_code=400)
        try:
            tables = self.tables()
            table = main_table(sql, tables)
            refusal = None if self.write else read_only_refusal(sql)
            if refusal:
                return HTMLResponse(f'<div class="error refused">{html.escape(refusal)}</div>', 403)
            run = at_version(sql, table, at) if table else sql
        except lancesql.Error as exc:
            return _error(exc)
        return self._stream(run, None, table, at, view)

    async def similar(self, request: Request) -> Response:
        form = await request.form()
        table = str(form.get("table") or "")
        column = str(form.get("column") or "")
        at = str(form.get("at") or "")
        view = str(form.get("view") or "auto")
        try:
            vector = np.frombuffer(base64.b64decode(str(form.get("vector") or "")), dtype=np.float32)
            k = int(str(form.get("k") or 12))
        except (ValueError, TypeError):
            return HTMLResponse('<div class="error">bad vector</div>', status_code=400)
        if table not in self.tables():
            return HTMLResponse(f'<div class="error">no table {html.escape(table)}</div>', status_code=404)
        version = ""
        params: list[Any] = [table, column, vector.tolist(), k]
        if at.startswith(("v:", "t:")):
            version = ", version => ?"
            params.append(int(at[2:]) if at.startswith("v:") else at[2:])
        sql = f"SELECT * FROM vector_search(?, ?, ?, ?{version})"
        return self._stream(sql, params, table, at, view)

    def _stream(self, sql: str, params: list[Any] | None, table: str | None, at: str, view: str) -> Response:
        """Run ``sql`` now (so errors answer 400) and stream its rows as HTML."""
        started = time.perf_counter()
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql, params)
        except lancesql.Error as exc:
            cursor.close()
            return _error(exc)
        if cursor.description is None:
            changed = f", {cursor.rowcount} rows changed" if cursor.rowcount >= 0 else ""
            cursor.close()
            return HTMLResponse(f'<div class="done">OK{changed}</div>')
        reader = cursor.fetch_record_batch()
        return StreamingResponse(
            self._render(cursor, reader, table, at, view, started), media_type="text/html"
        )

    def _render(
        self,
        cursor: lancesql.Cursor,
        reader: pa.RecordBatchReader,
        table: str | None,
        at: str,
        view: str,
        started: float,
    ) -> Iterator[str]:
        schema = reader.schema
        images = [i for i, f in enumerate(schema) if html.is_binary(f.type)]
        vectors = [f.name for f in schema if html.is_vector(f.type)]
        table_columns = set(self._columns(table)) if table else set()
        similar_on = next((v for v in vectors if v in table_columns), None)
        grid = view == "grid" or (view == "auto" and bool(images))
        shown = total = 0
        try:
            yield f'<div class="result {"grid" if grid else "table"}">'
            if not grid:
                yield "<table><thead><tr>" + ("<th></th>" if similar_on else "")
                yield "".join(
                    f'<th>{html.escape(f.name)} <span class="type">{html.escape(html.type_name(f.type))}'
                    "</span></th>"
                    for f in schema
                )
                yield "</tr></thead><tbody>"
            for batch in reader:
                total += batch.num_rows
                if shown >= self.max_rows:
                    continue  # counted, not kept
                part = batch.slice(0, self.max_rows - shown)
                shown += part.num_rows
                yield from self._rows_html(part, grid, images, similar_on, table, at)
            if not grid:
                yield "</tbody></table>"
            yield "</div>"
        except lancesql.Error as exc:
            yield f'<div class="error">{html.escape(_message(exc))}</div>'
        finally:
            cursor.close()
        elapsed = time.perf_counter() - started
        where = f" at {at[2:]}" if at else ""
        yield (
            f'<div class="foot" data-rows="{total}">{html.escape(html.footer(shown, total, elapsed))}'
            f"{html.escape(where)}</div>"
        )

    def _rows_html(
        self,
        part: pa.RecordBatch,
        grid: bool,
        images: list[int],
        similar_on: str | None,
        table: str | None,
        at: str,
    ) -> Iterator[str]:
        thumbs = {i: html.thumbnails(part.column(i).to_pylist(), THUMBNAIL) for i in images}
        columns = [c.to_pylist() for c in part.columns]
        names = part.schema.names
        for r in range(part.num_rows):
            button = ""
            if similar_on is not None and table:
                value = columns[names.index(similar_on)][r]
                if value is not None:
                    payload = {
                        "table": table,
                        "column": similar_on,
                        "vector": base64.b64encode(np.asarray(value, np.float32).tobytes()).decode(),
                    }
                    button = (
                        '<button class="similar" hx-post="/similar" hx-target="#results" '
                        f"hx-include=\"#at, #view\" hx-vals='{html.escape(json.dumps(payload))}'>"
                        "similar</button>"
                    )
            if grid:
                pictures = "".join(
                    html.cell(columns[i][r], thumbs[i][r]) for i in images if columns[i][r] is not None
                )
                fields = "".join(
                    f'<div><span class="name">{html.escape(names[c])}</span> '
                    f"{html.cell(columns[c][r])}</div>"
                    for c in range(len(names))
                    if c not in images and not html.is_vector(part.schema.field(c).type)
                )
                yield f'<div class="card">{pictures}{fields}{button}</div>'
            else:
                cells = "".join(
                    f"<td>{html.cell(col[r], thumbs[c][r] if c in thumbs else None)}</td>"
                    for c, col in enumerate(columns)
                )
                yield f"<tr>{f'<td>{button}</td>' if similar_on else ''}{cells}</tr>"

    def _columns(self, table: str) -> list[str]:
        quoted = '"' + table.replace('"', '""') + '"'
        try:
            return [r[0] for r in self.rows(f"DESCRIBE {quoted}")]
        except lancesql.Error:
            return []

    def picker(self, request: Request) -> Response:
        table = request.query_params.get("table", "")
        if table not in self.tables():
            return HTMLResponse(self.render("picker.html", table="", versions=[], tags=[], branches=[]))
        quoted = '"' + table.replace('"', '""') + '"'
        try:
            branches = [r[0] for r in self.rows(f"SHOW BRANCHES FROM {quoted}")]
        except lancesql.Error:
            branches = []
        return HTMLResponse(
            self.render(
                "picker.html",
                table=table,
                versions=self.rows(f"SHOW VERSIONS FROM {quoted}"),
                tags=self.rows(f"SHOW TAGS FROM {quoted}"),
                branches=branches,
            )
        )


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _error(exc: BaseException) -> Response:
    return HTMLResponse(f'<div class="error"><pre>{html.escape(_message(exc))}</pre></div>', status_code=400)


def create_app(
    connection: lancesql.Connection,
    token: str,
    *,
    write: bool = False,
    max_rows: int = 200,
) -> Starlette:
    """The page's ASGI app over ``connection``, guarded by ``token``."""
    page = Page(connection, write, max_rows)
    routes = [
        Route("/", page.index),
        Route("/tables", page.sidebar),
        Route("/table/{name:path}", page.table),
        Route("/picker", page.picker),
        Route("/query", page.query, methods=["POST"]),
        Route("/similar", page.similar, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"]),
        Middleware(TokenMiddleware, token=token),
    ]
    return Starlette(routes=routes, middleware=middleware)
