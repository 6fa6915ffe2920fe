//! The corpus of workloads x schedules that generated code is checked on.

use codegen::harness::{measurement_source, Candidate};
use codegen::run::{max_error, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner};
use codegen::Target;
use schedule::{Remainder, Schedule};
use std::collections::BTreeMap;
use std::time::Duration;
use tir::workload::Workload;
use tir::{Function, ParamKind, Tensor};

/// A named schedule of a workload.
pub struct Case {
    pub name: String,
    pub workload: Workload,
    pub func: Function,
    pub weights: BTreeMap<String, Tensor>,
}

fn case(
    name: &str,
    w: &Workload,
    f: impl FnOnce(&mut Schedule) -> Result<(), schedule::ScheduleError>,
) -> Case {
    let mut s = Schedule::from_workload(w).unwrap();
    f(&mut s).unwrap_or_else(|e| panic!("{name}: {e}"));
    Case {
        name: name.to_string(),
        workload: w.clone(),
        func: s.func().clone(),
        weights: s.weights().clone(),
    }
}

/// Dense and BCR FC, conv2d 3x3 and 1x1, GRU, LSTM, each with several schedules.
pub fn corpus() -> Vec<Case> {
    let mut out = Vec::new();
    let fc = Workload::from_spec_str("fc:M=24,K=20,N=8,bias=1,act=relu").unwrap();
    out.push(case("fc default", &fc, |_| Ok(())));
    out.push(case("fc split+vectorize+unroll+parallel", &fc, |s| {
        s.split("n", &[None, Some(4)], Remainder::Exact)?;
        s.reorder(&["k", "n_1"])?;
        s.vectorize("n_1")?;
        s.split("k", &[None, Some(4)], Remainder::Exact)?;
        s.unroll("k_1")?;
        s.parallel("m")?;
        s.split("init_n", &[None, Some(4)], Remainder::Exact)?;
        s.vectorize("init_n_1")
    }));
    // K = 20 in 8 lanes: two vector steps and a tail of 4.
    out.push(case("fc reduction in 8 lanes + parallel m", &fc, |s| {
        s.vectorize_reduction("k", 8)?;
        s.parallel("m")
    }));
    let bfc = Workload::from_spec_str(
        "bcr-fc:M=64,K=48,N=8,block=16x16,sparsity=0.8,bias=1,act=tanh,seed=3",
    )
    .unwrap();
    out.push(case("bcr-fc default", &bfc, |_| Ok(())));
    out.push(case("bcr-fc vectorize n, tail-split rows", &bfc, |s| {
        s.split("n", &[None, Some(4)], Remainder::Exact)?;
        s.vectorize("n_1")?;
        s.split("i", &[None, Some(2)], Remainder::Tail)?;
        s.parallel("init_m")
    }));
    out.push(case(
        "bcr-fc row reordering + LRE + vectorize + partition",
        &bfc,
        |s| {
            s.reorder_rows("W", schedule::RowOrder::BlockColumn)?;
            s.eliminate_redundant_loads("W")?;
            s.partition_block_rows("W")?;
            s.split("n", &[None, Some(4)], Remainder::Exact)?;
            s.vectorize("n_1")
        },
    ));
    out.push(case("bcr-fc column reordering + tile blocks", &bfc, |s| {
        s.reorder_columns("W", schedule::ColumnOrder::FirstUse)?;
        s.tile_blocks("W", 2, Some(4), Remainder::Tail).map(|_| ())
    }));
    out.push(case(
        "bcr-fc LRE + accumulate rows + tail-split rows",
        &bfc,
        |s| {
            s.eliminate_redundant_loads("W")?;
            s.accumulate_at("j", "Y")?;
            s.split("i", &[None, Some(2)], Remainder::Tail).map(|_| ())
        },
    ));
    let bfc1 =
        Workload::from_spec_str("bcr-fc:M=40,K=36,N=1,block=8x12,sparsity=0.7,seed=2").unwrap();
    out.push(case("bcr-fc N=1 guard-split cols", &bfc1, |s| {
        s.split("j", &[None, Some(3)], Remainder::Guard).map(|_| ())
    }));
    out.push(case("bcr-fc N=1 vectorize rows by 4", &bfc1, |s| {
        s.vectorize_rows("W", 4).map(|_| ())
    }));
    out.push(case(
        "bcr-fc row reordering + LRE + vectorize rows by 8 + partition",
        &bfc,
        |s| {
            s.reorder_rows("W", schedule::RowOrder::BlockColumn)?;
            s.eliminate_redundant_loads("W")?;
            s.vectorize_rows("W", 8)?;
            s.partition_block_rows("W").map(|_| ())
        },
    ));
    // 64x48 in 16x16 blocks: every block keeps the same rows and columns.
    out.push(case(
        "bcr-fc vectorize rows by 4 + partition + specialize offsets",
        &bfc,
        |s| {
            s.vectorize_rows("W", 4)?;
            s.partition_block_rows("W")?;
            s.specialize_offsets("W")
        },
    ));
    // Register tiles: 3 rows x 20 output columns (16-lane piece + 4-lane tail), rest
    // rows one at a time; then over a padded conv's output rows, partitioned.
    out.push(case(
        "bcr-fc register tile 3 rows x 16 lanes + specialize",
        &Workload::from_spec_str(
            "bcr-fc:M=64,K=48,N=20,bias=1,act=relu,block=16x16,sparsity=0.8,seed=5",
        )
        .unwrap(),
        |s| {
            s.register_tile("W", 3, 16)?;
            s.specialize_offsets("W")
        },
    ));
    out.push(case(
        "bcr-conv3x3 partition + register tile 2 rows x 4 lanes",
        &Workload::from_spec_str(
            "bcr-conv2d:C=8,O=16,H=7,W=9,k=3,pad=1,bias=1,block=8x8,sparsity=0.7,seed=6",
        )
        .unwrap(),
        |s| {
            s.partition_block_rows("W")?;
            s.register_tile("W", 2, 4).map(|_| ())
        },
    ));
    // Block-row windows: one-byte (`u8`) selectors as a weight parameter of the
    // kernel (the plain loop on aarch64 and in OpenCL, AVX-512 on the host).
    out.push(case(
        "bcr-fc masked rows by 8 + windows (u8 selectors) + specialize",
        &Workload::from_spec_str("bcr-fc:M=64,K=48,N=1,block=16x16,sparsity=0.9,seed=7").unwrap(),
        |s| {
            s.vectorize_rows_masked("W", 8)?;
            s.window_block_rows("W")?;
            s.specialize_offsets("W")
        },
    ));
    // Masked rows without windows, 16 lanes over 10 kept rows (whole vector loads and
    // the lane mask on AVX2 and NEON, masked loads only at the values' end).
    out.push(case(
        "bcr-fc masked rows by 16 + specialize",
        &Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=32x32,sparsity=0.9,seed=10").unwrap(),
        |s| {
            s.vectorize_rows_masked("W", 16)?;
            s.specialize_offsets("W")
        },
    ));
    // Value prefetch (a `prefetch` statement: `__builtin_prefetch` in C, a comment in
    // OpenCL) a few entries ahead, clamped to the last entry and value.
    out.push(case(
        "bcr-fc masked rows by 8 + windows + prefetch values + specialize",
        &Workload::from_spec_str("bcr-fc:M=64,K=48,N=1,block=16x16,sparsity=0.8,seed=8").unwrap(),
        |s| {
            s.vectorize_rows_masked("W", 8)?;
            s.window_block_rows("W")?;
            s.prefetch_values("W", 256)?;
            s.specialize_offsets("W")
        },
    ));
    // A conv's column decoding read from a per-entry `i32` table under a register tile.
    out.push(case(
        "bcr-conv3x3 register tile 2 rows x 8 lanes + column-decoding table + specialize",
        &Workload::from_spec_str(
            "bcr-conv2d:C=8,O=16,H=7,W=10,k=3,pad=1,bias=1,block=8x8,sparsity=0.6,seed=9",
        )
        .unwrap(),
        |s| {
            s.register_tile("W", 2, 8)?;
            s.tabulate_column_decoding("W")?;
            s.specialize_offsets("W")
        },
    ));
    // The same conv's 7 output rows in parallel parts of 3, 3 and 1 rows around the
    // block loop (the tile's tail nest restricted alike), with a stride-2 conv too.
    out.push(case(
        "bcr-conv3x3 register tile 3 rows x 8 lanes + table + output rows in 3 parallel parts",
        &Workload::from_spec_str(
            "bcr-conv2d:C=8,O=16,H=7,W=10,k=3,pad=1,bias=1,block=8x8,sparsity=0.6,seed=9",
        )
        .unwrap(),
        |s| {
            s.register_tile("W", 3, 8)?;
            s.tabulate_column_decoding("W")?;
            s.partition_output_rows("W", 3)?;
            s.specialize_offsets("W")
        },
    ));
    out.push(case(
        "bcr-conv3x3 stride 2, output rows in 2 parallel parts",
        &Workload::from_spec_str(
            "bcr-conv2d:C=4,O=8,H=7,W=7,k=3,stride=2,pad=1,block=8x12,sparsity=0.5,seed=1",
        )
        .unwrap(),
        |s| s.partition_output_rows("W", 2).map(|_| ()),
    ));
    let conv = Workload::from_spec_str("conv2d:C=3,O=8,H=9,W=9,k=3,pad=1,bias=1,act=relu").unwrap();
    out.push(case("conv3x3 default", &conv, |_| Ok(())));
    out.push(case("conv3x3 parallel o, vectorize init", &conv, |s| {
        s.parallel("o")?;
        s.split("init_ow", &[None, Some(4)], Remainder::Tail)?;
        s.vectorize("init_ow_1")
    }));
    let conv1 =
        Workload::from_spec_str("bcr-conv2d:C=16,O=16,H=6,W=8,k=1,block=8x8,sparsity=0.6,seed=4")
            .unwrap();
    out.push(case("bcr-conv1x1 default", &conv1, |_| Ok(())));
    out.push(case("bcr-conv1x1 vectorize ow", &conv1, |s| {
        s.vectorize("ow")
    }));
    let bconv = Workload::from_spec_str(
        "bcr-conv2d:C=4,O=8,H=7,W=7,k=3,stride=2,pad=1,block=8x12,sparsity=0.5,seed=1",
    )
    .unwrap();
    out.push(case("bcr-conv3x3 stride 2", &bconv, |_| Ok(())));
    out.push(case("bcr-conv1x1 LRE", &conv1, |s| {
        s.eliminate_redundant_loads("W").map(|_| ())
    }));
    // The LRE buffer of this conv (kept columns x 64 x 64 positions) is over the stack
    // limit, so it is allocated on the heap inside the parallel partition loop.
    let bconv_big = Workload::from_spec_str(
        "bcr-conv2d:C=8,O=16,H=64,W=64,k=3,pad=1,block=8x8,sparsity=0.5,seed=3",
    )
    .unwrap();
    out.push(case(
        "bcr-conv3x3 LRE heap buffer in a parallel loop",
        &bconv_big,
        |s| {
            s.eliminate_redundant_loads("W")?;
            let p = s.partition_block_rows("W")?;
            assert!(p.parallel, "the partition loop is proven parallel");
            Ok(())
        },
    ));
    out.push(case("bcr-conv3x3 specialize offsets", &bconv_big, |s| {
        s.specialize_offsets("W")
    }));
    out.push(case("bcr-conv3x3 accumulate rows", &bconv, |s| {
        s.accumulate_at("j", "Y").map(|_| ())
    }));
    let gru =
        Workload::from_spec_str("bcr-gru:hidden=16,input=12,batch=4,block=8x4,sparsity=0.6,seed=5")
            .unwrap();
    out.push(case("bcr-gru default", &gru, |_| Ok(())));
    out.push(case("bcr-gru row reordering + LRE", &gru, |s| {
        s.reorder_rows("W_ih", schedule::RowOrder::RowCount)?;
        s.eliminate_redundant_loads("W_ih")?;
        s.eliminate_redundant_loads("W_hh").map(|_| ())
    }));
    out.push(case("bcr-gru vectorize rows by 4", &gru, |s| {
        s.vectorize_rows("W_ih", 4)?;
        s.vectorize_rows("W_hh", 4).map(|_| ())
    }));
    out.push(case(
        "bcr-gru vectorize rows by 4 + specialize offsets",
        &gru,
        |s| {
            for w in ["W_ih", "W_hh"] {
                s.vectorize_rows(w, 4)?;
                s.specialize_offsets(w)?;
            }
            Ok(())
        },
    ));
    // Kept weights spread unevenly over the blocks: each entry's code versioned by
    // its kept-column count (an if-chain with the count a constant in each copy).
    out.push(case(
        "bcr-conv3x3 spread: register tile 2 rows x 8 lanes + table + versioned by column count",
        &Workload::from_spec_str(
            "bcr-conv2d:C=8,O=16,H=7,W=10,k=3,pad=1,bias=1,block=8x8,sparsity=0.6,spread=blocks,seed=9",
        )
        .unwrap(),
        |s| {
            s.register_tile("W", 2, 8)?;
            s.tabulate_column_decoding("W")?;
            s.version_column_counts("W")
        },
    ));
    out.push(case(
        "bcr-fc spread: masked rows by 16 + windows + prefetch + versioned by column count",
        &Workload::from_spec_str(
            "bcr-fc:M=64,K=48,N=1,block=16x16,sparsity=0.8,spread=blocks,seed=8",
        )
        .unwrap(),
        |s| {
            s.vectorize_rows_masked("W", 16)?;
            s.window_block_rows("W")?;
            s.prefetch_values("W", 256)?;
            s.version_column_counts("W")
        },
    ));
    out.push(case(
        "bcr-gru spread: vectorize rows by 4 + versioned by column count",
        &Workload::from_spec_str(
            "bcr-gru:hidden=16,input=12,batch=4,block=8x4,sparsity=0.6,spread=blocks,seed=5",
        )
        .unwrap(),
        |s| {
            for w in ["W_ih", "W_hh"] {
                s.vectorize_rows(w, 4)?;
                s.version_column_counts(w)?;
            }
            Ok(())
        },
    ));
    let dgru = Workload::from_spec_str("gru:hidden=16,input=12,batch=1,seed=5").unwrap();
    out.push(case("gru reductions in 4 lanes", &dgru, |s| {
        s.vectorize_reduction("gi_k", 4)?;
        s.vectorize_reduction("gh_k", 4).map(|_| ())
    }));
    out.push(case("bcr-gru vectorize batch", &gru, |s| {
        s.vectorize("gi_n")?;
        s.vectorize("gh_n")?;
        s.vectorize("n")
    }));
    let lstm = Workload::from_spec_str("lstm:hidden=8,input=8,batch=4,seed=6").unwrap();
    out.push(case("lstm default", &lstm, |_| Ok(())));
    out.push(case("lstm parallel+vectorize", &lstm, |s| {
        s.parallel("j")?;
        s.vectorize("gi_init_n")
    }));
    out
}

/// Builds the whole corpus into one binary for `target` and checks every candidate
/// against the interpreter on `runner`; returns the candidate names checked.
pub fn check_corpus(target: &Target, runner: &Runner, tolerance: f64) -> Vec<String> {
    let cases = corpus();
    let cands: Vec<Candidate<'_>> = cases.iter().map(|c| Candidate { func: &c.func }).collect();
    let src = measurement_source(&cands, target).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "grim-codegen-{}-{}",
        target.to_string().replace(':', "-"),
        std::process::id()
    ));
    let bin = build_binary(&src, &dir, target, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    let protocol = Protocol {
        number: 1,
        repeat: 1,
        min_repeat_ms: 0.0,
        timeout: Duration::from_secs(120),
        threads: None,
    };
    let mut names = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let inputs = c.workload.random_inputs(17);
        let mut args = inputs.clone();
        args.extend(c.weights.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The interpreter on the scheduled function with its (possibly rewritten) weights.
        let mut iargs = args.clone();
        for p in c.func.params.iter().filter(|p| p.kind == ParamKind::Output) {
            iargs.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
        }
        tir::interp::run(&c.func, &mut iargs).unwrap();
        let want: BTreeMap<String, Tensor> = iargs
            .into_iter()
            .filter(|(k, _)| c.func.param(k).is_some_and(|p| p.kind == ParamKind::Output))
            .collect();
        let got = run_candidate(&bin, runner, i, &c.func, &args, &protocol, &dir)
            .unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let (abs, rel) = max_error(&got.outputs, &want).expect("same outputs");
        assert!(
            rel <= tolerance,
            "{} on {target}: max abs error {abs}, rel {rel}",
            c.name
        );
        assert!(got.timing.median > 0.0);
        names.push(c.name.clone());
    }
    let _ = std::fs::remove_dir_all(&dir);
    names
}
