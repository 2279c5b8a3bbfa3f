"""JupySQL's ``%sql lancesql:///...`` in a notebook, executed with nbclient on an
ipykernel; and the result view of ``con.sql`` in the same notebook."""

from __future__ import annotations

import os
from pathlib import Path

import lance
import nbformat
from nbclient import NotebookClient

from tests.ui_data import ALL_ROWS, HOSTILE, make_root

REPO = Path(__file__).resolve().parent.parent


def test_jupysql_and_the_html_view_in_a_notebook(tmp_path, monkeypatch):
    root = make_root(tmp_path / "root")
    cells = [
        "from sqlalchemy.dialects import registry\n"
        "registry.register('lancesql', 'lancesql.sqlalchemy', 'LanceSQLDialect')\n"
        "%load_ext sql\n"
        "%config SqlMagic.displaylimit = 50",
        f"%sql lancesql:///{root}",
        "%%sql counts <<\nSELECT count(*) AS n FROM pics WHERE id >= 5",
        "print(counts.DataFrame()['n'][0])",
        "%sql SELECT id, caption FROM pics ORDER BY id LIMIT 3",
        "import lancesql\n"
        f"con = lancesql.connect({str(root)!r})\n"
        "con.sql('SELECT id, image, emb, caption FROM pics ORDER BY id LIMIT 4')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # The kernel (this interpreter's ipykernel) imports this checkout.
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    client = NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [c.outputs for c in nb.cells]
    printed = "".join(o.get("text", "") for o in outputs[3])
    assert printed.strip() == str(ALL_ROWS - 5)
    shown = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs[4])
    assert "digit 1" in shown and "digit 2" in shown
    view = outputs[5][0]["data"]["text/html"]
    assert view.count('<img class="ls-thumb"') == 4 and "&lt;script&gt;" in view and HOSTILE not in view
    assert lance.dataset(str(root / "pics.lance")).count_rows() == ALL_ROWS
