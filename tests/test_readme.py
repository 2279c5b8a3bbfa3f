"""The README is a test: every ```sql and ```python block runs, in document order, against
a writable copy of the example dataset (the MNIST root), on DuckDB.

- A SQL statement whose comment says ``-- error: ProgrammingError`` must fail with that
  DB-API error; every other statement must run.
- A block preceded by ``<!-- readme-test: skip (reason) -->`` is not run (the reason says
  why and which test covers it instead).
- Python blocks run with ``lancesql`` imported and ``con`` connected to the root, in a
  directory where ``./data`` is the root.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import lancesql

README = Path(__file__).resolve().parent.parent / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((.+?)\)\s*-->")
ERROR = re.compile(r"--\s*error:\s*(\w+)")


def blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """(line, language, code, skip reason) of each sql/python block."""
    found = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = re.match(r"^```(\w+)\s*$", lines[i])
        if match:
            start = i
            i += 1
            body = []
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            before = "\n".join(lines[max(0, start - 2) : start])
            skip = SKIP.search(before)
            if match.group(1) in ("sql", "python"):
                found.append((start + 1, match.group(1), "\n".join(body), skip.group(1) if skip else None))
        i += 1
    return found


def statements(sql: str) -> list[str]:
    """A SQL block's statements: each ends with a line whose code ends in ``;``."""
    out, current = [], []
    for line in sql.splitlines():
        current.append(line)
        code = line.split("--", 1)[0].rstrip()
        if code.endswith(";"):
            out.append("\n".join(current).strip())
            current = []
    if "\n".join(current).strip():
        out.append("\n".join(current).strip())
    return out


def test_the_readme_blocks_are_found() -> None:
    found = blocks(README.read_text())
    assert sum(lang == "sql" for _, lang, _, _ in found) >= 6
    assert sum(lang == "python" for _, lang, _, _ in found) >= 3
    for _, lang, code, skip in found:
        if skip is None:  # no grammar templates ([OPTIONAL], <placeholder>, ...) outside comments
            bare = re.sub(r"--[^\n]*" if lang == "sql" else r"#[^\n]*", "", code)
            assert not re.search(r"\[[A-Z ]+\]|<\w+>|\.\.\.\s*[;)]", bare), code


def test_every_readme_block_runs(mnist_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    shutil.copytree(mnist_root, data)
    monkeypatch.chdir(tmp_path)
    con = lancesql.connect(data)
    namespace: dict[str, object] = {"lancesql": lancesql, "con": con}
    ran = 0
    for line, lang, code, skip in blocks(README.read_text()):
        if skip is not None:
            continue
        if lang == "python":
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
            ran += 1
            continue
        for statement in statements(code):
            expected = ERROR.search(statement)
            where = f"README.md:{line}: {statement}"
            if expected is None:
                try:
                    con.execute(statement).fetchall() if _returns_rows(statement) else con.execute(statement)
                except lancesql.Error as exc:
                    pytest.fail(f"{where}\nfailed: {exc}")
            else:
                error = getattr(lancesql, expected.group(1))
                with pytest.raises(error):
                    con.execute(statement)
                    pytest.fail(f"{where}\nran, but the README says it fails with {expected.group(1)}")
            ran += 1
    assert ran >= 50
    con.close()


def _returns_rows(statement: str) -> bool:
    head = re.sub(r"--[^\n]*", "", statement).strip().upper()
    return head.startswith(("SELECT", "SHOW", "DESCRIBE", "WITH", "FROM"))
