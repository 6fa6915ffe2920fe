//! The C helpers for `exp`, `tanh` and `sigmoid` (libm-free so that loops calling them
//! vectorize) against the interpreter's (Rust's) functions over a sweep of inputs,
//! large magnitudes, zero and tiny values included.

mod native;

use codegen::harness::{measurement_source, Candidate};
use codegen::Target;
use std::collections::BTreeMap;
use tir::Tensor;

const N: usize = 4096;

fn text() -> String {
    format!(
        "fn f(X: in f32[{N}], E: out f32[{N}], T: out f32[{N}], S: out f32[{N}]) {{\n  \
         for (i, 0, {N}) {{\n    E[i] = exp(X[i]);\n    T[i] = tanh(X[i]);\n    \
         S[i] = sigmoid(X[i]);\n  }}\n}}\n"
    )
}

fn inputs() -> Vec<f32> {
    let mut x: Vec<f32> = (0..N - 16)
        .map(|k| -100.0 + 200.0 * k as f32 / (N - 17) as f32)
        .collect();
    x.extend([
        0.0, -0.0, 1e-8, -1e-8, 1e-3, -1e-3, 0.625, -0.625, 0.6251, 87.0, -87.0, 88.0, 20.0, -20.0,
        0.5, -0.5,
    ]);
    x
}

#[test]
fn exp_tanh_sigmoid_match_the_interpreter() {
    let f = tir::parse_function(&text()).unwrap_or_else(|e| panic!("{e}"));
    let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
    assert!(
        src.contains("grim_expf(") && src.contains("grim_tanhf("),
        "{src}"
    );
    let x = inputs();
    let mut args: BTreeMap<String, Tensor> = BTreeMap::new();
    args.insert("X".into(), Tensor::f32(vec![N], x.clone()).unwrap());
    // The generated code's values and the interpreter's.
    let (outputs, want) = native::run_and_interpret(&f, &src, &args);
    let got = |n: &str| outputs[n].as_f32().unwrap().to_vec();
    let exp = |n: &str| want[n].as_f32().unwrap().to_vec();
    for (k, xv) in x.iter().enumerate() {
        let (e, ew) = (got("E")[k], exp("E")[k]);
        if (-87.0..=88.0).contains(xv) {
            assert!(
                (e - ew).abs() <= 2.5e-7 * ew.abs(),
                "exp({xv}) = {e}, want {ew}"
            );
        } else if *xv > 88.0 {
            // Clamped at exp(88): finite where expf overflows.
            assert!(e.is_finite() && e >= 1.6e38, "exp({xv}) = {e}");
        } else {
            // Clamped at exp(-87) = 1.6e-38 where expf is subnormal or 0.
            assert!(e > 0.0 && e <= 1.7e-38, "exp({xv}) = {e}");
        }
        for (name, bound) in [("T", 3e-7f32), ("S", 3e-7)] {
            let (a, b) = (got(name)[k], exp(name)[k]);
            assert!(
                (a - b).abs() <= bound * b.abs().max(1e-30) || (a - b).abs() <= 1e-37,
                "{name}({xv}) = {a}, want {b}"
            );
        }
    }
    // Signs and the exact values at the ends.
    let t = got("T");
    assert!(t
        .iter()
        .zip(&x)
        .all(|(t, x)| t.abs() <= 1.0 && (t * x) >= 0.0));
    assert_eq!(got("S")[N - 16], 0.5);
}

/// Compiles the prelude and a loop calling `exp`, `tanh` and `sigmoid` with
/// `compiler` and `flags`, and returns GCC's vectorization report.
fn vectorization_report(compiler: &str, flags: &[&str], target: &Target) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut src = codegen::c_emit::prelude(target);
    src.push_str(
        "void gates(const float* restrict x, float* restrict y) {\n  \
         for (int i = 0; i < 256; i++)\n    \
         y[i] = grim_tanhf(x[i]) + grim_sigmoid(x[i]) * grim_expf(-x[i]);\n}\n",
    );
    let c = dir.path().join("gates.c");
    std::fs::write(&c, src).unwrap();
    let out = std::process::Command::new(compiler)
        .args(flags)
        .args(["-fopt-info-vec-optimized", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(dir.path().join("gates.o"))
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{compiler}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The helpers have no control flow that stops GCC from vectorizing a loop calling
/// them (the clamp and tanh's two ranges are bit selects: with `?:` GCC 12 reported
/// "control flow in loop" under its default -ftrapping-math, and a GRU 256 step's
/// gates ran scalar, 6 of its 18.8 us on an AMD Zen 1 host).
#[test]
fn loops_calling_exp_tanh_sigmoid_vectorize() {
    let host =
        vectorization_report("cc", &["-O3", "-march=native"], &Target::Host).expect("cc runs");
    assert!(host.contains("loop vectorized"), "host: {host}");
    let arm = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    match vectorization_report("aarch64-linux-gnu-gcc", &["-O3", "-mcpu=cortex-a76"], &arm) {
        Some(report) => assert!(report.contains("loop vectorized"), "aarch64: {report}"),
        None => eprintln!("aarch64-linux-gnu-gcc not found: the aarch64 half is not run"),
    }
}
