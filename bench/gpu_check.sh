#!/usr/bin/env bash
# Issue 3's CUDA checks in one command: the kernel tests marked `gpu` and bench/fgw.py
# (whose CuPy row is the >= 50x bar), for the `device` machine (docs/benchmarks.md).
#
#   bash bench/gpu_check.sh --fetch   # here: wheels the device image lacks -> .gpu-wheels/
#   bash bench/gpu_check.sh           # there (carry .gpu-wheels): install, test, bench
#
# The device image has numpy, scipy, numba, CuPy, torch, pytest and hypothesis but no
# network; POT, kneed and the array-API packages travel as wheels for its Python.
# Outputs go to $OUT (the folder the device tool brings back), else to ./gpu-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=.gpu-wheels
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--fetch" ]]; then
  DEVICE_PY=${DEVICE_PYTHON_VERSION:-3.12}
  mkdir -p "$WHEELS"
  .venv/bin/pip download -q --only-binary=:all: --no-deps -d "$WHEELS" \
    --python-version "$DEVICE_PY" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
    $(grep -hiE '^(pot|kneed|array-api-compat|array-api-strict)==' requirements/*.txt)
  ls -l "$WHEELS"
  exit 0
fi

OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps "$WHEELS"/*.whl
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/device.txt" || true
"$PY" -c "from kernels import backend as bk; assert bk.cuda_available(), 'CUDA is not usable here'"
"$PY" -m kernels.warmup  # compile the numba kernels once, outside the timed runs

status=0
# --confcutdir: the kernel tests need no Django; tests/conftest.py (the platform's
# fixtures) is left unloaded, and the pyproject's addopts plugin with it
"$PY" -m pytest -o addopts="" --confcutdir=tests/kernels -p no:cacheprovider -q -ra \
  -m gpu tests/kernels 2>&1 | tee "$OUT/gpu-tests.txt" || status=1
"$PY" bench/fgw.py 2>&1 | tee "$OUT/bench.txt" || status=1
exit $status
