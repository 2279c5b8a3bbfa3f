"""The laion-1m card example: its dataset has the card's schema, and every section runs in SQL."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("skimage")
if not Path("/usr/share/datasets/fashion-mnist").exists():
    pytest.skip("needs apt-get install dataset-fashion-mnist", allow_module_level=True)


def first_row(out: str, header: str) -> list[str]:
    """The cells of the first row printed under the result header that starts with ``header``."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    return lines[at + 1].split()


@pytest.fixture(scope="module")
def laion_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("laion")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "laion.py"), str(root), "--rows", "4000"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done.stdout


def test_the_dataset_has_the_cards_schema_and_real_jpegs(laion_run: tuple[Path, str]) -> None:
    root, _ = laion_run
    ds = lance.dataset(root / "laion.lance", version=5)  # before the Evolve section's columns
    assert ds.schema.names[:5] == ["key", "image", "image_path", "caption", "url"]
    assert ds.schema.field("img_emb").type == pa.list_(pa.float32(), 768)
    assert ds.schema.field("NSFW").type == pa.int64() and ds.schema.field("similarity").type == pa.float64()
    [index] = [i for i in ds.describe_indices() if i.field_names == ["img_emb"]]
    assert "IVF" in index.index_type.upper() or "PQ" in index.type_url.upper()
    assert [v["version"] for v in ds.versions()][:5] == [1, 2, 3, 4, 5]  # four appends, then the index
    rows = ds.to_table(columns=["image", "width", "height", "img_emb", "NSFW", "similarity"]).to_pylist()
    assert len(rows) == 4000
    for r in rows[:50]:
        image = Image.open(io.BytesIO(r["image"]))
        assert image.format == "JPEG" and image.size == (r["width"], r["height"])
        assert abs(np.linalg.norm(r["img_emb"]) - 1) < 1e-3
    widths = np.array([r["width"] for r in rows])
    assert 0.03 < (widths >= 512).mean() < 0.3 and len(set(widths)) > 50  # varied sizes, some large
    assert 0 < np.mean([r["NSFW"] for r in rows]) < 0.1
    assert 0.25 < np.mean([r["similarity"] for r in rows]) < 0.4


def test_every_card_section_runs_in_sql(laion_run: tuple[Path, str]) -> None:
    root, out = laion_run
    for section in ("*Search*", "*Curate*", "*Evolve*", "*Train*", "*Versioning*", "*Materialise a subset*"):
        assert f"==== {section}" in out
    # Search: the query row is its own nearest neighbour, at distance 0
    assert first_row(out, "  key ")[0] == "0"
    # Curate: k rows among the rows the filter keeps, checked against pylance's exact prefiltered search
    ds = lance.dataset(root / "laion.lance", version=5)
    kept = ds.count_rows(filter="NSFW = 0 AND similarity > 0.3 AND width >= 512")
    assert f"prefiltered: {min(500, kept)} rows" in out
    # Evolve: the computed columns and the merged score agree with the data they came from
    evolved = lance.dataset(root / "laion.lance").to_table(
        columns=["key", "width", "height", "aspect_ratio", "is_high_res", "aesthetic_score"]
    )
    scores = dict(zip(*lance.dataset(root / "aesthetic.lance").to_table().to_pydict().values(), strict=True))
    for r in evolved.to_pylist()[:200]:
        assert r["aspect_ratio"] == pytest.approx(r["width"] / r["height"])
        assert r["is_high_res"] == (r["width"] >= 512 and r["height"] >= 512)
        assert r["aesthetic_score"] == scores[r["key"]]
    assert "batch 2: 32 images" in out  # the DataLoader read image bytes and captions
    # Versioning: the anti-join counts the rows appended after version 2
    assert first_row(out, "  added") == [str(4000 - 2000)]
    # Materialise: the subset holds exactly the curated rows
    subset = lance.dataset(root / "subsets" / "laion-curated.lance")
    assert subset.count_rows() == kept
    assert f"ok ({kept} rows)" in out
    # ... the very rows pylance reads through the card's filter: keys, bytes and vectors
    columns = ["key", "image", "caption", "url", "width", "height", "img_emb"]
    want = ds.to_table(columns=columns, filter="`NSFW` = 0 AND similarity > 0.3 AND width >= 512")
    assert subset.to_table(columns=columns).sort_by("key").equals(want.sort_by("key"))
