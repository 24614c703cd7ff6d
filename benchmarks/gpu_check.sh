#!/usr/bin/env bash
# GPU check, one script: the CUDA tests, then benchmarks/gpu_check.py (bf16-mixed SASRec on Beauty,
# the export's GPU search against torch mm + topk). Sized for under 8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh [path/to/Beauty.txt] [gpu_check.py options]   # default: ../shared/datasets/...
#
# Uses the machine's python3 (a GPU image with torch and Lightning). What the library needs beyond
# that comes from the project's install where a package index is reachable, or from wheels carried
# in .whl/ where none is (an offline GPU box: pydantic, pydantic-core, annotated-types,
# typing-inspection, pandas 3). Writes the log to $OUT/gpu_check.log when OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
BEAUTY=${1:-../shared/datasets/amazon_beauty_s3rec_5core/Beauty.txt}
shift || true
LOG=${OUT:-/tmp}/gpu_check.log
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if ! $PY -c 'import pydantic, yaml, scipy, safetensors, pytorch_lightning, pandas; assert int(pandas.__version__[0]) >= 3' 2>/dev/null; then
  if [ -d .whl ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
  else
    $PY -m pip install -q -c constraints.txt -e . || exit 1
  fi
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

{
  echo "# gpu_check $(date -u '+%Y-%m-%d %H:%M UTC') commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  echo "## CUDA tests (pytest -m gpu)"
  $PY -m pytest -m gpu tests/unit/models/test_cuda.py -q -p no:cacheprovider 2>&1 | tail -n 25
  echo "## benchmarks/gpu_check.py"
  $PY benchmarks/gpu_check.py --beauty "$BEAUTY" "$@" 2>&1
} | tee "$LOG"
