"""The example dataset has the shape of the public mnist-lance card."""

from __future__ import annotations

import io
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
from PIL import Image


def test_mnist_example_matches_the_card(mnist_root: Path) -> None:
    ds = lance.dataset(mnist_root / "mnist.lance")
    assert ds.schema.names == ["id", "image", "label", "label_name", "image_emb"]
    assert ds.schema.field("id").type == pa.int64()
    assert ds.schema.field("image").type == pa.large_binary()
    assert ds.schema.field("label").type == pa.int32()
    assert ds.schema.field("label_name").type == pa.string()
    assert ds.schema.field("image_emb").type == pa.list_(pa.float32(), 512)
    indices = {i.name: (i.type_url.rsplit(".", 1)[-1], i.field_names) for i in ds.describe_indices()}
    assert indices["label_idx"] == ("BTreeIndexDetails", ["label"])
    assert indices["label_name_idx"] == ("BitmapIndexDetails", ["label_name"])
    assert indices["image_emb_idx"][1] == ["image_emb"]
    assert len(ds.versions()) == 7 and ds.has_stable_row_ids


def test_mnist_example_holds_real_digits(mnist_root: Path) -> None:
    ds = lance.dataset(mnist_root / "mnist.lance")
    row = ds.to_table(limit=20).to_pylist()
    for r in row:
        img = Image.open(io.BytesIO(r["image"]))
        assert img.size == (28, 28)
        assert np.asarray(img).max() > 100  # ink, not a blank
        assert r["label_name"] == str(r["label"])
        assert abs(np.linalg.norm(r["image_emb"]) - 1) < 1e-4
    labels = ds.to_table(columns=["label"])["label"].to_pylist()
    assert sorted(set(labels)) == list(range(10))


def test_the_tour_runs_every_card_section(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "data"
    script = Path(__file__).resolve().parent.parent / "examples" / "tour.py"
    done = subprocess.run(
        [sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for section in ("*Search*", "*Curate*", "*Evolve*", "*Train*", "*Versioning*", "*Materialise a subset*"):
        assert section in out
    assert "epoch 2: loss" in out  # the DataLoader trained
    assert "first-batch  1250" in out.replace("\t", " ")  # read back by tag
    assert (root / "subsets" / "mnist-4-vs-9.lance").is_dir()  # materialised
    assert "label = 9" in out and "ScalarIndexQuery" in out  # EXPLAIN shows the prefilter's index
