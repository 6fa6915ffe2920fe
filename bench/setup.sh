#!/usr/bin/env bash
# Creates bench/.venv with the pinned Python baselines of the benchmark (bench/run).
# Usage: bash bench/setup.sh [--tvm]
#   --tvm  also installs Apache TVM (Relax + MetaSchedule; large and slow to tune).
# Never imports MNN.tools (it pip-installs a package and contacts the network at
# import); the MNN converter is used through MNN._tools.mnnconvert only.
set -euo pipefail
cd "$(dirname "$0")"
tvm=0
for a in "$@"; do
  case "$a" in
    --tvm) tvm=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-python3}
if ! "$py" -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null; then
  echo "setup.sh: Python 3.10 or newer is required (set PYTHON=...)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
if [ "$tvm" = 1 ]; then
  .venv/bin/python -m pip install -q -r requirements-tvm.txt
fi
.venv/bin/python - <<'PY'
import numpy, scipy, onnx, onnxruntime, flatbuffers
import MNN  # never MNN.tools
from ai_edge_litert import interpreter  # noqa: F401
print("bench venv:", "numpy", numpy.__version__, "scipy", scipy.__version__,
      "onnx", onnx.__version__, "onnxruntime", onnxruntime.__version__,
      "MNN", MNN.version(), "flatbuffers", flatbuffers.__version__)
PY
