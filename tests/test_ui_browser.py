"""`lancesql ui` in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by selenium opens the page the command serves.

Skipped, saying so, only when Chromium or its driver is not installed (.ci/run installs
them with apt where apt exists).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import lance
import pytest

from tests.ui_data import ALL_ROWS, FIRST_ROWS, HOSTILE, make_root

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="Chromium and chromedriver not installed (apt-get install chromium chromium-driver)",
)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_root(tmp_path_factory.mktemp("ui_root"))


def serve(root: Path, *flags: str):
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lancesql", "ui", str(root), "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    url = None
    for _ in range(5):
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", line)
        if found:
            url = found.group(0)
            break
    if url is None:
        proc.kill()
        raise AssertionError(f"lancesql ui printed no URL: {proc.stderr.read() if proc.stderr else ''}")
    return proc, url


@pytest.fixture(scope="module")
def server(root):
    proc, url = serve(root)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="lancesql-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver, predicate, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: predicate(d))


def run(driver, sql: str) -> str:
    """Type ``sql``, press Run, and wait for the result's footer; its row count."""
    from selenium.webdriver.common.by import By

    driver.execute_script("document.getElementById('results').innerHTML = ''")
    box = driver.find_element(By.ID, "sql")
    box.clear()
    box.send_keys(sql)
    driver.find_element(By.ID, "run").click()
    foot = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .foot, #results .error"))
    return foot[0].get_attribute("data-rows") or foot[0].text


def test_query_thumbnails_similar_tag_and_escaping(server, browser, root):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(server)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "a.table-link[data-table='pics']"))
    assert browser.execute_script("return typeof htmx") == "object"  # the vendored file loaded

    # A query: thumbnails that the browser decoded.
    assert run(browser, "SELECT * FROM pics ORDER BY id") == str(ALL_ROWS)
    images = browser.find_elements(By.CSS_SELECTOR, "#results img.ls-thumb")
    assert len(images) == ALL_ROWS
    widths = [browser.execute_script("return arguments[0].naturalWidth", img) for img in images]
    assert all(w > 0 for w in widths) and max(widths) == 128  # the photo, scaled

    # A caption holding HTML shows as text and runs nothing.
    assert HOSTILE in browser.find_element(By.ID, "results").text
    assert browser.execute_script("return window.pwned") is None
    assert not browser.find_elements(By.CSS_SELECTOR, "#results script, #results b")

    # "similar" on row 5 finds row 5 first.
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .card")
    card = next(c for c in cards if re.search(r"\bid\s+5\b", c.text))
    browser.execute_script("document.querySelector('#results .foot').remove()")
    card.find_element(By.CSS_SELECTOR, "button.similar").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .foot"))
    first = browser.find_elements(By.CSS_SELECTOR, "#results .card")[0]
    assert re.search(r"\bid\s+5\b", first.text) and "_distance" in first.text

    # Pick the table (fills the SQL box and the picker), then switch to the tag.
    browser.find_element(By.CSS_SELECTOR, "a.table-link[data-table='pics']").click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#at option[value='t:first']"))
    assert run(browser, "SELECT id, caption FROM pics") == str(ALL_ROWS)
    browser.execute_script("document.querySelector('#results .foot').remove()")
    Select(browser.find_element(By.ID, "at")).select_by_value("t:first")
    foot = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#results .foot"))
    assert foot[0].get_attribute("data-rows") == str(FIRST_ROWS)


def test_write_refused_without_write(server, browser, root):
    from selenium.webdriver.common.by import By

    browser.get(server)
    message = run(browser, "DELETE FROM pics WHERE id = 1")
    assert "read-only" in message and "--write" in message
    assert browser.find_elements(By.CSS_SELECTOR, "#results .refused")
    assert lance.dataset(str(root / "pics.lance")).count_rows() == ALL_ROWS


def test_request_without_token_is_refused(server, browser):
    bare = server.split("?")[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bare, timeout=10)
    assert refused.value.code == 403
    # A fresh browser profile has no cookie: the page itself is refused too.
    browser.delete_all_cookies()
    browser.get(bare)
    assert "403" in browser.page_source and "token" in browser.page_source
