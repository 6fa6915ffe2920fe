"""TVM baseline of bench/run (opt-in, `bench/run --tvm`; needs `bench/setup.sh --tvm`):
each family's dense ONNX model, imported with TVM's Relax ONNX frontend, tuned with
MetaSchedule (`relax.pipeline.static_shape_tuning_pipeline`, XGBoost cost model) on
the family's dense case, then every case of the family is compiled with the tuning
database (no further trials), checked against the reference and timed with the
benchmark's protocol. The weights are constants, so each case runs its own matrix.

One subprocess per (case, threads): TVM's runtime thread pool reads TVM_NUM_THREADS once.
Tuning is slow (5-18 minutes per workload at 64 trials on 2 cores)."""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def target_for():
    """This CPU (so LLVM uses its vector units), with every core: the same target for
    tuning and for each thread count (TVM_NUM_THREADS sets the threads at run time), so
    the tuning records always apply."""
    import tvm
    cpu = tvm.target.codegen.llvm_get_system_cpu()
    return tvm.target.Target({"kind": "llvm", "mcpu": cpu, "num-cores": os.cpu_count() or 1})


def compile_case(d, work_dir, trials):
    """The case's ONNX model through Relax: legalized, tuned with MetaSchedule when
    `trials` > 0 (the builder and runner get generous timeouts: on a busy 2-core machine
    the default 30 s build timeout fails every candidate), then built with the tuning
    database applied."""
    import onnx
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx
    from tvm.s_tir import meta_schedule as ms
    mod = from_onnx(onnx.load(os.path.join(d, "model.onnx")), keep_params_in_input=False)
    target = target_for()
    with target:
        mod = tvm.transform.Sequential([
            relax.transform.DecomposeOpsForInference(),
            relax.transform.CanonicalizeBindings(),
            relax.pipeline.zero_pipeline(),
        ])(mod)
    if trials > 0:
        ms.relax_integration.tune_relax(
            mod=mod, params={}, target=target, work_dir=work_dir,
            max_trials_global=trials, max_trials_per_task=trials,
            num_trials_per_iter=min(64, trials),
            builder=ms.builder.LocalBuilder(timeout_sec=600),
            runner=ms.runner.LocalRunner(timeout_sec=120),
            seed=1)
    with target:
        mod = relax.transform.MetaScheduleApplyDatabase(work_dir)(mod)
    ex = tvm.compile(mod, target=target)
    return relax.VirtualMachine(ex, tvm.cpu())


def child(args):
    """Compile (tuning when --trials > 0), check and time one case; prints one JSON line."""
    import baselines
    import tvm
    meta, t, ref = baselines.load_case(args.case)
    rec = {"case": meta["case"]["id"], "system": "tvm", "threads": int(args.threads),
           "median_ms": None, "min_ms": None, "repeat": 0, "number": 0,
           "max_abs_diff": None, "ok": False, "note": ""}
    t0 = time.time()
    vm = compile_case(args.case, args.work_dir, args.trials)
    build_s = time.time() - t0
    inputs = [tvm.runtime.tensor(np.ascontiguousarray(t[r]), tvm.cpu()) for r in ("x", "h")
              if r in meta["inputs"]]
    f = vm["main"]
    out = f(*inputs)
    got = out.numpy() if hasattr(out, "numpy") else out[0].numpy()
    diff = float(np.max(np.abs(got.reshape(ref.shape).astype(np.float64) - ref)))
    rec["max_abs_diff"] = diff
    rec["ok"] = bool(diff <= baselines.TOLERANCE)
    rec["note"] = (f"TVM {tvm.__version__} MetaSchedule, {args.total_trials} trials on the "
                   f"family's dense case; compile {build_s:.0f} s")
    if rec["ok"]:
        repeat, min_ms = baselines.protocol(args.quick)
        med, mn, number = baselines.measure(lambda: f(*inputs), repeat, min_ms)
        rec.update(median_ms=med * 1e3, min_ms=mn * 1e3, repeat=repeat, number=number)
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases")
    ap.add_argument("--out")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--trials", type=int, default=64, help="MetaSchedule trials per family")
    ap.add_argument("--families", default="", help="comma-separated (default: all)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="run only the cases whose id contains this")
    # child mode
    ap.add_argument("--case")
    ap.add_argument("--work-dir")
    ap.add_argument("--total-trials", type=int, default=0)
    args = ap.parse_args()
    if args.case:
        child(args)
        return
    with open(os.path.join(args.cases, "plan.json")) as fh:
        plan = json.load(fh)
    fams = [f for f in args.families.split(",") if f]
    threads = [int(x) for x in args.threads.split(",")]
    out = open(args.out, "a")
    tuned = set()
    for cid in plan:
        d = os.path.join(args.cases, cid)
        with open(os.path.join(d, "meta.json")) as fh:
            meta = json.load(fh)
        fam = meta["case"]["family"]
        if (fams and fam not in fams) or (args.only and args.only not in cid):
            continue
        work = os.path.join(args.cases, f"_tvm-{fam}")
        for th in threads:
            # Tune once per family (on its first case, the dense one), then reuse.
            trials = 0 if fam in tuned else args.trials
            env = dict(os.environ, TVM_NUM_THREADS=str(th))
            cmd = [sys.executable, os.path.abspath(__file__), "--case", d, "--work-dir", work,
                   "--trials", str(trials), "--total-trials", str(args.trials),
                   "--threads", str(th)] + (["--quick"] if args.quick else [])
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=7200)
            line = next((l for l in reversed(r.stdout.splitlines()) if l.startswith("{")), None)
            if r.returncode != 0 or line is None:
                line = json.dumps({"case": cid, "system": "tvm", "threads": th, "ok": False,
                                   "note": ("TVM failed: " + r.stderr.strip().splitlines()[-1]
                                            if r.stderr.strip() else "TVM failed")[:500]})
            else:
                tuned.add(fam)
            out.write(line + "\n")
            out.flush()
            print(cid, th, line[:200], file=sys.stderr, flush=True)
    out.close()


if __name__ == "__main__":
    main()
