"""DataLoader batches per second: lancesql.torch_dataset against Lance's and LanceDB's loaders.

The same projection (``image_emb, label`` of a 60,000-row ``mnist``: the 5,000 digits
tiled 12 times) is read one epoch at a time, 256 rows a batch, in the training process
(``num_workers=0``, so the figure is the loader's own cost, not the machine's cores):

- ``lancesql.torch_dataset(con, "SELECT image_emb, label FROM mnist")`` with
  ``DataLoader(shuffle=True)``: row ids from one query, then random-access takes;
- ``lance.torch.data.SafeLanceDataset`` (Lance's map-style dataset, ``take`` by offset)
  with ``DataLoader(shuffle=True)``;
- ``lance.torch.data.LanceDataset`` (Lance's iterable dataset): a sequential scan in
  batches, no shuffle: the upper bound for reading these columns;
- LanceDB's ``Permutation`` (``permutation_builder(table).shuffle()``), when lancedb is
  installed (``pip install lancedb==0.40.0``), iterated as LanceDB documents it, and
  as a map-style dataset under ``DataLoader(shuffle=True)``.

Every loader yields the same thing (a dict of a ``[256, 512]`` float32 tensor and a
``[256]`` label tensor), so the figures compare like with like.

Run: ``python benchmarks/bench_loader.py`` (builds the table under /tmp the first time).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import lance
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lancesql
from benchmarks.report import write_section
from examples import mnist

BATCH = 256
COLUMNS = ["image_emb", "label"]
ROOT = Path(
    os.environ.get("LANCESQL_BENCH_ROOT", Path(tempfile.gettempdir()) / "lancesql_bench_loader")
)


def build() -> str:
    uri = ROOT / "mnist.lance"
    if not (uri.exists() and lance.dataset(str(uri)).count_rows() == 60_000):
        ROOT.mkdir(parents=True, exist_ok=True)
        mnist.build(ROOT, repeat=12, indices=False)
    return str(uri)


def epoch(loader: Iterable) -> tuple[int, int]:
    """Batches and rows of one pass, checking each batch's shape."""
    batches = rows = 0
    for batch in loader:
        emb, label = batch["image_emb"], batch["label"]
        assert emb.dtype == torch.float32 and emb.shape[1] == 512 and len(label) == len(emb)
        batches += 1
        rows += len(label)
    return batches, rows


def measure(loaders: dict[str, Callable[[], Iterable]], rounds: int = 5) -> dict[str, float]:
    """Each loader's best batches per second over ``rounds`` epochs, after a warm-up one.

    The loaders take turns, one epoch each a round, so that a busy moment on a shared
    machine slows them all rather than one; the best epoch is the loader's own speed.
    """
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for name, make in loaders.items():
        assert epoch(make())[1] == 60_000, name
    for _ in range(rounds):
        for name, make in loaders.items():
            loader = make()
            start = time.perf_counter()
            batches, _ = epoch(loader)
            rates[name].append(batches / (time.perf_counter() - start))
    return {name: max(values) for name, values in rates.items()}


def lancedb_loaders(root: Path) -> dict[str, Callable[[], Iterable]]:
    try:
        import lancedb
        from lancedb.permutation import Permutation, permutation_builder
    except ImportError:
        return {}
    table = lancedb.connect(str(root)).open_table("mnist")

    def to_batch(batch):  # the same tensors the other loaders give
        emb = batch.column("image_emb").flatten().to_numpy(zero_copy_only=False)
        return {
            "image_emb": torch.from_numpy(emb.reshape(batch.num_rows, 512).copy()),
            "label": torch.from_numpy(batch.column("label").to_numpy().copy()),
        }

    def iterate():
        permutation = permutation_builder(table).shuffle().execute()
        perm = Permutation.from_tables(table, permutation).select_columns(COLUMNS)
        return perm.with_transform(to_batch).iter(BATCH)

    def as_dataset():
        perm = Permutation.identity(table).select_columns(COLUMNS)
        perm = perm.with_transform(lambda b: lancesql.training.batch_to_samples(b, COLUMNS, None))
        return torch.utils.data.DataLoader(perm, batch_size=BATCH, shuffle=True)

    return {
        "LanceDB `Permutation` (shuffled permutation table, `.iter(256)`)": iterate,
        "LanceDB `Permutation` as map-style Dataset, `DataLoader(shuffle=True)`": as_dataset,
    }


def main() -> None:
    uri = build()
    con = lancesql.connect(ROOT)
    sql = "SELECT image_emb, label FROM mnist"

    start = time.perf_counter()
    dataset = lancesql.torch_dataset(con, sql)
    setup_ms = (time.perf_counter() - start) * 1000

    def ours():
        return torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)

    def ours_batched():
        return dataset.loader(batch_size=BATCH, shuffle=True)

    def ours_with_query():
        return torch.utils.data.DataLoader(
            lancesql.torch_dataset(con, sql), batch_size=BATCH, shuffle=True
        )

    from lance.torch.data import LanceDataset, SafeLanceDataset

    class LanceMap(SafeLanceDataset):
        """Lance's map-style dataset, reading only the projection (it reads every column)."""

        def __getitems__(self, indices):
            if self._ds is None:
                self._ds = lance.dataset(self.uri)
            batch = self._ds.take(indices, columns=COLUMNS)
            return lancesql.training.batch_to_samples(batch, COLUMNS, None)

    def lance_safe():
        return torch.utils.data.DataLoader(LanceMap(uri), batch_size=BATCH, shuffle=True)

    def lance_iterable():
        ds = LanceDataset(uri, batch_size=BATCH, columns=COLUMNS)
        return torch.utils.data.DataLoader(ds, batch_size=None)

    loaders: dict[str, Callable[[], Iterable]] = {
        "**lancesql** `torch_dataset` + `DataLoader(shuffle=True)`": ours,
        "lancesql `torch_dataset(...).loader(256, shuffle=True)` (whole-batch reads)": ours_batched,
        "lancesql, running the row-id query each epoch": ours_with_query,
        "Lance `SafeLanceDataset` (take by offset) + `DataLoader(shuffle=True)`": lance_safe,
        "Lance `LanceDataset` (iterable, sequential scan, no shuffle)": lance_iterable,
        **lancedb_loaders(ROOT),
    }
    results = measure(loaders)
    for name, rate in results.items():
        print(f"{rate:8.1f} batches/s  {name}", flush=True)

    per_row = "**lancesql** `torch_dataset` + `DataLoader(shuffle=True)`"
    batched = "lancesql `torch_dataset(...).loader(256, shuffle=True)` (whole-batch reads)"
    # Each loader is compared with the lancesql path of its kind: per-row samples that
    # DataLoader collates, or whole batches handed over as they are read.
    peers = {
        "Lance `SafeLanceDataset` (take by offset) + `DataLoader(shuffle=True)`": per_row,
        "LanceDB `Permutation` as map-style Dataset, `DataLoader(shuffle=True)`": per_row,
        "LanceDB `Permutation` (shuffled permutation table, `.iter(256)`)": batched,
        "Lance `LanceDataset` (iterable, sequential scan, no shuffle)": batched,
        "lancesql, running the row-id query each epoch": per_row,
    }
    lines = [
        f"One epoch of `SELECT image_emb, label FROM mnist` (60,000 rows; 235 batches of {BATCH}; "
        "`num_workers=0`), best of 5 epochs taken in turns "
        "after a warm-up one (2 shared cores: medians wander). "
        "Ratio = the lancesql path of the same kind ÷ the loader (above 1: lancesql is faster).",
        "",
        "| loader | batches/s | rows/s | lancesql ÷ it |",
        "|---|---:|---:|---:|",
    ]
    for name, rate in results.items():
        ratio = "—"
        if name in peers:
            kind = "batched" if peers[name] == batched else "per-row"
            ratio = f"{results[peers[name]] / rate:.2f}× (vs {kind})"
        lines.append(f"| {name} | {rate:.1f} | {rate * BATCH:,.0f} | {ratio} |")
    lines += [
        "",
        f"The row-id query (`torch_dataset(...)` itself, 60,000 row ids): {setup_ms:.0f} ms.",
    ]
    write_section("bench_loader", "Training loader: batches per second", "\n".join(lines))


if __name__ == "__main__":
    main()
