//! Generated OpenCL C, built and run by the local OpenCL driver (pocl's CPU device
//! here), equals the interpreter on the corpus (single work-item) and on GPU
//! schedules (bound loops); `opencl:fp16` kernels pass clang's OpenCL syntax check;
//! schedules a GPU cannot run are refused naming the loop.
//!
//! Without an OpenCL platform the device tests fail with the `MissingTool` error that
//! names the Debian packages to install.

#[allow(dead_code)]
mod corpus;

use codegen::opencl_emit::{clang_syntax_check, emit_program};
use codegen::opencl_run::{check_against_interpreter, OpenClDevice, OpenClProtocol};
use codegen::{CodegenError, Target};
use schedule::{Remainder, Schedule};
use std::collections::BTreeMap;
use tir::workload::Workload;
use tir::{ForKind, Function, Tensor};

const TOL: f64 = 1e-4;

fn device() -> OpenClDevice {
    OpenClDevice::open(None).unwrap_or_else(|e| panic!("{e}"))
}

fn protocol() -> OpenClProtocol {
    OpenClProtocol {
        warmup: 0,
        repeat: 2,
    }
}

/// Checks a scheduled function on the device; returns the number of kernels.
fn check(dev: &OpenClDevice, name: &str, f: &Function, args: &BTreeMap<String, Tensor>) -> usize {
    let target = Target::OpenCl { fp16: false };
    let r = check_against_interpreter(f, args, &target, dev, TOL, &protocol())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        r.passed,
        "{name} on {}: max abs error {}, rel {}\n{}",
        r.device, r.max_abs, r.max_rel, r.source
    );
    assert!(r.timing.median > 0.0, "{name}: no time measured");
    assert_eq!(r.timing.repeat, 2);
    r.launches.len()
}

fn args_of(w: &Workload, s: &Schedule) -> BTreeMap<String, Tensor> {
    let mut args = w.random_inputs(17);
    args.extend(s.weights().iter().map(|(k, v)| (k.clone(), v.clone())));
    args
}

#[test]
fn corpus_single_work_item() {
    let dev = device();
    for c in corpus::corpus() {
        let mut args = c.workload.random_inputs(17);
        args.extend(c.weights.iter().map(|(k, v)| (k.clone(), v.clone())));
        let p = emit_program(&c.func, "k", &Target::OpenCl { fp16: false }).unwrap();
        assert!(p.launches.iter().all(|l| l.single_work_item), "{}", c.name);
        assert_eq!(
            p.launches.len(),
            1,
            "{}: one kernel when nothing is bound",
            c.name
        );
        assert_eq!(p.launches[0].global, [1, 1, 1]);
        check(&dev, &c.name, &c.func, &args);
    }
}

/// A GPU schedule of a workload.
struct GpuCase {
    name: &'static str,
    spec: &'static str,
    schedule: fn(&mut Schedule) -> Result<(), schedule::ScheduleError>,
    /// Expected NDRanges (global, local) of the kernels.
    ranges: &'static [([usize; 3], [usize; 3])],
}

fn gpu_cases() -> Vec<GpuCase> {
    use ForKind::*;
    vec![
        GpuCase {
            name: "fc: m split into blocks x threads, n on thread_y",
            spec: "fc:M=24,K=20,N=8,bias=1,act=relu",
            schedule: |s| {
                s.bind("init_m", BlockX)?;
                s.bind("init_n", ThreadX)?;
                s.split("m", &[None, Some(4)], Remainder::Exact)?;
                s.bind("m_0", BlockX)?;
                s.bind("m_1", ThreadX)?;
                s.bind("n", ThreadY)?;
                s.split("k", &[None, Some(4)], Remainder::Exact)?;
                s.unroll("k_1")?;
                s.bind("act_m", BlockX)?;
                s.bind("act_n", ThreadX)
            },
            ranges: &[
                ([24 * 8, 1, 1], [8, 1, 1]),
                ([6 * 4, 8, 1], [4, 8, 1]),
                ([24 * 8, 1, 1], [8, 1, 1]),
            ],
        },
        GpuCase {
            name: "fc: threads only (one work-group), vectorized n",
            spec: "fc:M=24,K=20,N=8,bias=1,act=relu",
            schedule: |s| {
                s.bind("init_m", ThreadX)?;
                s.bind("m", ThreadX)?;
                s.split("n", &[None, Some(4)], Remainder::Exact)?;
                s.reorder(&["k", "n_1"])?;
                s.vectorize("n_1")
            },
            // init and compute are bound; act stays a single work-item.
            ranges: &[
                ([24, 1, 1], [24, 1, 1]),
                ([24, 1, 1], [24, 1, 1]),
                ([1, 1, 1], [1, 1, 1]),
            ],
        },
        GpuCase {
            name: "fc: tail split init (extent `24 - 20` folded), guard split m",
            spec: "fc:M=24,K=20,N=8",
            schedule: |s| {
                s.split("init_m", &[None, Some(5)], Remainder::Tail)?;
                s.bind("init_m_0", BlockX)?;
                s.bind("init_m_1", ThreadX)?;
                s.bind("init_n", ThreadY)?;
                s.bind("init_m_tail", ThreadX)?;
                s.bind("init_n_tail", ThreadY)?;
                s.split("m", &[None, Some(5)], Remainder::Guard)?;
                s.bind("m_0", BlockX)?;
                s.bind("m_1", ThreadX)
            },
            ranges: &[
                ([4 * 5, 8, 1], [5, 8, 1]),
                ([4, 8, 1], [4, 8, 1]),
                ([5 * 5, 1, 1], [5, 1, 1]),
            ],
        },
        GpuCase {
            name: "bcr-fc: init and n bound, block loop serial",
            spec: "bcr-fc:M=64,K=48,N=8,block=16x16,sparsity=0.8,bias=1,act=tanh,seed=3",
            schedule: |s| {
                s.bind("init_m", BlockX)?;
                s.bind("init_n", ThreadX)?;
                s.split("n", &[None, Some(4)], Remainder::Exact)?;
                s.bind("n_0", ThreadX)?;
                s.vectorize("n_1")?;
                s.bind("act_m", BlockX)?;
                s.bind("act_n", ThreadX)
            },
            ranges: &[
                ([64 * 8, 1, 1], [8, 1, 1]),
                ([2, 1, 1], [2, 1, 1]),
                ([64 * 8, 1, 1], [8, 1, 1]),
            ],
        },
        GpuCase {
            name: "conv3x3: o on blocks, oh/ow on threads",
            spec: "conv2d:C=3,O=8,H=9,W=9,k=3,pad=1,bias=1,act=relu",
            schedule: |s| {
                // The zero-padded copy of the input: channels on blocks, rows and
                // columns (9 + 2 padding) on threads.
                s.bind("pad_c", BlockX)?;
                s.bind("pad_h", ThreadY)?;
                s.bind("pad_w", ThreadX)?;
                s.bind("init_o", BlockX)?;
                s.bind("init_oh", ThreadY)?;
                s.bind("init_ow", ThreadX)?;
                s.bind("o", BlockX)?;
                s.bind("oh", ThreadY)?;
                s.bind("ow", ThreadX)?;
                s.bind("act_o", BlockX)?;
                s.bind("act_oh", ThreadY)?;
                s.bind("act_ow", ThreadX)
            },
            ranges: &[
                ([3 * 11, 11, 1], [11, 11, 1]),
                ([8 * 9, 9, 1], [9, 9, 1]),
                ([8 * 9, 9, 1], [9, 9, 1]),
                ([8 * 9, 9, 1], [9, 9, 1]),
            ],
        },
        GpuCase {
            name: "bcr-conv1x1: init on blocks, oh/ow on threads",
            spec: "bcr-conv2d:C=16,O=16,H=6,W=8,k=1,block=8x8,sparsity=0.6,seed=4",
            schedule: |s| {
                s.bind("init_o", BlockX)?;
                s.bind("init_oh", BlockY)?;
                s.bind("init_ow", ThreadX)?;
                s.bind("oh", ThreadY)?;
                s.bind("ow", ThreadX)
            },
            ranges: &[([16 * 8, 6, 1], [8, 1, 1]), ([8, 6, 1], [8, 6, 1])],
        },
        GpuCase {
            name: "bcr-gru: gates on threads, temporaries in global memory",
            spec: "bcr-gru:hidden=16,input=12,batch=4,block=8x4,sparsity=0.6,seed=5",
            schedule: |s| {
                s.bind("gi_init_m", BlockX)?;
                s.bind("gi_init_n", ThreadX)?;
                s.bind("gh_init_m", BlockX)?;
                s.bind("gh_init_n", ThreadX)?;
                s.bind("gi_n", ThreadX)?;
                s.bind("gh_n", ThreadX)?;
                s.bind("j", BlockX)?;
                s.bind("n", ThreadX)
            },
            ranges: &[
                ([48 * 4, 1, 1], [4, 1, 1]),
                ([48 * 4, 1, 1], [4, 1, 1]),
                ([4, 1, 1], [4, 1, 1]),
                ([4, 1, 1], [4, 1, 1]),
                ([16 * 4, 1, 1], [4, 1, 1]),
            ],
        },
        GpuCase {
            name: "lstm: rows on blocks, batch on threads",
            spec: "lstm:hidden=8,input=8,batch=4,seed=6",
            schedule: |s| {
                s.bind("gi_init_m", BlockX)?;
                s.bind("gi_init_n", ThreadX)?;
                s.bind("gh_init_m", BlockX)?;
                s.bind("gh_init_n", ThreadX)?;
                s.bind("gi_m", BlockX)?;
                s.bind("gi_n", ThreadX)?;
                s.bind("gh_m", BlockX)?;
                s.bind("gh_n", ThreadX)?;
                s.bind("j", BlockX)?;
                s.bind("n", ThreadX)
            },
            ranges: &[
                ([32 * 4, 1, 1], [4, 1, 1]),
                ([32 * 4, 1, 1], [4, 1, 1]),
                ([32 * 4, 1, 1], [4, 1, 1]),
                ([32 * 4, 1, 1], [4, 1, 1]),
                ([8 * 4, 1, 1], [4, 1, 1]),
            ],
        },
    ]
}

#[test]
fn gpu_schedules_match_interpreter() {
    let dev = device();
    for c in gpu_cases() {
        let w = Workload::from_spec_str(c.spec).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        (c.schedule)(&mut s).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let p = emit_program(s.func(), "k", &Target::OpenCl { fp16: false })
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        if c.spec.starts_with("bcr-fc") || c.spec.starts_with("conv2d") {
            // Every element is owned by one work-item: no barrier in the serial loops.
            assert!(!p.source.contains("barrier("), "{}:\n{}", c.name, p.source);
        }
        let ranges: Vec<([usize; 3], [usize; 3])> =
            p.launches.iter().map(|l| (l.global, l.local)).collect();
        assert_eq!(ranges, c.ranges, "{}", c.name);
        let n = check(&dev, c.name, s.func(), &args_of(&w, &s));
        assert_eq!(n, c.ranges.len());
    }
}

#[test]
fn bcr_block_loop_cannot_be_bound() {
    // Different BCR blocks write the same output rows: `b` is not independent.
    let w = Workload::from_spec_str(
        "bcr-fc:M=64,K=48,N=8,block=16x16,sparsity=0.8,bias=1,act=tanh,seed=3",
    )
    .unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    let e = s.bind("b", ForKind::BlockX).unwrap_err().to_string();
    assert!(e.contains("`b`"), "{e}");
    let e = s.bind("i", ForKind::ThreadX).unwrap_err().to_string();
    assert!(e.contains("`i`"), "{e}");
}

#[test]
fn fp16_kernels_pass_clang_syntax_check() {
    let dir = std::env::temp_dir().join(format!("grim-opencl-fp16-{}", std::process::id()));
    let target = Target::OpenCl { fp16: true };
    let mut vector_loops = 0;
    for c in gpu_cases() {
        let w = Workload::from_spec_str(c.spec).unwrap();
        let mut s = Schedule::from_workload(&w).unwrap();
        (c.schedule)(&mut s).unwrap();
        let p = emit_program(s.func(), "k", &target).unwrap();
        assert!(p.fp16);
        assert!(p
            .source
            .starts_with("#pragma OPENCL EXTENSION cl_khr_fp16 : enable"));
        vector_loops += p.source.matches("convert_half4(vload4").count();
        clang_syntax_check(&p.source, &dir).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
    for c in corpus::corpus() {
        let p = emit_program(&c.func, "k", &target).unwrap();
        clang_syntax_check(&p.source, &dir).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
    assert!(vector_loops > 0, "no half4 vector loop was emitted");
    // The check does reject broken code.
    assert!(clang_syntax_check("__kernel void k() { half4 x = nope; }", &dir).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fp16_needs_cl_khr_fp16_on_the_device() {
    let dev = device();
    if dev.has_fp16() {
        return; // nothing to check on a device that has it
    }
    let w = Workload::from_spec_str("fc:M=8,K=8,N=4").unwrap();
    let s = Schedule::from_workload(&w).unwrap();
    let e = check_against_interpreter(
        s.func(),
        &args_of(&w, &s),
        &Target::OpenCl { fp16: true },
        &dev,
        TOL,
        &protocol(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cl_khr_fp16"), "{e}");
}

/// A hand-written kernel with a `__local` array filled by one thread loop and read by
/// another with a smaller extent (barrier between them, guard on the second).
const SHARED: &str = r#"fn shared_sum(X: in f32[8, 4], Y: out f32[8, 4]) {
  block_x for (bx, 0, 8) {
    alloc s: f32[4] shared {
      thread_x for (tx, 0, 4) {
        s[tx] = X[bx, tx] * 2.0;
      }
      thread_x for (t2, 0, 2) {
        Y[bx, t2] = s[3 - t2] + s[t2];
        Y[bx, t2 + 2] = s[t2 + 2] - s[1 - t2];
      }
    }
  }
}
"#;

#[test]
fn shared_memory_barrier_and_guard() {
    let f = tir::parse_function(SHARED).unwrap();
    let p = emit_program(&f, "shared_sum", &Target::OpenCl { fp16: false }).unwrap();
    assert!(p.source.contains("__local float b_s[4];"), "{}", p.source);
    assert!(
        p.source.contains("if (get_local_id(0) < 2)"),
        "{}",
        p.source
    );
    assert!(
        !p.source.contains("if (get_local_id(0) < 4)"),
        "{}",
        p.source
    );
    assert!(
        p.source.contains("barrier(CLK_LOCAL_MEM_FENCE"),
        "{}",
        p.source
    );
    assert_eq!(p.launches.len(), 1);
    assert_eq!(p.launches[0].name, "grim_kernel_shared_sum");
    assert_eq!(
        (p.launches[0].global, p.launches[0].local),
        ([32, 1, 1], [4, 1, 1])
    );
    let x: Vec<f32> = (0..32).map(|i| i as f32 * 0.25 - 3.0).collect();
    let mut args = BTreeMap::new();
    args.insert("X".to_string(), Tensor::f32(vec![8, 4], x).unwrap());
    check(&device(), "shared", &f, &args);
}

/// Thread `t` of iteration `k` updates what thread `t + 1` updated in iteration `k - 1`:
/// the serial loop needs a barrier at the end of every iteration.
const SHIFT: &str = r#"fn shift(X: in f32[4], Y: out f32[8]) {
  for (k, 0, 4) {
    thread_x for (t, 0, 4) {
      Y[t + k] = Y[t + k] + X[t] * 2.0;
    }
  }
}
"#;

#[test]
fn serial_loop_around_threads_gets_a_barrier_when_needed() {
    let f = tir::parse_function(SHIFT).unwrap();
    let p = emit_program(&f, "shift", &Target::OpenCl { fp16: false }).unwrap();
    assert_eq!(p.source.matches("barrier(").count(), 1, "{}", p.source);
    let mut args = BTreeMap::new();
    args.insert(
        "X".to_string(),
        Tensor::f32(vec![4], vec![1.0, -2.0, 3.5, 0.25]).unwrap(),
    );
    check(&device(), "shift", &f, &args);
}

fn emit_err(text: &str) -> String {
    let f = tir::parse_function(text).unwrap_or_else(|e| panic!("{e}"));
    match emit_program(&f, "bad", &Target::OpenCl { fp16: false }) {
        Err(e @ CodegenError::Unsupported { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error kind: {e}"),
        Ok(p) => panic!("accepted:\n{}", p.source),
    }
}

#[test]
fn bad_schedules_name_the_loop() {
    // Shared allocation at function level.
    let e = emit_err(
        "fn f(X: in f32[4], Y: out f32[4]) {\n  alloc s: f32[4] shared {\n    thread_x for (t, 0, 4) {\n      Y[t] = X[t];\n    }\n  }\n}\n",
    );
    assert!(e.contains("loop `s`") && e.contains("block-bound"), "{e}");
    // Shared allocation outside the block-bound loop of its kernel.
    let e = emit_err(
        "fn f(X: in f32[8], Y: out f32[8]) {\n  for (k, 0, 1) {\n    alloc s: f32[4] shared {\n      block_x for (b, 0, 2) {\n        thread_x for (t, 0, 4) {\n          Y[b * 4 + t] = X[b * 4 + t];\n        }\n      }\n    }\n  }\n}\n",
    );
    assert!(
        e.contains("loop `k`") && e.contains("shared allocation `s`"),
        "{e}"
    );
    // Shared allocation inside a thread-bound loop.
    let e = emit_err(
        "fn f(X: in f32[8], Y: out f32[8]) {\n  block_x for (b, 0, 2) {\n    thread_x for (t, 0, 4) {\n      alloc s: f32[1] shared {\n        Y[b * 4 + t] = X[b * 4 + t];\n      }\n    }\n  }\n}\n",
    );
    assert!(e.contains("loop `t`") && e.contains("thread-bound"), "{e}");
    // A private allocation around a thread-bound loop.
    let e = emit_err(
        "fn f(X: in f32[8], Y: out f32[8]) {\n  block_x for (g, 0, 2) {\n    alloc t: f32[4] local {\n      thread_x for (a, 0, 4) {\n        t[a] = X[g * 4 + a];\n      }\n      thread_x for (b, 0, 4) {\n        Y[g * 4 + b] = t[3 - b];\n      }\n    }\n  }\n}\n",
    );
    assert!(
        e.contains("loop `a`") && e.contains("private allocation `t`"),
        "{e}"
    );
    // Non-constant bound extent.
    let e = emit_err(
        "fn f(X: in f32[8], N: in i32[1], Y: out f32[8]) {\n  thread_x for (t, 0, N[0]) {\n    Y[t] = X[t];\n  }\n}\n",
    );
    assert!(
        e.contains("loop `t`") && e.contains("non-constant extent"),
        "{e}"
    );
    // A serial loop around a block-bound loop.
    let e = emit_err(
        "fn f(X: in f32[8], Y: out f32[8]) {\n  for (k, 0, 2) {\n    block_x for (b, 0, 8) {\n      Y[b] = Y[b] + X[b];\n    }\n  }\n}\n",
    );
    assert!(e.contains("loop `b`") && e.contains("`k`"), "{e}");
    // A store every work-item would run.
    let e = emit_err(
        "fn f(X: in f32[8], Y: out f32[8]) {\n  block_x for (b, 0, 2) {\n    Y[0] = 1.0;\n    thread_x for (t, 0, 4) {\n      Y[b * 4 + t] = X[b * 4 + t];\n    }\n  }\n}\n",
    );
    assert!(e.contains("loop `b`") && e.contains("store to `Y`"), "{e}");
}

#[test]
fn target_strings_round_trip() {
    for s in ["opencl", "opencl:fp16", "host", "aarch64-neon:cortex-a55"] {
        let t: Target = s.parse().unwrap();
        assert_eq!(t.to_string(), s);
    }
    assert_eq!(
        "opencl".parse::<Target>().unwrap(),
        Target::OpenCl { fp16: false }
    );
    assert!(!Target::OpenCl { fp16: true }.neon());
    assert!("opencl:fp32".parse::<Target>().is_err());
    // The C paths refuse an OpenCL target.
    let w = Workload::from_spec_str("fc:M=8,K=8,N=4").unwrap();
    let s = Schedule::from_workload(&w).unwrap();
    assert!(codegen::c_emit::emit_kernel(s.func(), "0", &Target::OpenCl { fp16: false }).is_err());
}

#[test]
fn no_platform_is_missing_tool_naming_the_packages() {
    if std::env::var_os("GRIM_OPENCL_NO_PLATFORM_CHILD").is_some() {
        // Child: the ICD loader sees no vendor file, hence no platform.
        let e = OpenClDevice::open(None).unwrap_err();
        assert!(matches!(e, CodegenError::MissingTool { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("pocl-opencl-icd") && msg.contains("ocl-icd-opencl-dev"),
            "{msg}"
        );
        return;
    }
    // Parent: the ICD loader reads its configuration once per process, so run this
    // test again in a child process with an empty vendor directory.
    let empty = std::env::temp_dir().join(format!("grim-no-icd-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "no_platform_is_missing_tool_naming_the_packages",
            "--test-threads=1",
        ])
        .env("GRIM_OPENCL_NO_PLATFORM_CHILD", "1")
        .env("OCL_ICD_VENDORS", &empty)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}
