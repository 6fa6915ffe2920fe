"""Whole-model dense baselines of bench/models/run: the dense model, written as ONNX by
`grim-tune convert`, run by ONNX Runtime and MNN on the test samples grim wrote with it
(`--samples-out`: inputs, labels, grim's dense reference outputs). Each system runs
every test sample at batch 1 (outputs compared with grim's reference, top-1 accuracy on
the labels), then one sample is timed with the benchmark's protocol (baselines.measure:
warm-up, repeated samples, median). Appends one JSON line per system and thread count to
--out, under the case name given (`model:NAME:dense`), so the report puts them beside
grim's dense and BCR rows of the same model. Also writes DIR/tract-case/, the first
sample as a bench case for bench/tract-bench (timing and output check; tract's accuracy
is not measured).

Never imports MNN.tools (it installs packages and contacts the network at import): the
converter is the `_tools` extension module, run in a subprocess (baselines.mnn_convert)."""
import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baselines  # noqa: E402

SYSTEMS = ["onnxruntime", "mnn"]


def load_samples(d):
    """meta.json of a `grim-tune convert --samples-out` directory and its tensors."""
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)

    def tensor(tf, dtype):
        a = np.fromfile(os.path.join(d, tf["file"]), dtype=dtype)
        want = int(np.prod(tf["shape"]))
        if a.size != want:
            raise ValueError(f"{d}/{tf['file']}: {a.size} values, meta.json says "
                             f"shape {tf['shape']} ({want})")
        return a.reshape(tf["shape"])
    x = tensor(meta["inputs"], "<f4")
    labels = tensor(meta["labels"], "u1")
    ref = tensor(meta["outputs"], "<f4")
    return meta, x, labels, ref


def onnx_names(path):
    import onnx
    g = onnx.load(path).graph
    return g.input[0].name, g.output[0].name


def session(system, onnx_path, work, threads):
    """(set_input(x), run(), read()) for one system on the model at batch 1."""
    in_name, out_name = onnx_names(onnx_path)
    if system == "onnxruntime":
        import onnxruntime as ort
        sess = baselines.ort_session(onnx_path, threads)
        binding = sess.io_binding()
        keep = []

        def set_input(x):
            x = np.ascontiguousarray(x, dtype=np.float32)
            keep[:] = [x]
            binding.bind_cpu_input(in_name, x)
            binding.bind_output(out_name, "cpu")

        def run():
            sess.run_with_iobinding(binding)

        def read():
            return binding.copy_outputs_to_cpu()[0]
        return set_input, run, read, f"onnxruntime {ort.__version__}, io_binding"
    if system == "mnn":
        import MNN
        os.makedirs(work, exist_ok=True)
        case_dir = os.path.join(work, "mnn")
        os.makedirs(case_dir, exist_ok=True)
        shutil.copyfile(onnx_path, os.path.join(case_dir, "model.onnx"))
        path = baselines.mnn_convert(case_dir, False)
        interp = MNN.Interpreter(path)
        sess = interp.createSession({"numThread": threads, "backend": "CPU"})
        inp = interp.getSessionInput(sess, in_name)
        keep = []

        def set_input(x):
            x = np.ascontiguousarray(x, dtype=np.float32)
            tmp = MNN.Tensor(list(x.shape), MNN.Halide_Type_Float, x,
                             MNN.Tensor_DimensionType_Caffe)
            inp.copyFrom(tmp)
            keep[:] = [tmp]

        def run():
            interp.runSession(sess)

        def read():
            out = interp.getSessionOutput(sess, out_name)
            shape = list(out.getShape())
            host = MNN.Tensor(shape, MNN.Halide_Type_Float, np.zeros(shape, np.float32),
                              MNN.Tensor_DimensionType_Caffe)
            out.copyToHostTensor(host)
            return np.array(host.getNumpyData(), dtype=np.float32).reshape(shape)
        return set_input, run, read, f"MNN {MNN.version()}"
    raise ValueError(system)


def tolerance(ref):
    """The benchmark's 5e-3, scaled to the logits' magnitude (MNN's convolutions agree
    with an f64 reference to about 2e-3 on outputs of magnitude 1)."""
    return baselines.TOLERANCE * max(1.0, float(np.max(np.abs(ref))))


def evaluate(system, onnx_path, work, threads, x, labels, ref, quick):
    """Every sample through `system` (checked, scored), then one sample timed."""
    set_input, run, read, note = session(system, onnx_path, work, threads)
    worst, correct = 0.0, 0
    for i in range(x.shape[0]):
        set_input(x[i:i + 1])
        run()
        y = np.asarray(read(), dtype=np.float32).reshape(ref[i].shape)
        d = float(np.max(np.abs(y.astype(np.float64) - ref[i])))
        worst = max(worst, d if np.isfinite(d) else float("inf"))
        correct += int(np.argmax(y) == labels[i])
    tol = tolerance(ref)
    rec = {"system": system, "threads": threads, "median_ms": None, "min_ms": None,
           "repeat": 0, "number": 0, "max_abs_diff": worst, "ok": worst <= tol}
    top1 = 100.0 * correct / x.shape[0]
    rec["note"] = (f"top-1 {top1:.2f}% ({x.shape[0]} images, batch 1); max |diff| vs grim's "
                   f"dense reference {worst:.1e} (tolerance {tol:.1e}); {note}")
    if rec["ok"]:
        set_input(x[0:1])
        repeat, min_ms = baselines.protocol(quick)
        med, mn, number = baselines.measure(run, repeat, min_ms)
        rec.update(median_ms=med * 1e3, min_ms=mn * 1e3, repeat=repeat, number=number)
    return rec


def write_tract_case(d, onnx_path, case, x, ref):
    """The first sample as a bench case directory bench/tract-bench reads."""
    t = os.path.join(d, "tract-case")
    os.makedirs(t, exist_ok=True)
    shutil.copyfile(onnx_path, os.path.join(t, "model.onnx"))
    x[0:1].astype("<f4").tofile(os.path.join(t, "x.f32"))
    ref[0:1].astype("<f4").tofile(os.path.join(t, "y_ref.f32"))
    meta = {"case": {"id": case},
            "inputs": {"x": {"file": "x.f32", "shape": list(x[0:1].shape)}},
            "output": {"file": "y_ref.f32", "shape": list(ref[0:1].shape)}}
    with open(os.path.join(t, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return t


def run_tract(tract, case_dir, threads, quick):
    """bench/tract-bench on the one-sample case: its JSON record (output checked)."""
    import subprocess
    rep, ms = (5, 5) if quick else (15, 20)
    r = subprocess.run([tract, case_dir, str(threads), str(rep), str(ms)], capture_output=True,
                       text=True, timeout=1800)
    line = next((l for l in reversed(r.stdout.splitlines()) if l.startswith("{")), None)
    if r.returncode != 0 or line is None:
        err = r.stderr.strip().splitlines()
        return {"system": "tract", "threads": threads, "median_ms": None, "ok": False,
                "note": ("tract-bench failed: " + (err[-1] if err else "no output"))[:600]}
    rec = json.loads(line)
    rec.pop("case", None)
    rec["note"] = ("first test image only: output checked against grim's dense reference, "
                   "accuracy not measured; " + rec.get("note", ""))
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", required=True, help="a `grim-tune convert --samples-out` directory")
    ap.add_argument("--onnx", required=True, help="the dense model as ONNX (`grim-tune convert`)")
    ap.add_argument("--case", required=True,
                    help="case names of the records, comma-separated (model:NAME:dense); "
                         "one measurement is recorded under each")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--tract", default="", help="bench/tract-bench's binary, to time tract too")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cases = [c for c in args.case.split(",") if c]
    meta, x, labels, ref = load_samples(args.samples)
    tract_dir = write_tract_case(args.samples, args.onnx, cases[0], x, ref)
    shared = f" (one measurement, recorded under {', '.join(cases)}: the same dense model)" \
        if len(cases) > 1 else ""
    with open(args.out, "a") as out:
        jobs = [s for s in args.systems.split(",") if s] + (["tract"] if args.tract else [])
        for system in jobs:
            for th in [int(t) for t in args.threads.split(",")]:
                try:
                    if system == "tract":
                        rec = run_tract(args.tract, tract_dir, th, args.quick)
                    else:
                        rec = evaluate(system, args.onnx, args.samples, th, x, labels, ref,
                                       args.quick)
                except Exception as e:  # recorded, never silently dropped
                    rec = {"system": system, "threads": th, "median_ms": None, "ok": False,
                           "note": f"{type(e).__name__}: {e}".replace("\n", " ")[:600]}
                rec["note"] = rec.get("note", "") + shared
                for c in cases:
                    out.write(json.dumps({"case": c, **rec}) + "\n")
                out.flush()
                ms = f"{rec['median_ms']:.4f} ms" if rec.get("median_ms") is not None else "FAILED"
                print(f"{cases[0]} {system} {th}t {ms}: {rec['note'][:160]}", file=sys.stderr,
                      flush=True)


if __name__ == "__main__":
    main()
