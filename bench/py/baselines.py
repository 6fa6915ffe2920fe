"""The Python baselines of bench/run: ONNX Runtime, MNN (dense, and its sparse path),
LiteRT (dense with its default XNNPACK delegate; block-sparse 1x4 and CSR
FULLY_CONNECTED with the delegate off, as LiteRT requires) and scipy CSR, on the cases
exported by `grim-bench export`, with the same inputs, thread counts and timing
protocol as grim (bench/src/protocol.rs). Every output is compared with the case's
reference before its time counts. Appends one JSON line per measurement to --out.

Never imports MNN.tools (it installs packages and contacts the network at import):
the converter is the `_tools` extension module, run in a subprocess."""
import argparse
import json
import os
import subprocess
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

TOLERANCE = 5e-3
ALL = ["onnxruntime", "mnn", "mnn-sparse", "litert", "litert-sparse", "litert-csr",
       "csr-scipy"]


def protocol(quick):
    return (5, 5.0) if quick else (15, 20.0)


def measure(fn, repeat, min_ms):
    """Warm-up, `number` doubled until a sample lasts min_ms, `repeat` samples."""
    fn()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        if (time.perf_counter() - t0) * 1e3 >= min_ms or number >= 1 << 30:
            break
        number *= 2
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
    return float(np.median(samples)), float(min(samples)), number


def load_case(d):
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    t = {}
    for group in ("inputs", "weights"):
        for role, tf in meta[group].items():
            t[role] = np.fromfile(os.path.join(d, tf["file"]), dtype="<f4").reshape(tf["shape"])
    ref = np.fromfile(os.path.join(d, meta["output"]["file"]), dtype="<f4").reshape(
        meta["output"]["shape"])
    return meta, t, ref


def feeds(meta, t):
    return {r: np.ascontiguousarray(t[r]) for r in meta["inputs"]}


# ------------------------------------------------------------------ systems
# Each returns (run, read, note): `run()` computes once; `read()` gives the output in
# the reference layout after a run.

def ort_session(path, threads):
    """An ONNX Runtime CPU session on `path` with `threads` intra-op threads, sequential,
    every graph optimization on: the settings every ONNX Runtime row uses."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def sys_onnxruntime(meta, t, d, threads):
    import onnxruntime as ort
    sess = ort_session(os.path.join(d, "model.onnx"), threads)
    binding = sess.io_binding()
    for name, v in feeds(meta, t).items():
        binding.bind_cpu_input(name, v)
    binding.bind_output("y", "cpu")
    box = {}

    def run():
        sess.run_with_iobinding(binding)

    def read():
        return binding.copy_outputs_to_cpu()[0]
    return run, read, f"onnxruntime {ort.__version__}, io_binding"


def mnn_convert(d, sparse):
    out = os.path.join(d, "model-sparse.mnn" if sparse else "model.mnn")
    if os.path.exists(out):
        return out
    argv = ["mnnconvert", "-f", "ONNX", "--modelFile", os.path.join(d, "model.onnx"),
            "--MNNModel", out, "--bizCode", "grim-bench"]
    if sparse:
        argv.append("--detectSparseSpeedUp")
    code = "import sys, _tools; _tools.mnnconvert(sys.argv[1:])"
    r = subprocess.run([sys.executable, "-c", code] + argv, capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"MNN converter failed: {r.stdout[-500:]} {r.stderr[-500:]}")
    return out


def sys_mnn(meta, t, d, threads, sparse=False):
    import MNN
    path = mnn_convert(d, sparse)
    interp = MNN.Interpreter(path)
    sess = interp.createSession({"numThread": threads, "backend": "CPU"})
    keep = []
    for name, v in feeds(meta, t).items():
        inp = interp.getSessionInput(sess, name)
        tmp = MNN.Tensor(list(v.shape), MNN.Halide_Type_Float, v,
                         MNN.Tensor_DimensionType_Caffe)
        inp.copyFrom(tmp)
        keep.append(tmp)

    def run():
        interp.runSession(sess)

    def read():
        out = interp.getSessionOutput(sess, "y")
        shape = list(out.getShape())
        host = MNN.Tensor(shape, MNN.Halide_Type_Float,
                          np.zeros(shape, np.float32), MNN.Tensor_DimensionType_Caffe)
        out.copyToHostTensor(host)
        return np.array(host.getNumpyData(), dtype=np.float32).reshape(shape)
    return run, read, f"MNN {MNN.version()}" + (", --detectSparseSpeedUp" if sparse else "")


def sys_litert(meta, t, d, threads, sparse=None):
    from ai_edge_litert import interpreter as lite
    data, note = models.tflite_model(meta, t, sparse)
    with open(os.path.join(d, f"model-{sparse or 'dense'}.tflite"), "wb") as f:
        f.write(data)
    if sparse is None:
        it = lite.Interpreter(model_content=data, num_threads=threads)
        note = "default delegate (XNNPACK); " + note
    else:
        it = lite.Interpreter(
            model_content=data, num_threads=threads,
            experimental_op_resolver_type=lite.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        note = f"{sparse} sparse FULLY_CONNECTED, XNNPACK off; " + note
    it.allocate_tensors()
    ins = {x["name"]: x["index"] for x in it.get_input_details()}
    out_idx = it.get_output_details()[0]["index"]
    kind = meta["layer"]["kind"]
    for name, v in feeds(meta, t).items():
        if kind == "conv":
            v = np.ascontiguousarray(v.transpose(0, 2, 3, 1))
        it.set_tensor(ins[name], v)

    def run():
        it.invoke()

    def read():
        y = it.get_tensor(out_idx)
        return y.transpose(0, 3, 1, 2) if kind == "conv" else y
    return run, read, note.strip("; ")


def sys_scipy(meta, t, d, threads):
    import scipy
    import scipy.sparse as sp
    layer = meta["layer"]
    kind = layer["kind"]
    box = {}
    if kind == "fc":
        w = sp.csr_matrix(t["w"])
        xt = np.ascontiguousarray(t["x"].T)  # [K, N]
        if layer["n"] == 1:
            xv = xt[:, 0].copy()

            def run():
                box["y"] = w @ xv
        else:
            def run():
                box["y"] = w @ xt

        def read():
            return np.asarray(box["y"]).reshape(layer["m"], layer["n"]).T
    elif kind == "conv":
        c, h, w_ = layer["c"], layer["h"], layer["w"]
        kh, kw, p, s = layer["kh"], layer["kw"], layer["pad"], layer["stride"]
        o = layer["o"]
        wm = sp.csr_matrix(t["w"].reshape(o, c * kh * kw))
        x = t["x"][0]
        oh = (h + 2 * p - kh) // s + 1
        ow = (w_ + 2 * p - kw) // s + 1
        xp = np.zeros((c, h + 2 * p, w_ + 2 * p), np.float32)

        def run():
            xp[:, p:p + h, p:p + w_] = x
            if kh == 1 and kw == 1 and s == 1:
                cols = xp.reshape(c, -1)
            else:
                sw = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
                sw = sw[:, ::s, ::s]  # [c, oh, ow, kh, kw]
                cols = np.ascontiguousarray(sw.transpose(0, 3, 4, 1, 2)).reshape(c * kh * kw, -1)
            box["y"] = wm @ cols

        def read():
            return np.asarray(box["y"]).reshape(1, o, oh, ow)
    else:
        hid = layer["hidden"]
        wi, wh = sp.csr_matrix(t["w_ih"]), sp.csr_matrix(t["w_hh"])
        x, h = t["x"][0].copy(), t["h"][0].copy()
        bi, bh = t["b_ih"], t["b_hh"]

        def run():
            gi = wi @ x + bi
            gh = wh @ h + bh
            r = 1.0 / (1.0 + np.exp(-(gi[:hid] + gh[:hid])))
            z = 1.0 / (1.0 + np.exp(-(gi[hid:2 * hid] + gh[hid:2 * hid])))
            n = np.tanh(gi[2 * hid:] + r * gh[2 * hid:])
            box["y"] = (1.0 - z) * n + z * h

        def read():
            return box["y"].reshape(1, hid)
    return run, read, f"scipy {scipy.__version__} (single-threaded)"


def build(system, meta, t, d, threads):
    if system == "onnxruntime":
        return sys_onnxruntime(meta, t, d, threads)
    if system == "mnn":
        return sys_mnn(meta, t, d, threads)
    if system == "mnn-sparse":
        return sys_mnn(meta, t, d, threads, sparse=True)
    if system == "litert":
        return sys_litert(meta, t, d, threads)
    if system == "litert-sparse":
        return sys_litert(meta, t, d, threads, "1x4")
    if system == "litert-csr":
        return sys_litert(meta, t, d, threads, "csr")
    if system == "csr-scipy":
        return sys_scipy(meta, t, d, threads)
    raise ValueError(system)


def applies(system, meta, threads):
    """Why a system does not run a case, or None."""
    kind = meta["layer"]["kind"]
    dense = meta["case"]["block"] is None
    if system in ("litert-sparse", "litert-csr", "mnn-sparse", "csr-scipy") and dense:
        return "dense case"
    if system in ("litert-sparse", "litert-csr") and kind == "conv":
        return "LiteRT has no sparse conv kernel"
    if system == "csr-scipy" and threads != 1:
        return "scipy sparse products are single-threaded"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--systems", default=",".join(ALL))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="run only the cases whose id contains this")
    args = ap.parse_args()
    repeat, min_ms = protocol(args.quick)
    threads = [int(x) for x in args.threads.split(",")]
    systems = [s for s in args.systems.split(",") if s]
    with open(os.path.join(args.cases, "plan.json")) as f:
        plan = json.load(f)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out = open(args.out, "a")
    for cid in plan:
        if args.only and args.only not in cid:
            continue
        d = os.path.join(args.cases, cid)
        meta, t, ref = load_case(d)
        import onnx
        onnx.save(models.onnx_model(meta, t), os.path.join(d, "model.onnx"))
        for system in systems:
            for th in threads:
                if applies(system, meta, th):
                    continue
                rec = {"case": cid, "system": system, "threads": th, "median_ms": None,
                       "min_ms": None, "repeat": 0, "number": 0, "max_abs_diff": None,
                       "ok": False, "note": ""}
                try:
                    run, read, note = build(system, meta, t, d, th)
                    run()
                    got = np.asarray(read(), dtype=np.float32).reshape(ref.shape)
                    diff = float(np.max(np.abs(got.astype(np.float64) - ref)))
                    if not np.isfinite(diff):
                        diff = float("inf")
                    rec["max_abs_diff"] = diff
                    rec["ok"] = diff <= TOLERANCE
                    rec["note"] = note
                    if rec["ok"]:
                        med, mn, number = measure(run, repeat, min_ms)
                        rec.update(median_ms=med * 1e3, min_ms=mn * 1e3, repeat=repeat,
                                   number=number)
                except Exception as e:  # recorded, never silently dropped
                    rec["note"] = f"{type(e).__name__}: {e}".replace("\n", " ")[:600]
                    if os.environ.get("GRIM_BENCH_DEBUG"):
                        traceback.print_exc()
                out.write(json.dumps(rec) + "\n")
                out.flush()
                ms = f"{rec['median_ms']:.4f} ms" if rec["median_ms"] is not None else \
                    "FAILED: " + rec["note"][:160]
                print(f"{cid:<24} {system:<18} {th}t {ms}  max|diff| {rec['max_abs_diff']}",
                      file=sys.stderr, flush=True)
    out.close()


if __name__ == "__main__":
    main()
