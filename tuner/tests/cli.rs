//! The `grim-tune` program as a user runs it: exit codes, output and error messages.

use std::process::Command;

fn grim_tune(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(args)
        .output()
        .expect("run grim-tune");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn show_prints_key_statistics_and_ir() {
    let (ok, out, err) = grim_tune(&[
        "show",
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.75,seed=1",
    ]);
    assert!(ok, "stderr: {err}");
    assert!(out.contains(
        "workload  bcr-fc:M=64,K=64,N=1,bias=0,act=none,block=16x16,sparsity=0.75,seed=1"
    ));
    assert!(out.contains("key       "));
    // 16 blocks of 16x16, each keeping 8x8 (sqrt(0.25) = 0.5): nnz = 16 * 64 = 1024.
    assert!(
        out.contains("16 of 16 blocks non-empty, nnz 1024 (sparsity 0.7500)"),
        "{out}"
    );
    assert!(out.contains("fn bcr_fc(X: in f32[64, 1]"), "{out}");
}

#[test]
fn show_without_ir() {
    let (ok, out, _) = grim_tune(&["show", "--no-ir", "fc:M=8,K=8,N=1"]);
    assert!(ok);
    assert!(out.contains("weight    W dense 8x8"));
    assert!(!out.contains("fn fc("));
}

#[test]
fn bad_spec_is_a_clear_error_and_nonzero_exit() {
    let (ok, out, err) = grim_tune(&["show", "bcr-fc:M=8,K=8,N=1,block=16x4,sparsity=0.5"]);
    assert!(!ok);
    assert!(out.is_empty());
    assert!(
        err.contains("invalid `block`: block 16x4 is larger than the M x K weight matrix 8x8"),
        "{err}"
    );
}

#[test]
fn bad_thread_counts_are_clear_errors() {
    let w = "fc:M=8,K=8,N=1";
    let (ok, _, err) = grim_tune(&["tune", "--workload", w, "--threads", "0"]);
    assert!(!ok);
    assert!(err.contains("--threads") && err.contains("0"), "{err}");
    let (ok, _, err) = grim_tune(&["tune", "--workload", w, "--threads", "two"]);
    assert!(!ok);
    assert!(err.contains("--threads"), "{err}");
    let (ok, _, err) = grim_tune(&[
        "tune",
        "--workload",
        w,
        "--target",
        "opencl",
        "--threads",
        "2",
    ]);
    assert!(!ok);
    assert!(err.contains("--threads applies to CPU targets"), "{err}");
}

#[test]
fn check_ir_accepts_printed_ir_and_rejects_broken_files() {
    let dir = std::env::temp_dir().join(format!("grim-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, ir, _) = grim_tune(&["show", "bcr-gru:hidden=4,input=4,block=4x4,sparsity=0.5"]);
    assert!(ok);
    let text: String = ir
        .lines()
        .skip_while(|l| !l.starts_with("fn "))
        .collect::<Vec<_>>()
        .join("\n");
    let good = dir.join("good.tir");
    std::fs::write(&good, &text).unwrap();
    let (ok, out, err) = grim_tune(&["check-ir", good.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("ok, function `bcr_gru`"), "{out}");

    let bad = dir.join("bad.tir");
    std::fs::write(&bad, "fn f(X: in f32[4]) {\n  for (i, 0 4) {\n  }\n}\n").unwrap();
    let (ok, _, err) = grim_tune(&["check-ir", bad.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("bad.tir:2:"), "{err}");

    let unbound = dir.join("unbound.tir");
    std::fs::write(
        &unbound,
        "fn f(X: in f32[4], Y: out f32[4]) {\n  Y[i] = X[0];\n}\n",
    )
    .unwrap();
    let (ok, _, err) = grim_tune(&["check-ir", unbound.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("unbound.tir") && err.contains('i'), "{err}");

    let (ok, _, err) = grim_tune(&["check-ir", dir.join("missing.tir").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("cannot read") && err.contains("missing.tir"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_runs_generated_code_against_the_interpreter() {
    let dir = std::env::temp_dir().join(format!("grim-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("t.json");
    std::fs::write(
        &trace,
        r#"{"format":1,"instructions":[{"op":"split","loop_name":"n","factors":[null,4],"remainder":"exact"},{"op":"vectorize","loop_name":"n_1"}]}"#,
    )
    .unwrap();
    let spec = "bcr-fc:M=64,K=64,N=8,block=16x16,sparsity=0.9";
    let t = trace.to_str().unwrap();
    let (ok, out, err) = grim_tune(&["check", "--workload", spec, "--trace", t]);
    assert!(ok, "{err}");
    assert!(
        out.contains("schedule  2 trace instructions") && out.contains("): ok"),
        "{out}"
    );
    let (ok, out, err) = grim_tune(&[
        "check",
        "--workload",
        spec,
        "--trace",
        t,
        "--target",
        "aarch64-neon:cortex-a76",
        "--device",
        "qemu",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("aarch64 instructions per run"), "{out}");

    let out_dir = dir.join("build");
    let (ok, out, err) = grim_tune(&[
        "build",
        "--workload",
        spec,
        "--target",
        "aarch64-neon:cortex-a55",
        "--trace",
        t,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("kernels.c"));
    let c = std::fs::read_to_string(out_dir.join("kernels.c")).unwrap();
    assert!(c.contains("vfmaq_f32") && c.contains("#include <arm_neon.h>"));
    assert!(out_dir.join("kernels").exists());

    let (ok, out, err) = grim_tune(&["check", "--workload", spec, "--target", "opencl"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("target    opencl on ") && out.contains("): ok"),
        "{out}"
    );
    let (ok, _, err) = grim_tune(&["check", "--workload", spec, "--target", "riscv"]);
    assert!(!ok);
    assert!(err.contains("unknown target `riscv`"), "{err}");
    let bad_trace = dir.join("bad.json");
    std::fs::write(
        &bad_trace,
        r#"{"format":1,"instructions":[{"op":"vectorize","loop_name":"k"}]}"#,
    )
    .unwrap();
    let (ok, _, err) = grim_tune(&[
        "check",
        "--workload",
        spec,
        "--trace",
        bad_trace.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("bad.json: trace instruction 0 (vectorize): vectorize: no loop named `k`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tune_prints_the_result_table_and_json() {
    let spec = "bcr-fc:M=32,K=32,N=4,block=8x8,sparsity=0.8,seed=1";
    let dir = std::env::temp_dir().join(format!("grim-cli-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plot = dir.join("curve.svg");
    let plot = plot.to_str().unwrap();
    let db = dir.join("db");
    let db = db.to_str().unwrap();
    let tune = |extra: &[&str]| {
        let mut args = vec!["tune", "--workload", spec, "--db", db];
        args.extend_from_slice(extra);
        grim_tune(&args)
    };
    let (ok, out, err) = tune(&["--trials", "6", "--strategy", "random", "--plot", plot]);
    assert!(ok, "{err}");
    assert!(
        out.contains("| workload | device | trials | errors | default | best | speedup |"),
        "{out}"
    );
    assert!(out.contains("| local | 6 | 0 |"), "{out}");
    assert!(std::fs::read_to_string(plot).unwrap().starts_with("<svg"));
    // Resuming with the same database measures only new candidates.
    let (ok, out, err) = tune(&["--trials", "4", "--json", "--no-dense"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["trials"], 4);
    assert!(v[0]["skipped"].as_u64().unwrap() >= 1, "{out}");
    assert!(v[0]["best_cost"].as_f64().unwrap() > 0.0);
    assert!(
        v[0]["speedup"].as_f64().unwrap() >= 1.0,
        "the best includes the default"
    );
    let (ok, out, err) = grim_tune(&["db", "show", "--db", db]);
    assert!(ok, "{err}");
    // The two runs' 10 candidates, and each run's confirmation round: its 4 best
    // measured again, one confirmed record each.
    assert!(out.contains("18 record(s) in 1 group(s)"), "{out}");
    // Bad inputs: clear errors, non-zero exit.
    let (ok, _, err) = tune(&["--device", "phone"]);
    assert!(!ok && err.contains("unknown device `phone`"), "{err}");
    let (ok, _, err) = tune(&["--target", "aarch64-neon:cortex-a76"]);
    assert!(!ok && err.contains("use --device qemu"), "{err}");
    let list = dir.join("layers.txt");
    std::fs::write(&list, "# layers\nfc:M=4,K=4,N=1\nfc:M=4,K=0,N=1\n").unwrap();
    let (ok, _, err) = grim_tune(&["tune", "--workload", list.to_str().unwrap(), "--db", db]);
    assert!(
        !ok && err.contains("layers.txt:3: bad value `0` for key `K`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
