"""The page of `lancesql ui`, through Starlette's test client (the browser test drives
a real Chromium): token, host, read-only, versions, similar, streaming."""

from __future__ import annotations

import re

import lance
import pytest
from starlette.testclient import TestClient

import lancesql
from lancesql.ui.app import at_version, create_app, read_only_refusal
from tests.ui_data import ALL_ROWS, FIRST_ROWS, HOSTILE, make_root

TOKEN = "test-token-123"


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path)


def client(root, write=False, max_rows=200) -> TestClient:
    con = lancesql.connect(root)
    app = create_app(con, TOKEN, write=write, max_rows=max_rows)
    return TestClient(app, base_url="http://127.0.0.1:8765")


def rows_of(page: str) -> int:
    return int(re.search(r'data-rows="(\d+)"', page).group(1))


def test_token_is_required_then_kept_in_a_cookie(root):
    c = client(root)
    assert c.get("/").status_code == 403
    assert c.get("/?token=wrong").status_code == 403
    assert c.post("/query", data={"sql": "SELECT 1"}).status_code == 403
    assert c.get("/static/htmx.min.js").status_code == 403
    page = c.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "lancesql" in page.text
    # The cookie set on the first visit carries the token from then on.
    assert c.get("/tables").status_code == 200
    assert c.get("/static/htmx.min.js").status_code == 200


def test_other_hosts_are_refused(root):
    con = lancesql.connect(root)
    c = TestClient(create_app(con, TOKEN), base_url="http://evil.example:8765")
    assert c.get(f"/?token={TOKEN}").status_code == 400


def test_tables_versions_tags(root):
    c = client(root)
    c.get(f"/?token={TOKEN}")
    assert "pics" in c.get("/tables").text
    details = c.get("/table/pics").text
    assert "first" in details and "emb" in details and "fixed_size_list" in details
    versions = lance.dataset(str(root / "pics.lance")).versions()
    for v in versions:
        assert f"<td>{v['version']}</td>" in details
    picker = c.get("/picker?table=pics").text
    assert 'value="t:first"' in picker and f'value="v:{versions[-1]["version"]}"' in picker


def test_query_streams_rows_escaped_with_thumbnails(root):
    c = client(root, max_rows=5)
    c.get(f"/?token={TOKEN}")
    page = c.post("/query", data={"sql": "SELECT * FROM pics ORDER BY id", "view": "table"}).text
    assert rows_of(page) == ALL_ROWS  # all counted
    assert page.count("<tr>") == 1 + 5  # header and the 5 rows shown
    assert "<script>window.pwned" not in page and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
    assert len(re.findall(r'<img class="ls-thumb" src="data:image/', page)) == 5
    assert page.count('class="similar"') == 5


def test_picker_reruns_at_a_tag_and_a_version(root):
    c = client(root)
    c.get(f"/?token={TOKEN}")
    sql = "SELECT id, caption FROM pics"
    assert rows_of(c.post("/query", data={"sql": sql}).text) == ALL_ROWS
    assert rows_of(c.post("/query", data={"sql": sql, "at": "t:first"}).text) == FIRST_ROWS
    first = lance.dataset(str(root / "pics.lance"), version="first").version
    assert rows_of(c.post("/query", data={"sql": sql, "at": f"v:{first}"}).text) == FIRST_ROWS


def test_similar_finds_the_row_itself_first(root):
    c = client(root)
    c.get(f"/?token={TOKEN}")
    page = c.post("/query", data={"sql": "SELECT id, emb FROM pics WHERE id = 7"}).text
    vals = re.search(r"hx-vals='([^']+)'", page).group(1)
    import html
    import json

    payload = json.loads(html.unescape(vals))
    result = c.post("/similar", data={**payload, "view": "table"}).text
    ids = re.findall(r"<tr><td>.*?</td><td>(\d+)</td>", result)
    assert ids[0] == "7" and len(ids) == 12


def test_writes_are_refused_unless_write(root):
    c = client(root)
    c.get(f"/?token={TOKEN}")
    for sql in ["DROP TABLE pics", "SELECT 1; DELETE FROM pics", "INSERT INTO pics SELECT * FROM pics",
                "CREATE TABLE x AS SELECT 1 AS a", "ALTER TABLE pics CREATE TAG 'x'", "SET lancesql.x = 1"]:
        response = c.post("/query", data={"sql": sql})
        assert response.status_code == 403 and "read-only" in response.text, sql
    assert lance.dataset(str(root / "pics.lance")).count_rows() == ALL_ROWS
    w = client(root, write=True)
    w.get(f"/?token={TOKEN}")
    assert "1 rows changed" in w.post("/query", data={"sql": "DELETE FROM pics WHERE id = 0"}).text
    assert lance.dataset(str(root / "pics.lance")).count_rows() == ALL_ROWS - 1


def test_errors_are_shown_escaped(root):
    c = client(root)
    c.get(f"/?token={TOKEN}")
    response = c.post("/query", data={"sql": "SELECT * FROM \"<b>nope</b>\""})
    assert response.status_code == 400 and "ProgrammingError" in response.text
    assert "<b>nope" not in response.text and "&lt;b&gt;nope" in response.text


def test_read_only_check_and_version_rewrite():
    assert read_only_refusal("EXPLAIN SELECT 1") is None
    assert read_only_refusal("EXPLAIN ANALYZE DELETE FROM t") is not None
    assert read_only_refusal("WITH d AS (SELECT 1) SELECT * FROM d") is None
    assert at_version("SELECT * FROM a JOIN b ON a.k = b.k", "b", "v:2") == (
        "SELECT * FROM a JOIN b AT (VERSION => 2) ON a.k = b.k"
    )
    assert HOSTILE.startswith("<script>")
