"""The laion-1m card side by side: its LanceDB 0.40 code as written against lancesql's SQL.

One dataset of the card's schema (``examples/laion_data.py``: real JPEGs, 768-d
clustered vectors, IVF_PQ with L2, several versions), every section of the card done
both ways, interleaved (each round runs the card, lancesql on DuckDB and lancesql on
DataFusion, in a rotating order), on one machine:

* **Search**: ``tbl.search(q).metric("L2").select([...]).limit(10)`` vs
  ``SELECT ... FROM vector_search('laion', 'img_emb', ?, 10, metric => 'l2')``.
* **Curate**: ``.where('"NSFW" = 0 AND similarity > 0.3 AND width >= 512', prefilter=True)
  ...limit(500)`` vs ``vector_search(..., 500, filter => ..., nprobes => 20)``.
* **Evolve**: ``tbl.add_columns({"aspect_ratio": ..., "is_high_res": ...})`` and
  ``tbl.merge(scores, left_on="key")`` (a score for every row) vs two ``ALTER TABLE``.
* **Train**: ``Permutation.identity(tbl).select_columns(["image", "caption"])`` in a
  shuffled ``DataLoader`` vs ``lancesql.torch_dataset(con, "SELECT image, caption FROM laion")``.
* **Versioning**: ``list_versions()``, ``tags.create``, ``open_table(version=...)`` vs
  ``SHOW VERSIONS``, ``CREATE TAG``, ``AT (TAG => ...)``.
* **Materialise**: ``lancedb.connect(local).create_table("subset", tbl.search().where(...)
  .select([...]).to_batches())`` vs ``CREATE TABLE '<path>' AS SELECT ...``, each in a
  fresh process, at two subset sizes, for time and peak memory (VmHWM).

The card's page could not be fetched from here; its code is written from the calls the
issue quotes, against lancedb 0.40.0's API (checked: ``LanceVectorQueryBuilder.metric``,
``.where(prefilter=)``, ``LanceTable.add_columns/merge/list_versions/tags``,
``lancedb.permutation.Permutation``, ``create_table`` from a RecordBatchReader).

Recall is measured against exact truth computed with numpy over every row. Peak memory
of the in-process sections is the highest RSS above the RSS at the call's start,
sampled every 5 ms.

    python benchmarks/bench_laion.py [--root DIR] [--rows 1000000] [--rounds 3] [--no-write]
        [--sections search,evolve,versioning,train,materialise]

``--sections`` runs some sections only (to time one in a short quiet window); the table
then holds those rows only, so it is printed rather than written to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lance
import numpy as np

import lancesql
from benchmarks.report import write_section
from examples import laion, laion_data

ENGINES = ("duckdb", "datafusion")
CARD_FILTER = '"NSFW" = 0 AND similarity > 0.3 AND width >= 512'
SEARCH_COLUMNS = ["key", "caption", "url"]
CURATE_COLUMNS = ["key", "caption", "url", "width", "height"]
EVOLVED = ["aspect_ratio", "is_high_res", "aesthetic_score"]
BATCH = 32
SECTIONS = ("search", "evolve", "versioning", "train", "materialise")


# ---------------------------------------------------------------- measuring


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Yields a list that holds, afterwards, the peak RSS above the start (bytes)."""
    start, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss() - start)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out = [0]
    try:
        yield out
    finally:
        done.set()
        thread.join()
        out[0] = max(peak[0], rss() - start)


def timed(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    with peak_rss() as peak:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return seconds, peak[0], result


# ---------------------------------------------------------------- truth


def exact_truth(uri: Path, queries: np.ndarray, k: int, curate_k: int) -> tuple[list[set], list[set]]:
    """Exact L2 nearest keys of each query: over every row (top ``k``) and over the rows
    the card's filter keeps (top ``curate_k``), in one streaming pass with numpy."""
    ds = lance.dataset(uri)
    best: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0, np.int64))] * len(queries)
    best_f: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0, np.int64))] * len(queries)
    columns = ["key", "img_emb", "NSFW", "similarity", "width"]
    for batch in ds.to_batches(columns=columns, batch_size=65_536):
        emb = batch.column("img_emb").flatten().to_numpy().reshape(batch.num_rows, -1)
        keys = batch.column("key").to_numpy()
        keep = (
            (batch.column("NSFW").to_numpy() == 0)
            & (batch.column("similarity").to_numpy() > 0.3)
            & (batch.column("width").to_numpy() >= 512)
        )
        d = (emb * emb).sum(1)[None, :] - 2 * queries @ emb.T + (queries * queries).sum(1)[:, None]
        for i in range(len(queries)):
            for store, mask, kk in ((best, slice(None), k), (best_f, keep, curate_k)):
                dist = np.concatenate([store[i][0], d[i][mask]])
                key = np.concatenate([store[i][1], keys[mask]])
                top = np.argsort(dist, kind="stable")[:kk]
                store[i] = (dist[top], key[top])
    return [set(b[1].tolist()) for b in best], [set(b[1].tolist()) for b in best_f]


def recall(found: list[int], truth: set) -> float:
    return len(set(found) & truth) / max(1, len(truth))


# ---------------------------------------------------------------- the card's code (LanceDB 0.40)


class Card:
    """The card's code, as written, against LanceDB 0.40."""

    name = "card (LanceDB 0.40)"

    def __init__(self, root: Path, scores: bool = True):
        import lancedb

        self.lancedb = lancedb
        self.root = root
        self.db = lancedb.connect(str(root))
        self.tbl = self.db.open_table("laion")
        # The card computes its aesthetic scores in memory: a table with a score for every key.
        self.scores = lance.dataset(root / "aesthetic.lance").to_table() if scores else None

    def refresh(self) -> None:
        self.tbl.checkout_latest()

    def search(self, q: np.ndarray) -> list[int]:
        rows = self.tbl.search(q).metric("L2").select(SEARCH_COLUMNS).limit(10).to_list()
        return [r["key"] for r in rows]

    def curate(self, q: np.ndarray) -> list[int]:
        rows = (
            self.tbl.search(q)
            .metric("L2")
            .where(CARD_FILTER, prefilter=True)
            .select(CURATE_COLUMNS)
            .limit(500)
            .to_list()
        )
        return [r["key"] for r in rows]

    def evolve(self) -> None:
        self.tbl.add_columns(
            {
                "aspect_ratio": "CAST(width AS DOUBLE) / height",
                "is_high_res": "width >= 512 AND height >= 512",
            }
        )
        self.tbl.merge(self.scores, left_on="key")

    def train(self, batches: int) -> tuple[float, float]:
        import torch
        from lancedb.permutation import Permutation

        start = time.perf_counter()
        perm = Permutation.identity(self.tbl).select_columns(["image", "caption"])
        loader = torch.utils.data.DataLoader(perm, batch_size=BATCH, shuffle=True)
        setup = time.perf_counter() - start
        return setup, _iterate(loader, batches)

    def versioning(self, tag: str) -> int:
        versions = self.tbl.list_versions()
        version = versions[-1]["version"]
        self.tbl.tags.create(tag, version)
        return self.db.open_table("laion", version=self.tbl.tags.get_version(tag)).count_rows()

    def untag(self, tag: str) -> None:
        with contextlib.suppress(Exception):
            self.tbl.tags.delete(tag)


def _iterate(loader: Any, batches: int) -> float:
    start = time.perf_counter()
    for i, batch in enumerate(loader):
        assert len(batch["image"]) == BATCH and isinstance(batch["image"][0], bytes)
        if i + 1 == batches:
            break
    return batches / (time.perf_counter() - start)


# ---------------------------------------------------------------- lancesql's SQL


class Sql:
    """The same sections in SQL through lancesql (the statements of ``examples/laion.py``)."""

    def __init__(self, root: Path, engine: str, literal: bool = False):
        self.name = f"lancesql SQL ({engine})"
        self.engine = engine
        self.literal = literal
        self.con = lancesql.connect(root, engine=engine)
        self.cur = self.con.cursor()

    def refresh(self) -> None:
        pass  # every statement reads the latest version

    def search(self, q: np.ndarray) -> list[int]:
        self.cur.execute(laion.SEARCH, [q])
        return [r[0] for r in self.cur.fetchall()]

    def curate(self, q: np.ndarray) -> list[int]:
        self.cur.execute(laion.CURATE, [q])
        return [r[0] for r in self.cur.fetchall()]

    def curate_wide(self, q: np.ndarray) -> list[int]:
        self.cur.execute(laion.CURATE_WIDE, [q])
        return [r[0] for r in self.cur.fetchall()]

    def evolve(self) -> None:
        self.cur.execute(laion.EVOLVE_COLUMNS)
        self.cur.execute(laion.EVOLVE_MERGE)

    def train(self, batches: int) -> tuple[float, float]:
        import torch

        start = time.perf_counter()
        dataset = lancesql.torch_dataset(self.con, laion.TRAIN)
        loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
        setup = time.perf_counter() - start
        return setup, _iterate(loader, batches)

    def versioning(self, tag: str) -> int:
        self.cur.execute(laion.VERSIONS)
        version = self.cur.fetchall()[-1][0]
        if self.literal:  # the values written into the SQL text: new text every round
            self.cur.execute(f"ALTER TABLE laion CREATE OR REPLACE TAG '{tag}' AS OF VERSION {version}")
            self.cur.execute(f"SELECT count(*) AS rows FROM laion AT (TAG => '{tag}')")
        else:
            self.cur.execute(laion.TAG, [tag, version])
            self.cur.execute(laion.READ_TAG, [tag])
        return self.cur.fetchone()[0]

    def untag(self, tag: str) -> None:
        with contextlib.suppress(Exception):
            self.cur.execute(f"ALTER TABLE laion DROP TAG '{tag}'")


# ---------------------------------------------------------------- materialise, in fresh processes

CARD_MATERIALISE = """
import lancedb, time
tbl = lancedb.connect({root!r}).open_table("laion")
local = lancedb.connect({target!r})
base = int(open('/proc/self/statm').read().split()[1]) * 4096
start = time.perf_counter()
columns = ["key", "image", "caption", "url", "width", "height", "img_emb"]
reader = tbl.search().where({where!r}).select(columns).to_batches()
n = local.create_table("subset", reader).count_rows()
print(n, time.perf_counter() - start, base)
"""

SQL_MATERIALISE = """
import lancesql, time
con = lancesql.connect({root!r}, engine={engine!r})
cur = con.cursor()
base = int(open('/proc/self/statm').read().split()[1]) * 4096
start = time.perf_counter()
cur.execute({sql!r})
print(cur.rowcount, time.perf_counter() - start, base)
"""


def materialise(code: str) -> tuple[int, float, int, int]:
    """Rows written, seconds, the process's peak RSS (VmHWM) and that peak above the RSS
    it had when the write began (after imports and opening the table), in bytes."""
    script = code + textwrap.dedent("""
        for line in open('/proc/self/status'):
            if line.startswith('VmHWM'):
                print(int(line.split()[1]) * 1024)
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    rows, seconds, base, peak = done.stdout.split()[-4:]
    return int(rows), float(seconds), int(peak), int(peak) - int(base)


# ---------------------------------------------------------------- the run


def ensure_dataset(root: Path, rows: int, rebuild: bool) -> dict[str, Any]:
    info_file = root / "build.json"
    if not rebuild and info_file.exists():
        info = json.loads(info_file.read_text())
        if info.get("rows") == rows and (root / "laion.lance").exists():
            return info
    start = time.perf_counter()
    steps = laion_data.build(root, rows)
    info = {"rows": rows, "seconds": time.perf_counter() - start, "steps": steps}
    info["version"] = lance.dataset(root / "laion.lance").version
    info_file.write_text(json.dumps(info))
    return info


#: Measurements of the short-history Versioning per step and round (their median is the
#: round's): one is a few milliseconds, and a single slow file read decided it.
SHORT_REPEATS = 3


def short_history(root: Path, name: str = "short-history") -> Path:
    """A root holding a shallow clone of the dataset at its latest version: the same rows
    and files, with a history of one version (each round of the benchmark leaves new
    versions in the dataset, and the card's ``list_versions()`` reads every manifest)."""
    short = root / name
    shutil.rmtree(short, ignore_errors=True)
    short.mkdir()
    ds = lance.dataset(root / "laion.lance")
    ds.shallow_clone(short / "laion.lance", ds.version)
    return short


def new_versions(uri: Path) -> None:
    """Two new versions, made as Evolve and its undo make them: a column added, then dropped."""
    lance.dataset(uri).add_columns({"bench_tmp": "CAST(1 AS INT)"})
    lance.dataset(uri).drop_columns(["bench_tmp"])


def reset(root: Path, base: int) -> None:
    """Back to the built dataset: the Evolve columns dropped (a new version, no data rewritten)."""
    ds = lance.dataset(root / "laion.lance")
    present = [c for c in EVOLVED if c in ds.schema.names]
    if present:
        ds.drop_columns(present)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="/tmp/lancesql-bench-laion")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument(
        "--materialise-runs", type=int, default=3, help="fresh processes per side and subset (median)"
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of {', '.join(SECTIONS)} (search includes Curate); all by default",
    )
    ns = parser.parse_args()
    ns.sections = [s.strip() for s in ns.sections.split(",") if s.strip()]
    if unknown := set(ns.sections) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}: choose among {', '.join(SECTIONS)}")
    if set(ns.sections) != set(SECTIONS):
        ns.no_write = True
    root = Path(ns.root)
    info = ensure_dataset(root, ns.rows, ns.rebuild)
    print(f"dataset: {ns.rows:,} rows, built in {info['seconds']:.0f} s {info['steps']}", flush=True)
    uri = root / "laion.lance"
    reset(root, info["version"])

    wanted = set(ns.sections)
    queries, truth, truth_f = np.empty((0, 0)), [], []
    if "search" in wanted:
        rng = np.random.default_rng(1)
        query_keys = sorted(rng.choice(ns.rows, size=ns.queries, replace=False).tolist())
        table = lance.dataset(uri).to_table(
            columns=["img_emb"], filter=f"key IN ({', '.join(map(str, query_keys))})"
        )
        queries = table.column("img_emb").combine_chunks().flatten().to_numpy().reshape(len(query_keys), -1)
        start = time.perf_counter()
        truth, truth_f = exact_truth(uri, queries, 10, 500)
        print(f"exact truth in {time.perf_counter() - start:.1f} s", flush=True)

    sides: list[Any] = [Card(root), *(Sql(root, e) for e in ENGINES)]
    res: dict[str, dict[str, list[float]]] = {s.name: {} for s in sides}
    short: dict[str, Any] = {}
    literal: dict[str, Any] = {}
    short_root = root / "short-history"

    def note(side: Any, key: str, value: float) -> None:
        res[side.name].setdefault(key, []).append(value)

    in_process = wanted - {"materialise"}
    for round_ in range(ns.rounds + 1 if in_process else 0):  # round 0 warms caches up, not counted
        order = sides[round_ % len(sides) :] + sides[: round_ % len(sides)]
        if "versioning" in wanted:
            # each round a short history of its own (a new clone, new handles on it, each
            # used once unmeasured), so that taking several measurements a round does not
            # lengthen the history the card's list_versions() reads
            if short:
                shutil.rmtree(short_root, ignore_errors=True)
            short_root = short_history(root, f"short-history-{round_}")
            short = {
                s.name: s for s in [Card(short_root, scores=False), *(Sql(short_root, e) for e in ENGINES)]
            }
            literal = {s.name: s for s in (Sql(short_root, e, literal=True) for e in ENGINES)}
            for who in [*short.values(), *literal.values()]:
                who.refresh()
                who.versioning("bench-warm")
                who.untag("bench-warm")
        for side in order:
            side.refresh()
            for i, q in enumerate(queries):
                searches = (("search", truth[i]), ("curate", truth_f[i]), ("curate_wide", truth_f[i]))
                for section, truth_i in searches:
                    search = getattr(side, section, None)
                    if search is None:
                        continue
                    sec, mem, keys = timed(lambda q=q, search=search: search(q))
                    if round_:
                        note(side, f"{section} s", sec)
                        note(side, f"{section} mem", mem)
                        note(side, f"{section} recall", recall(keys, truth_i))
                        note(side, f"{section} rows", len(keys))
            if wanted & {"evolve", "versioning"}:
                # Versioning follows Evolve as on the card: it lists the versions Evolve made.
                reset(root, info["version"])
                side.refresh()
                sec, mem, _ = timed(side.evolve)
                reset(root, info["version"])
                if round_ and "evolve" in wanted:
                    note(side, "evolve s", sec)
                    note(side, "evolve mem", mem)
            if "versioning" in wanted:
                tag = f"bench-{round_}"
                # On the dataset, after Evolve; then on a short history (a shallow clone)
                # with two new versions, as Evolve and its undo make.
                steps = [
                    ("versioning", side, uri),
                    ("versioning_short", short[side.name], short_root / "laion.lance"),
                ]
                if side.name in literal:  # the same with the values written into the text
                    steps.append(("versioning_literal", literal[side.name], short_root / "laion.lance"))
                for key, who, where in steps:
                    samples = []
                    for _ in range(1 if key == "versioning" else SHORT_REPEATS):
                        if key != "versioning":
                            new_versions(where)
                        who.refresh()
                        sample = timed(lambda who=who, tag=tag: who.versioning(tag))
                        assert sample[2] == ns.rows, sample[2]
                        who.untag(tag)
                        samples.append(sample)
                    sec = statistics.median(x[0] for x in samples)
                    mem = max(x[1] for x in samples)
                    if round_:
                        note(side, f"{key} s", sec)
                        note(side, f"{key} mem", mem)
                        note(side, f"{key} versions", len(lance.dataset(where).version_refs()))
            if "train" in wanted:
                sec, mem, (setup, rate) = timed(lambda side=side: side.train(ns.batches))
                if round_:
                    note(side, "train setup s", setup)
                    note(side, "train batches/s", rate)
                    note(side, "train mem", mem)
            print(f"round {round_} {side.name} done", flush=True)

    # Materialise: fresh processes, three subsets, card and lancesql alternating.
    subsets = {
        "curated (card filter)": laion.CURATE_WHERE,
        f"key < {ns.rows // 40:,}": f"key < {ns.rows // 40}",
        f"key < {ns.rows // 10:,}": f"key < {ns.rows // 10}",
    }
    mat: dict[tuple[str, str], list[tuple[int, float, int, int]]] = {}
    for run in range(ns.materialise_runs if "materialise" in wanted else 0):
        for label, where in subsets.items():
            sides_order = ("card", *ENGINES)
            shift = run % len(sides_order)
            for side in sides_order[shift:] + sides_order[:shift]:
                target = root / "materialised" / side
                shutil.rmtree(target, ignore_errors=True)
                if side == "card":
                    code = CARD_MATERIALISE.format(root=str(root), target=str(target), where=where)
                else:
                    sql = laion.MATERIALISE.format(target=target / "subset.lance", where=where)
                    code = SQL_MATERIALISE.format(root=str(root), engine=side, sql=sql)
                mat.setdefault((label, side), []).append(materialise(code))
                shutil.rmtree(target, ignore_errors=True)
        print(f"materialise run {run} done", flush=True)

    if short:
        short.clear()
        literal.clear()
        shutil.rmtree(short_root, ignore_errors=True)
    report(ns, info, res, mat, subsets, sides)


def med(values: list[float]) -> float:
    return statistics.median(values)


def report(ns: Any, info: dict, res: dict, mat: dict, subsets: dict, sides: list) -> None:
    card = sides[0].name
    mb = 2**20
    lines = [
        f"Dataset: {ns.rows:,} rows of the card's schema (`examples/laion_data.py`: real JPEGs from "
        "Fashion-MNIST and scikit-image at 64-1,024 px, 768-d clustered vectors, IVF_PQ "
        f"{laion_data.index_params(ns.rows)['num_partitions']} partitions / 96 sub-vectors, L2; 4 appends), "
        f"built in **{info['seconds']:.0f} s** on this machine "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in info['steps'].items())}). "
        f"{ns.rounds} interleaved rounds after a warm-up round; {ns.queries} query rows for Search "
        f"and Curate; Train = {ns.batches} batches of {BATCH} (`image` bytes + `caption`), after the "
        "loader is built. Medians; memory = peak RSS above the start of the call. "
        "The machine was shared with other jobs: absolute times wander, the ratios are the figures.",
        "",
        "| section | side | time | ratio to card | peak memory | recall | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    targets: list[str] = []
    sections = (
        "search",
        "curate",
        "curate_wide",
        "evolve",
        "versioning",
        "versioning_short",
        "versioning_literal",
    )
    #: The card's row each section is compared with.
    baseline = {"curate_wide": "curate", "versioning_literal": "versioning_short"}
    for section in sections:
        if f"{baseline.get(section, section)} s" not in res[card]:
            continue  # a section not run (--sections)
        unit = "s" if section == "evolve" else "ms"
        base = med(res[card][f"{baseline.get(section, section)} s"])
        titles = {
            "curate_wide": "Curate, `nprobes => 20` (widened)",
            "versioning": f"Versioning ({med(res[card].get('versioning versions', [0])):.0f} versions)",
            "versioning_short": "Versioning, short history (shallow clone, "
            f"{med(res[card].get('versioning_short versions', [0])):.0f} versions)",
            "versioning_literal": "Versioning, short history, tag and version written into the SQL text",
        }
        for side in sides:
            r = res[side.name]
            if f"{section} s" not in r:
                continue
            sec = med(r[f"{section} s"])
            ratio = sec / base
            value = f"{sec * 1000:.1f} ms" if unit == "ms" else f"{sec:.2f} s"
            rec = f"{med(r[f'{section} recall']):.3f}" if f"{section} recall" in r else "-"
            if section.startswith("curate"):
                rec += f" ({med(r[section + ' rows']):.0f} rows)"
            target = "-"
            if side.name != card:
                ok = ratio <= 1.2
                target = f"<= 1.2x: {'met' if ok else 'missed'}"
                if section.startswith("curate"):
                    rok = med(r[f"{section} recall"]) >= med(res[card]["curate recall"])
                    target += f"; recall >= card: {'met' if rok else 'missed'}"
                targets.append(f"{section} / {side.name}: {target}")
            title = titles.get(section, section.title())
            lines.append(
                f"| {title} | {side.name} | {value} | {ratio:.2f}x | "
                f"{med(r[f'{section} mem']) / mb:.0f} MB | {rec} | {target} |"
            )
    for side in sides if "train batches/s" in res[card] else ():
        base = med(res[card]["train batches/s"])
        r = res[side.name]
        rate = med(r["train batches/s"])
        target = "-"
        if side.name != card:
            target = f">= 0.9x batches/s: {'met' if rate / base >= 0.9 else 'missed'}"
            targets.append(f"train / {side.name}: {target}")
        lines.append(
            f"| Train | {side.name} | {rate:.1f} batches/s (setup {med(r['train setup s']):.2f} s) | "
            f"{rate / base:.2f}x batches/s | {med(r['train mem']) / mb:.0f} MB | - | {target} |"
        )
    if mat:
        lines += [
            "",
            f"Materialise a subset: each run a fresh process, {ns.materialise_runs} per side and subset "
            "(sides in a rotating order), medians. VmHWM = the process's peak RSS, imports "
            "included (importing lancesql costs more than importing lancedb); 'write peak' = VmHWM above "
            "the RSS at the start of the write, the memory the materialisation itself took.",
            "",
            "| subset | side | rows | time | ratio to card | VmHWM | write peak | write peak / card |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label in subsets:
            _, c_sec, _, c_work = (med([x[i] for x in mat[(label, "card")]]) for i in range(4))
            for side in ("card", *ENGINES):
                n, sec, mem, work = (med([x[i] for x in mat[(label, side)]]) for i in range(4))
                name = card if side == "card" else f"lancesql SQL ({side})"
                lines.append(
                    f"| {label} | {name} | {n:,.0f} | {sec:.2f} s | {sec / c_sec:.2f}x | {mem / mb:.0f} MB | "
                    f"{work / mb:.0f} MB | {work / max(c_work, 1):.2f}x |"
                )
        small, large = list(subsets)[1:]
        for side in ENGINES:
            t_ok = all(
                med([x[1] for x in mat[(label, side)]]) <= 1.2 * med([x[1] for x in mat[(label, "card")]])
                for label in subsets
            )
            m_ok = all(
                med([x[3] for x in mat[(label, side)]]) <= 1.2 * med([x[3] for x in mat[(label, "card")]])
                for label in subsets
            )
            grow = med([x[3] for x in mat[(large, side)]]) / max(1, med([x[3] for x in mat[(small, side)]]))
            targets.append(
                f"materialise / lancesql SQL ({side}): time <= 1.2x: {'met' if t_ok else 'missed'}; "
                f"write peak <= 1.2x card: {'met' if m_ok else 'missed'}; "
                f"write peak at 4x the rows: {grow:.2f}x "
                f"({'flat' if grow <= 1.2 else 'grows'})"
            )
    lines += ["", "Targets (issue 17):", "", *(f"- {t}" for t in targets)]
    body = "\n".join(lines)
    if ns.no_write:
        print(body)
    else:
        write_section("bench_laion", f"The laion-1m card side by side, {ns.rows:,} rows (issue 17)", body)


if __name__ == "__main__":
    main()
