//! Heap scratch buffers kept from one call to the next (`codegen::scratch`): which
//! allocations qualify, and that a kernel called again and again, on different inputs,
//! at 1 and 2 threads, still gives the interpreter's outputs on every call (kept
//! buffers and refused ones alike).

use codegen::harness::{measurement_source, Candidate};
use codegen::run::{read_outputs, write_inputs};
use codegen::scratch::reusable_across_calls;
use codegen::toolchain::{build_binary, run_with_timeout};
use codegen::Target;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;
use tir::{Function, ParamKind, Stmt, Tensor};

/// A padded copy (20604 floats: on the heap) written before it is read; its border is
/// read and must stay zero.
const PADDED: &str = "fn padded(X: in f32[200, 100], Y: out f32[200, 100]) {
  alloc T: f32[202, 102] global {
    parallel for (i, 0, 202) {
      for (j, 0, 102) {
        if i - 1 >= 0 && i - 1 < 200 && j - 1 >= 0 && j - 1 < 100 {
          T[i, j] = X[i - 1, j - 1];
        }
      }
    }
    parallel for (i, 0, 200) {
      for (j, 0, 100) {
        Y[i, j] = T[i, j] + 2.0 * T[i + 2, j + 2];
      }
    }
  }
}
";

/// A heap buffer that sums into itself: it must start from zeros on every call.
const ACCUMULATED: &str = "fn accumulated(X: in f32[20000], Y: out f32[20000]) {
  alloc A: f32[20000] global {
    for (i, 0, 20000) {
      A[i] = A[i] + X[i];
    }
    for (i, 0, 20000) {
      Y[i] = A[i];
    }
  }
}
";

fn parse(text: &str) -> Function {
    tir::parse_function(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The name and body of the first allocation in `f`.
fn first_allocation(f: &Function) -> (String, Stmt) {
    let mut found = None;
    tir::visit::for_each_stmt(&f.body, &mut |s| {
        if let (None, Stmt::Allocate { name, body, .. }) = (&found, s) {
            found = Some((name.clone(), (**body).clone()));
        }
    });
    found.expect("an allocation")
}

fn reusable(text: &str) -> bool {
    let f = parse(text);
    let (name, body) = first_allocation(&f);
    reusable_across_calls(&name, &body)
}

#[test]
fn only_buffers_written_at_fixed_positions_before_any_read_are_kept() {
    assert!(reusable(PADDED));
    assert!(!reusable(ACCUMULATED), "reads itself while it is written");
    // A read before the writes.
    assert!(!reusable(
        "fn f(X: in f32[4], Y: out f32[4]) { alloc T: f32[4] global {
           for (i, 0, 4) { Y[i] = T[i]; }
           for (i, 0, 4) { T[i] = X[i]; } } }"
    ));
    // Writes after a read, even of other positions.
    assert!(!reusable(
        "fn f(X: in f32[8], Y: out f32[4]) { alloc T: f32[8] global {
           for (i, 0, 4) { T[i] = X[i]; }
           for (i, 0, 4) { Y[i] = T[i]; }
           for (i, 4, 4) { T[i] = X[i]; } } }"
    ));
    // Positions that depend on data: an index, a loop bound, a condition, a let.
    for body in [
        "for (i, 0, 4) { T[P[i]] = X[i]; }",
        "for (i, 0, P[0]) { T[i] = X[i]; }",
        "for (i, 0, 4) { if X[i] > 0.0 { T[i] = X[i]; } }",
        "for (i, 0, 4) { let k = P[i]; T[k] = X[i]; }",
    ] {
        let text = format!(
            "fn f(X: in f32[4], P: in i32[4], Y: out f32[4]) {{ alloc T: f32[4] global {{
               {body}
               for (i, 0, 4) {{ Y[i] = T[i]; }} }} }}"
        );
        assert!(!reusable(&text), "{body}");
    }
    // Data may flow into the values, and lets that load may sit beside the stores.
    assert!(reusable(
        "fn f(X: in f32[4], P: in i32[4], Y: out f32[4]) { alloc T: f32[4] global {
           for (i, 0, 4) { let k = i + 1; T[i] = X[P[i]] * f32(k); }
           for (i, 0, 4) { let v = T[i]; Y[i] = v + X[i]; } } }"
    ));
    // A prefetch is a read.
    assert!(!reusable(
        "fn f(X: in f32[4], Y: out f32[4]) { alloc T: f32[4] global {
           for (i, 0, 4) { prefetch T[i]; T[i] = X[i]; }
           for (i, 0, 4) { Y[i] = T[i]; } } }"
    ));
}

/// Builds `f` with a `main` that calls it once per input file, in one process, and
/// writes the outputs after each call; returns each call's outputs.
fn call_in_turn(
    f: &Function,
    inputs: &[BTreeMap<String, Tensor>],
    threads: u32,
) -> Vec<BTreeMap<String, Tensor>> {
    let dir = tempfile::tempdir().unwrap();
    let harness = measurement_source(&[Candidate { func: f }], &Target::Host).unwrap();
    let src = format!(
        "#define main grim_measurement_main\n{harness}\n#undef main\n{}",
        r#"
/* usage: IN OUT [IN OUT]...: one call per pair, in order, in this process */
int main(int argc, char** argv) {
  const grim_candidate* c = &grim_candidates[0];
  void* args[64];
  if (c->nparams > 64) return 2;
  for (int k = 0; k < c->nparams; ++k) {
    args[k] = aligned_alloc(64, c->sizes[k] ? (c->sizes[k] + 63) / 64 * 64 : 64);
    if (!args[k]) return 3;
  }
  for (int a = 1; a + 1 < argc; a += 2) {
    FILE* in = fopen(argv[a], "rb");
    if (!in) return 3;
    for (int k = 0; k < c->nparams; ++k)
      if (c->sizes[k] && fread(args[k], 1, c->sizes[k], in) != c->sizes[k]) return 3;
    fclose(in);
    if (c->entry(args) != 0) return 4;
    FILE* out = fopen(argv[a + 1], "wb");
    if (!out) return 3;
    for (int k = 0; k < c->nparams; ++k)
      if (c->outs[k] && c->sizes[k] && fwrite(args[k], 1, c->sizes[k], out) != c->sizes[k]) return 3;
    if (fclose(out) != 0) return 3;
  }
  return 0;
}
"#
    );
    let bin = build_binary(&src, dir.path(), &Target::Host, Duration::from_secs(120)).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.env("OMP_NUM_THREADS", threads.to_string());
    for (i, args) in inputs.iter().enumerate() {
        let input = dir.path().join(format!("in{i}.bin"));
        write_inputs(f, args, &input).unwrap();
        cmd.arg(&input).arg(dir.path().join(format!("out{i}.bin")));
    }
    let fin = run_with_timeout(&mut cmd, Duration::from_secs(60))
        .unwrap()
        .expect("in time");
    assert_eq!(fin.code, Some(0), "{}", fin.stderr);
    (0..inputs.len())
        .map(|i| read_outputs(f, &dir.path().join(format!("out{i}.bin"))).unwrap())
        .collect()
}

fn inputs(f: &Function, seed: u32) -> BTreeMap<String, Tensor> {
    let mut args = BTreeMap::new();
    for p in &f.params {
        let n: usize = p.shape.iter().product();
        let data = (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000)
            .map(|v| v as f32 / 100.0 - 5.0)
            .collect();
        let t = match p.kind {
            ParamKind::Output => Tensor::zeros(p.dtype, p.shape.clone()),
            _ => Tensor::f32(p.shape.clone(), data).unwrap(),
        };
        args.insert(p.name.clone(), t);
    }
    args
}

#[test]
fn kernels_called_again_and_again_give_the_interpreters_outputs() {
    for (text, kept) in [(PADDED, true), (ACCUMULATED, false)] {
        let f = parse(text);
        let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
        assert_eq!(src.contains("static atomic_flag grim_busy_"), kept, "{src}");
        let calls: Vec<_> = [1u32, 2, 3, 1].iter().map(|&s| inputs(&f, s)).collect();
        for threads in [1, 2] {
            let got = call_in_turn(&f, &calls, threads);
            for (args, got) in calls.iter().zip(&got) {
                let mut want = args.clone();
                tir::interp::run(&f, &mut want).unwrap();
                assert_eq!(
                    got["Y"].as_f32().unwrap(),
                    want["Y"].as_f32().unwrap(),
                    "{} at {threads} thread(s)",
                    f.name
                );
            }
        }
    }
}
