#!/usr/bin/env bash
# Creates bench/.venv with the pinned Python baselines of the benchmark (bench/run),
# and installs with apt-get the system packages its ARM section needs when they are
# missing (the aarch64 cross compiler and its static libc, qemu-user, llvm-mca).
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
# The ARM section (grim-bench arm): cross-compiled kernels counted under qemu and
# estimated by llvm-mca. Without these it reports that it failed and the rest runs.
need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.a ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
command -v llvm-mca >/dev/null 2>&1 || need+=(llvm)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup.sh: installing ${need[*]} (for the ARM section)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"; }; then
    echo "setup.sh: could not install ${need[*]}; bench/run's ARM section will report that it failed" >&2
  fi
fi
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
