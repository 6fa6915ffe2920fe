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
