"""Rebuild the example ``mnist.lance`` with real CLIP embeddings, computed in SQL.

``examples/mnist.py`` fills ``image_emb`` with a random projection of the pixels; this
replaces it with ``embed_image(image)`` (OpenCLIP ViT-B-32, laion2b_s34b_b79k by default,
or the checkpoint file given), then rebuilds the card's indices.

Run: ``python examples/embed.py ./data [--pretrained /path/to/open_clip_pytorch_model.bin]``
(5,000 images: about 6 minutes on 2 CPU cores, seconds on a GPU).
"""

from __future__ import annotations

import argparse
import os
import sys

import lance

import lancesql
from examples import mnist

# Once ALTER TABLE ... ADD COLUMN ... AS (...) exists, this is one statement:
#   ALTER TABLE mnist ADD COLUMN image_emb AS (embed_image(image))
SQL = "SELECT id, image, label, label_name, embed_image(image) AS image_emb FROM mnist ORDER BY id"


def rebuild(
    root: str | os.PathLike[str],
    pretrained: str | None = None,
    limit: int | None = None,
    indices: bool = True,
) -> lance.LanceDataset:
    """Write ``<root>/mnist.lance`` whose ``image_emb`` is ``embed_image(image)``."""
    mnist.build(root, limit=limit, indices=False)
    with lancesql.connect(root, clip={"pretrained": pretrained} if pretrained else None) as con:
        table = con.execute(SQL).fetch_arrow_table().cast(mnist.SCHEMA)
    uri = os.path.join(os.fspath(root), "mnist.lance")
    ds = lance.write_dataset(table, uri, mode="overwrite", enable_stable_row_ids=True)
    if indices:
        ds.create_scalar_index("label", "BTREE")
        ds.create_scalar_index("label_name", "BITMAP")
        partitions = max(4, min(64, table.num_rows // 400))
        ds.create_index(
            "image_emb", index_type="IVF_PQ", metric="cosine",
            num_partitions=partitions, num_sub_vectors=32, sample_rate=16,
        )  # fmt: skip
    return lance.dataset(uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="data")
    parser.add_argument("--pretrained", help="a local OpenCLIP checkpoint (default: download)")
    parser.add_argument("--limit", type=int, help="embed only the first N digits")
    args = parser.parse_args(argv)
    os.makedirs(args.root, exist_ok=True)
    ds = rebuild(args.root, args.pretrained, args.limit, args.limit is None or args.limit >= 256)
    print(f"wrote {ds.uri}: {ds.count_rows()} rows with CLIP image_emb, version {ds.version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
