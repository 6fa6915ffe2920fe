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
         y[i] = grim_tanhf(x[i]) + grim_sigmoid(x[i]) * grim_expf(-x[i]);\n}\n\
         void relu(const float* restrict x, float* restrict y) {\n  \
         for (int i = 0; i < 256; i++)\n    \
         y[i] = grim_fminf(grim_fmaxf(x[i], 0.0f), y[i]);\n}\n",
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

/// The helpers (and `min`/`max`, which were `fminf`/`fmaxf`: "no vectype" on x86) have
/// no control flow that stops GCC from vectorizing a loop calling them (the clamp and tanh's two ranges are bit selects: with `?:` GCC 12 reported
/// "control flow in loop" under its default -ftrapping-math, and a GRU 256 step's
/// gates ran scalar, 6 of its 18.8 us on an AMD Zen 1 host).
#[test]
fn loops_calling_exp_tanh_sigmoid_vectorize() {
    let host =
        vectorization_report("cc", &["-O3", "-march=native"], &Target::Host).expect("cc runs");
    // Both loops (`gates` on line 1 of the appended text, `relu` on line 5).
    assert!(host.matches("loop vectorized").count() >= 2, "host: {host}");
    let arm = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    match vectorization_report("aarch64-linux-gnu-gcc", &["-O3", "-mcpu=cortex-a76"], &arm) {
        Some(report) => assert!(
            report.matches("loop vectorized").count() >= 2,
            "aarch64: {report}"
        ),
        None => eprintln!("aarch64-linux-gnu-gcc not found: the aarch64 half is not run"),
    }
}

/// `min`/`max` in C give what the interpreter gives, NaN operands included (the other
/// operand; both NaN: NaN), infinities and signed zeros compared by value.
#[test]
fn min_max_match_the_interpreter_with_nans() {
    let n = 8 * 8;
    let text = format!(
        "fn f(X: in f32[{n}], Y: in f32[{n}], A: out f32[{n}], B: out f32[{n}]) {{\n  \
         for (i, 0, {n}) {{\n    A[i] = max(X[i], Y[i]);\n    B[i] = min(X[i], Y[i]);\n  }}\n}}\n"
    );
    let f = tir::parse_function(&text).unwrap_or_else(|e| panic!("{e}"));
    let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
    let values = [
        f32::NAN,
        0.0,
        -0.0,
        1.5,
        -2.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        3e-39,
    ];
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for a in values {
        for b in values {
            x.push(a);
            y.push(b);
        }
    }
    let mut args: BTreeMap<String, Tensor> = BTreeMap::new();
    args.insert("X".into(), Tensor::f32(vec![n], x.clone()).unwrap());
    args.insert("Y".into(), Tensor::f32(vec![n], y.clone()).unwrap());
    let (outputs, want) = native::run_and_interpret(&f, &src, &args);
    for name in ["A", "B"] {
        let got = outputs[name].as_f32().unwrap();
        let exp = want[name].as_f32().unwrap();
        for k in 0..n {
            let same = (got[k].is_nan() && exp[k].is_nan()) || got[k] == exp[k];
            assert!(
                same,
                "{name}({}, {}) = {}, interpreter {}",
                x[k], y[k], got[k], exp[k]
            );
        }
    }
}
