"""A small root of pictures for the notebook-view, page and browser tests: real photos
from scikit-image and MNIST-like digits drawn with Pillow, CLIP-sized vectors, a
caption holding HTML, two versions and a tag on the first."""

from __future__ import annotations

import io
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
from PIL import Image

HOSTILE = "<script>window.pwned=1</script><b>bold?</b>"
FIRST_ROWS = 12
ALL_ROWS = 20
DIM = 32


def _png(rng: np.random.Generator, i: int) -> bytes:
    pixels = (rng.random((28, 28)) * 255).astype(np.uint8)
    pixels[4:24, 10 + i % 8] = 255
    out = io.BytesIO()
    Image.fromarray(pixels, "L").save(out, "PNG")
    return out.getvalue()


def _photo() -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, "JPEG", quality=85)
    return out.getvalue()


def make_root(root: Path) -> Path:
    rng = np.random.default_rng(7)
    images = [_photo()] + [_png(rng, i) for i in range(1, ALL_ROWS)]
    emb = rng.normal(size=(ALL_ROWS, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    captions = [HOSTILE] + [f"digit {i}" for i in range(1, ALL_ROWS)]
    table = pa.table(
        {
            "id": pa.array(range(ALL_ROWS), pa.int64()),
            "image": pa.array(images, pa.large_binary()),
            "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), DIM),
            "caption": captions,
        }
    )
    uri = str(root / "pics.lance")
    ds = lance.write_dataset(table.slice(0, FIRST_ROWS), uri)
    ds.tags.create("first", ds.version)
    lance.write_dataset(table.slice(FIRST_ROWS), uri, mode="append")
    return root
