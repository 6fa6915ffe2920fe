"""The per-call floor of each Python baseline: the median time of a tiny FC (8x8,
batch 1) called the same way as the benchmark calls the real layers. It bounds how much
of a small layer's time (a GRU step) is call overhead rather than compute. Prints a
markdown table."""
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines  # noqa: E402
import models  # noqa: E402


def main():
    quick = "--quick" in sys.argv
    repeat, min_ms = baselines.protocol(quick)
    d = tempfile.mkdtemp(prefix="grim-overhead-")
    try:
        rng = np.random.default_rng(1)
        meta = {"case": {"id": "overhead", "block": None},
                "layer": {"kind": "fc", "m": 8, "k": 8, "n": 1},
                "inputs": {"x": {"file": "x.f32", "shape": [1, 8]}}}
        t = {"x": rng.standard_normal((1, 8)).astype(np.float32),
             "w": rng.standard_normal((8, 8)).astype(np.float32)}
        import onnx
        onnx.save(models.onnx_model(meta, t), os.path.join(d, "model.onnx"))
        print("Per-call floor of the Python baselines (tiny 8x8 FC, 1 thread, median):\n")
        print("| system | us per call |\n|---|---|")
        for system in ("onnxruntime", "mnn", "litert"):
            try:
                run, _, _ = baselines.build(system, meta, t, d, 1)
                med, _, _ = baselines.measure(run, repeat, min_ms)
                print(f"| {system} | {med * 1e6:.1f} |")
            except Exception as e:
                print(f"| {system} | failed: {type(e).__name__}: {str(e)[:80]} |")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
