#!/usr/bin/env bash
# One prepared GPU check for issue 17, run whenever a GPU machine is lent (check its
# status first); under five minutes on an H100-class GPU:
#   1. installs what it needs (lancesql with the clip extra) when the Python it is given
#      cannot import it;
#   2. runs benchmarks/bench_gpu_embed.py: embed_image on CUDA in fp16 against open_clip in
#      fp32 (cosine >= 0.999 per row), and images/s for SELECT embed_image(image) and for
#      ALTER TABLE ... ADD COLUMN ... AS (embed_image(image)) over 10,000 JPEGs, against a
#      plain batched open_clip loop on the same GPU; writes its section of BENCHMARKS.md.
#
#   bash benchmarks/gpu.sh                 # on the GPU machine: 10,000 images
#   bash benchmarks/gpu.sh --cpu --rows 64 --no-write   # the CPU path (CI runs this)
#
# PYTHON names the interpreter (default: python3 on PATH). Weights cannot be downloaded
# here, so ViT-B-32 runs with random weights saved as a local checkpoint: the speed is a
# trained model's speed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c "import lancesql, open_clip, torch, PIL, skimage" 2>/dev/null; then
    echo "gpu.sh: installing lancesql[clip] and scikit-image into $($PYTHON -c 'import sys; print(sys.prefix)')" >&2
    "$PYTHON" -m pip install --quiet -e ".[clip]" scikit-image
fi
if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
    echo "gpu.sh: installing dataset-fashion-mnist (apt)" >&2
    (apt-get install -y -qq dataset-fashion-mnist || sudo apt-get install -y -qq dataset-fashion-mnist) >/dev/null
fi
if [[ " $* " != *" --cpu "* ]]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu.sh: no CUDA device; use --cpu')"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PYTHON" benchmarks/bench_gpu_embed.py "$@"
