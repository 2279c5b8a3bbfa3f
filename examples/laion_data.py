"""Build ``laion.lance``, shaped like the public laion-1m dataset card, at any size.

The card (``lance-format/laion-1m``) holds about 1,000,000 LAION rows: inline JPEG
bytes, a 768-d CLIP image embedding ``img_emb`` with an IVF_PQ index (L2), captions,
URLs, ``NSFW``, ``similarity``, ``width``/``height`` and a ``key`` join column. Its
images cannot be downloaded here, so this builds a dataset of the same schema from real
images that ship offline:

* Fashion-MNIST (Debian ``dataset-fashion-mnist``) and scikit-image's photos, each
  re-encoded as JPEG at a size of its own (64 to 1,024 px wide, some at 512 px and
  above, aspect ratios 0.5 to 2), into a pool of real JPEGs. Rows reuse pooled bytes
  (LAION has many near-duplicates too), which keeps the build fast: encoding is done
  once per pooled image, not once a row.
* captions from the class names ("a black ankle boot on a white background"),
  ``NSFW`` 0/1 (about 3% ones), ``similarity`` around 0.31 as LAION's CLIP scores are,
  ``LICENSE`` mostly ``?``, URLs, md5 of the bytes, ``status = 'success'``.
* ``img_emb``: 768-d unit vectors clustered by class and by pooled image, plus noise.

It is written in several appends (one version each), then indexed like the card:
IVF_PQ on ``img_emb`` with L2. The tables the card merges and joins with are written
next to it: ``aesthetic`` (a score for every key), ``labels`` (key, label) and
``manifest`` (1% of the keys).

    python examples/laion_data.py ./data --rows 20000
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import itertools
import math
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa

DIM = 768
FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
FASHION_LABELS = Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")
FASHION_CLASSES = (
    "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot",
)  # fmt: skip
PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "coins", "horse", "hubble_deep_field",
    "immunohistochemistry", "moon", "page", "retina", "brick", "grass", "gravel", "colorwheel", "clock",
    "cell",
)  # fmt: skip
COLOURS = ("black", "white", "grey", "red", "blue", "beige", "vintage", "striped", "leather", "cotton")
SCENES = (
    "on a white background", "product photo", "for sale online", "street style", "close-up",
    "flat lay", "catalogue image", "in a shop window", "worn by a model", "stock photo",
)  # fmt: skip

SCHEMA = pa.schema(
    [
        pa.field("key", pa.int64()),
        pa.field("image", pa.large_binary()),
        pa.field("image_path", pa.string()),
        pa.field("caption", pa.string()),
        pa.field("url", pa.string()),
        pa.field("NSFW", pa.int64()),
        pa.field("LICENSE", pa.string()),
        pa.field("similarity", pa.float64()),
        pa.field("width", pa.int64()),
        pa.field("height", pa.int64()),
        pa.field("original_width", pa.int64()),
        pa.field("original_height", pa.int64()),
        pa.field("exif", pa.string()),
        pa.field("md5", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("img_emb", pa.list_(pa.float32(), DIM)),
    ]
)


@dataclass
class Pool:
    """Pre-encoded JPEGs and what each row that reuses one inherits from it."""

    jpegs: list[bytes]
    width: np.ndarray
    height: np.ndarray
    label: np.ndarray  # class index into ``classes``
    md5: list[str]
    classes: tuple[str, ...]
    centre: np.ndarray  # [pool, DIM] unit vectors: where this image's rows cluster


def _fashion(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if not FASHION.exists():
        raise SystemExit(
            f"{FASHION} is missing: apt-get install dataset-fashion-mnist (the real images this builds from)"
        )
    with gzip.open(FASHION) as fh:
        pixels = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_LABELS) as fh:
        labels = np.frombuffer(fh.read(), np.uint8, offset=8)
    pick = rng.choice(len(pixels), size=count, replace=False)
    return pixels[pick], labels[pick].astype(np.int64)


def _photos() -> list[tuple[str, np.ndarray]]:
    import skimage.data

    out = []
    for name in PHOTOS:
        try:
            out.append((name, np.asarray(getattr(skimage.data, name)())))
        except Exception:  # a photo that needs a download (pooch) is skipped
            continue
    return out


def _size(rng: np.random.Generator, large: bool) -> tuple[int, int]:
    """A width and height: LAION-like, mostly small, some at 512 px and above."""
    width = int(rng.integers(512, 1025)) if large else int(np.exp(rng.uniform(np.log(64), np.log(500))))
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    height = max(32, int(width / aspect))
    if large and rng.random() < 0.7:
        height = max(height, 512)
    return width, height


def _jpeg(pixels: np.ndarray, width: int, height: int, quality: int) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.resize((width, height), Image.BILINEAR).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def build_pool(size: int = 1000, large_share: float = 0.10, seed: int = 0) -> Pool:
    """``size`` real JPEGs at varied sizes, ``large_share`` of them at least 512 px wide."""
    rng = np.random.default_rng(seed)
    photos = _photos()
    n_photo = min(len(photos) * 4, size // 10)
    fashion, fashion_labels = _fashion(size - n_photo, rng)
    classes = FASHION_CLASSES + tuple(name.replace("_", " ") for name, _ in photos)
    jpegs, widths, heights, labels = [], [], [], []
    for pixels, label in zip(fashion, fashion_labels, strict=True):
        w, h = _size(rng, rng.random() < large_share)
        jpegs.append(_jpeg(255 - pixels, w, h, quality=int(rng.integers(65, 91))))
        widths.append(w)
        heights.append(h)
        labels.append(int(label))
    for i in range(n_photo):
        idx = i % len(photos)
        w, h = _size(rng, rng.random() < 0.5)
        jpegs.append(_jpeg(photos[idx][1], w, h, quality=int(rng.integers(65, 91))))
        widths.append(w)
        heights.append(h)
        labels.append(len(FASHION_CLASSES) + idx)
    class_centre = _unit(rng.standard_normal((len(classes), DIM)).astype(np.float32))
    own = _unit(rng.standard_normal((len(jpegs), DIM)).astype(np.float32))
    centre = _unit(class_centre[np.asarray(labels)] + 0.6 * own)
    return Pool(
        jpegs=jpegs,
        width=np.asarray(widths, np.int64),
        height=np.asarray(heights, np.int64),
        label=np.asarray(labels, np.int64),
        md5=[hashlib.md5(b).hexdigest() for b in jpegs],
        classes=classes,
        centre=centre,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)


def rows(pool: Pool, start: int, count: int, seed: int) -> tuple[pa.RecordBatch, np.ndarray]:
    """Rows with keys ``start`` to ``start + count`` in the card's schema, and each row's class."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pool.jpegs), size=count)
    keys = np.arange(start, start + count, dtype=np.int64)
    image = pa.array(pool.jpegs, pa.large_binary()).take(pa.array(pick))  # Arrow copies the bytes
    label = pool.label[pick]
    names = np.asarray(pool.classes, dtype=object)[label]
    colour = np.asarray(COLOURS, dtype=object)[rng.integers(0, len(COLOURS), count)]
    scene = np.asarray(SCENES, dtype=object)[rng.integers(0, len(SCENES), count)]
    caption = [f"{c} {n} {s}" for c, n, s in zip(colour, names, scene, strict=True)]
    width, height = pool.width[pick], pool.height[pick]
    scale = rng.uniform(1.0, 2.5, count)
    emb = pool.centre[pick] + rng.standard_normal((count, DIM), dtype=np.float32) * np.float32(0.02)
    emb = _unit(emb).astype(np.float32)
    similarity = np.clip(rng.normal(0.315, 0.03, count), 0.2, 0.45)
    licence = np.where(rng.random(count) < 0.9, "?", "creative-commons")
    md5 = np.asarray(pool.md5, dtype=object)[pick]
    columns = {
        "key": keys,
        "image": image,
        "image_path": [f"{k:09d}.jpg" for k in keys],
        "caption": caption,
        "url": [f"https://images.example.invalid/{k:09d}.jpg" for k in keys],
        "NSFW": (rng.random(count) < 0.03).astype(np.int64),
        "LICENSE": licence,
        "similarity": similarity,
        "width": width,
        "height": height,
        "original_width": (width * scale).astype(np.int64),
        "original_height": (height * scale).astype(np.int64),
        "exif": pa.array(["{}"] * count),
        "md5": md5,
        "status": pa.array(["success"] * count),
        "error_message": pa.nulls(count, pa.string()),
        "img_emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel(), pa.float32()), DIM),
    }
    return pa.RecordBatch.from_arrays(
        [pa.array(columns[f.name], f.type) for f in SCHEMA], schema=SCHEMA
    ), label


def index_params(rows: int) -> dict[str, int]:
    """IVF_PQ parameters for ``rows`` rows: about sqrt(rows) partitions, 96 sub-vectors of 8 dims,
    and a small training sample (``sample_rate`` rows a centroid) so the build stays in minutes."""
    return {
        "num_partitions": max(8, min(1024, round(math.sqrt(rows)))),
        "num_sub_vectors": 96,
        "sample_rate": 16 if rows >= 100_000 else 4,
    }


def build(
    root: str | Path, rows_total: int, appends: int = 4, chunk: int = 50_000, seed: int = 0
) -> dict[str, float]:
    """Write ``laion.lance`` (``appends`` versions of data, then the index) and its side tables
    under ``root``; returns the seconds each step took."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    uri = root / "laion.lance"
    for name in ("laion", "aesthetic", "labels", "manifest"):
        shutil.rmtree(root / f"{name}.lance", ignore_errors=True)
    times: dict[str, float] = {}
    start = time.perf_counter()
    pool = build_pool(seed=seed)
    times["pool"] = time.perf_counter() - start

    bounds = np.linspace(0, rows_total, appends + 1).astype(int)
    all_labels: list[np.ndarray] = []
    start = time.perf_counter()
    for part, (lo, hi) in enumerate(itertools.pairwise(bounds)):

        def batches(lo: int = lo, hi: int = hi, part: int = part) -> Iterator[pa.RecordBatch]:
            for i, first in enumerate(range(lo, hi, chunk)):
                batch, label = rows(pool, first, min(chunk, hi - first), seed=seed * 1000 + part * 100 + i)
                all_labels.append(label)
                yield batch

        lance.write_dataset(
            pa.RecordBatchReader.from_batches(SCHEMA, batches()),
            uri,
            mode="append" if part else "create",
            max_rows_per_file=max(1, min(250_000, rows_total // 4)),
            enable_stable_row_ids=True,
        )
    times["rows"] = time.perf_counter() - start

    start = time.perf_counter()
    ds = lance.dataset(uri)
    ds.create_index("img_emb", index_type="IVF_PQ", metric="l2", **index_params(rows_total))
    times["index"] = time.perf_counter() - start

    start = time.perf_counter()
    keys = np.arange(rows_total, dtype=np.int64)
    rng = np.random.default_rng(seed + 7)
    lance.write_dataset(
        pa.table({"key": keys, "aesthetic_score": np.round(rng.normal(5.0, 1.0, rows_total).clip(1, 10), 3)}),
        root / "aesthetic.lance",
    )
    label = np.concatenate(all_labels)
    lance.write_dataset(
        pa.table(
            {"key": keys, "label": pa.array(np.asarray(pool.classes, dtype=object)[label], pa.string())}
        ),
        root / "labels.lance",
    )
    manifest = np.sort(rng.choice(rows_total, size=max(1, rows_total // 100), replace=False)).astype(np.int64)
    lance.write_dataset(pa.table({"key": manifest}), root / "manifest.lance")
    times["side tables"] = time.perf_counter() - start
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="data")
    parser.add_argument("--rows", type=int, default=1_000_000)
    ns = parser.parse_args(argv)
    start = time.perf_counter()
    times = build(ns.root, ns.rows)
    total = time.perf_counter() - start
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
    print(f"built {ns.rows:,} rows under {ns.root} in {total:.1f} s ({steps})")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
