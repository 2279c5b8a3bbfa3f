"""benchmarks/gpu.sh: the GPU check's CPU path runs end to end (issue 17, item 4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("open_clip")
pytest.importorskip("skimage")
if not Path("/usr/share/datasets/fashion-mnist").exists():
    pytest.skip("needs apt-get install dataset-fashion-mnist", allow_module_level=True)


def gpu_sh(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), *args],
        capture_output=True, text=True, env=env, timeout=900, check=False,
    )  # fmt: skip


def test_the_cpu_path_checks_precision_and_measures_every_path() -> None:
    done = gpu_sh("--cpu", "--rows", "64", "--no-write")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "64 real JPEGs" in out
    # embed_image agrees with a plain open_clip loop, row by row
    cosine = float(re.search(r"cosine per row: min ([0-9.]+)", out).group(1))
    assert cosine >= 0.999
    for path in (
        "plain open_clip loop (fp32)",
        "SELECT embed_image(image) (duckdb)",
        "SELECT embed_image(image) (datafusion)",
        "ALTER TABLE ADD COLUMN clip AS (embed_image(image))",
    ):
        row = next(line for line in out.splitlines() if line.startswith(f"| {path} |"))
        assert float(row.split("|")[2].replace(",", "")) > 0


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import torch; assert torch.cuda.is_available()"],
                   capture_output=True, check=False).returncode == 0,
    reason="a CUDA device is present",
)  # fmt: skip
def test_without_a_gpu_it_says_to_use_the_cpu_path() -> None:
    done = gpu_sh("--rows", "64", "--no-write")
    assert done.returncode != 0
    assert "no CUDA device; use --cpu" in done.stderr
