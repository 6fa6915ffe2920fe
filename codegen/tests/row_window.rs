//! Block-row windows compiled for the host: the AVX-512 lane permutation (8-lane,
//! 16-lane and two-register 32-lane sums; windows of 16 to 64 rows) with the rows'
//! zero-masked multiply-adds, the AVX2 branch (one to four 8-lane registers of sums,
//! masked loads at the values' end) and the plain loops of their `#else` branches, all
//! compute the workload's reference, at one thread and with parallel partitions at
//! two (each branch is run where the host has its instructions).

use codegen::harness::{measurement_source, Candidate};
use codegen::run::{max_error, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner};
use codegen::Target;
use schedule::Schedule;
use std::time::Duration;
use tir::workload::Workload;

/// The fewest of 8, 16, 32 lanes holding every entry's rows of `weight`.
fn lanes_for(s: &Schedule, weight: &str) -> i64 {
    let p = s.weights()[&format!("{weight}_row_ptr")].as_i32().unwrap();
    let rows = p.windows(2).map(|w| i64::from(w[1] - w[0])).max().unwrap();
    [8, 16, 32].into_iter().find(|l| *l >= rows).unwrap()
}

/// The windowed schedule of `spec` (every BCR weight), partitioned in parallel first
/// when `parallel`, rows in masked lanes.
fn windowed(spec: &str, parallel: bool) -> (Workload, Schedule) {
    windowed_with(spec, parallel, false, true)
}

/// The windowed schedule of `spec`, partitioned in parallel first when `parallel`,
/// with rows in padded lanes when `padded` (else masked), and the kept inputs gathered
/// once per entry when `shared_gathers` (load-redundancy elimination).
fn windowed_with(
    spec: &str,
    parallel: bool,
    padded: bool,
    shared_gathers: bool,
) -> (Workload, Schedule) {
    let w = Workload::from_spec_str(spec).unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    let weights: Vec<String> = w
        .func
        .params
        .iter()
        .filter_map(|p| p.name.strip_suffix("_row_ptr").map(str::to_string))
        .collect();
    for x in &weights {
        if shared_gathers {
            s.eliminate_redundant_loads(x).unwrap();
        }
        let lanes = lanes_for(&s, x);
        if padded {
            s.vectorize_rows(x, lanes).unwrap();
        } else {
            s.vectorize_rows_masked(x, lanes).unwrap();
        }
        if parallel {
            s.partition_block_rows(x).unwrap();
        }
        s.window_block_rows(x).unwrap();
        s.specialize_offsets(x).unwrap();
    }
    (w, s)
}

/// Builds `src`, runs it with `threads` and returns the largest relative error
/// against the reference.
fn error_of(src: &str, w: &Workload, s: &Schedule, threads: u32) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let bin = build_binary(src, dir.path(), &Target::Host, Duration::from_secs(120)).unwrap();
    let mut args = w.random_inputs(5);
    args.extend(s.weights().clone());
    let protocol = Protocol {
        number: 1,
        repeat: 1,
        min_repeat_ms: 0.0,
        timeout: Duration::from_secs(60),
        threads: Some(threads),
    };
    let r = run_candidate(
        &bin,
        &Runner::Native,
        0,
        s.func(),
        &args,
        &protocol,
        dir.path(),
    )
    .unwrap();
    let want = w.interpret(&w.random_inputs(5)).unwrap();
    max_error(&r.outputs, &want).unwrap().1
}

/// Whether the host's compiler targets AVX2 and FMA with `-march=native` (x86 with both).
fn host_has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[test]
fn windowed_kernels_compute_the_reference_with_avx512_avx2_and_plain_loops() {
    let cases = [
        // 10 kept rows per 32x32 block: 16 lanes, windows of 32.
        (
            "bcr-fc:M=256,K=192,N=1,block=32x32,sparsity=0.9,seed=2",
            "_mm512_permutexvar_ps",
        ),
        // 5 rows per 16x16 block: 8 lanes loaded in 256 bits and cast to 512, windows
        // of 16 in one 512-bit permutation.
        (
            "bcr-fc:M=256,K=192,N=1,block=16x16,sparsity=0.9,seed=3",
            "_mm512_castps256_ps512",
        ),
        // 20 rows per 64x16 block: 32 lanes in two registers, windows of 64.
        (
            "bcr-fc:M=256,K=192,N=1,block=64x16,sparsity=0.9,seed=4",
            "_mm512_permutex2var_ps",
        ),
        // Lanes not filled (11 of 16), a bias and an activation after the product.
        (
            "bcr-fc:M=96,K=80,N=1,bias=1,act=relu,block=16x16,sparsity=0.5,seed=6",
            "_mm512_permutexvar_ps",
        ),
        // A GRU step's two weights.
        (
            "bcr-gru:input=64,hidden=64,batch=1,block=16x16,sparsity=0.85,seed=7",
            "_permutexvar_ps",
        ),
    ];
    for (spec, intrinsic) in cases {
        for parallel in [false, true] {
            let (w, s) = windowed(spec, parallel);
            let f = s.func().clone();
            let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
            assert!(src.contains(intrinsic), "{spec}: no {intrinsic}\n{src}");
            // The rows' masked multiply-adds: zero-masked loads (see avx512_masked).
            assert!(
                src.contains("_maskz_loadu_ps(t_mask") && src.contains("_fmadd_ps("),
                "{spec}: no masked multiply-add\n{src}"
            );
            let threads = if parallel { 2 } else { 1 };
            let rel = error_of(&src, &w, &s, threads);
            assert!(rel < 1e-4, "{spec} (parallel {parallel}): {rel}");
            // The AVX2 branch (see avx2): taken here where the host has AVX2 and FMA
            // but not AVX-512; with the AVX-512 branch switched off, wherever the host
            // has AVX2.
            assert!(
                src.contains("_mm256_permutevar8x32_ps(") && src.contains("_mm256_maskload_ps("),
                "{spec}: no AVX2 branch\n{src}"
            );
            let avx2 = src.replace("#if defined(__AVX512F__) && defined(__AVX512VL__)", "#if 0");
            assert_ne!(avx2, src);
            if !host_has_avx2() {
                eprintln!("{spec}: this host has no AVX2 and FMA: the AVX2 branch is not run");
            }
            let rel = error_of(&avx2, &w, &s, threads);
            assert!(rel < 1e-4, "{spec} (AVX2, parallel {parallel}): {rel}");
            // The plain loop of the `#else` branch.
            let plain = avx2.replace("#elif defined(__AVX2__) && defined(__FMA__)", "#elif 0");
            assert_ne!(plain, avx2);
            let rel = error_of(&plain, &w, &s, threads);
            assert!(rel < 1e-4, "{spec} (plain, parallel {parallel}): {rel}");
        }
    }
}

/// Padded rows (no masks) with windows: the rows' multiply-adds are whole-vector
/// intrinsics (see codegen's row_fma; GCC 12 had turned the plain loop of a GRU's
/// windowed rows into gathers of one repeated index), and the AVX-512, AVX2 and plain
/// branches all compute the reference, with and without shared gathers.
#[test]
fn padded_windowed_rows_are_whole_vector_intrinsics_and_compute_the_reference() {
    let cases = [
        // 10 kept rows per 32x32 block: 16 padded lanes.
        (
            "bcr-fc:M=256,K=192,N=1,block=32x32,sparsity=0.9,seed=2",
            true,
        ),
        // 5 rows per 16x16 block: 8 lanes, one 256-bit register in both branches.
        (
            "bcr-fc:M=256,K=192,N=1,block=16x16,sparsity=0.9,seed=3",
            true,
        ),
        // 20 rows per 64x16 block: 32 lanes, two AVX-512 or four AVX2 registers.
        (
            "bcr-fc:M=256,K=192,N=1,block=64x16,sparsity=0.9,seed=4",
            true,
        ),
        // A GRU step's two weights, the inputs read in place (the gather case).
        (
            "bcr-gru:input=64,hidden=64,batch=1,block=32x32,sparsity=0.9,seed=7",
            false,
        ),
        (
            "bcr-gru:input=64,hidden=64,batch=1,block=16x16,sparsity=0.85,seed=7",
            true,
        ),
    ];
    for (spec, shared) in cases {
        let (w, s) = windowed_with(spec, false, true, shared);
        let f = s.func().clone();
        let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
        assert!(
            !src.contains("_maskz_loadu_ps"),
            "{spec}: masked loads\n{src}"
        );
        assert!(
            src.contains("_fmadd_ps(_mm512_loadu_ps(&b_W")
                || src.contains("_fmadd_ps(_mm256_loadu_ps(&b_W"),
            "{spec}: no whole-vector multiply-add in the AVX-512 branch\n{src}"
        );
        let rel = error_of(&src, &w, &s, 1);
        assert!(rel < 1e-4, "{spec}: {rel}");
        let avx2 = src.replace("#if defined(__AVX512F__) && defined(__AVX512VL__)", "#if 0");
        assert!(
            avx2.contains("_mm256_fmadd_ps(_mm256_loadu_ps(&b_W"),
            "{spec}: no AVX2 branch"
        );
        let rel = error_of(&avx2, &w, &s, 1);
        assert!(rel < 1e-4, "{spec} (AVX2): {rel}");
        let plain = avx2.replace("#elif defined(__AVX2__) && defined(__FMA__)", "#elif 0");
        assert_ne!(plain, avx2);
        let rel = error_of(&plain, &w, &s, 1);
        assert!(rel < 1e-4, "{spec} (plain): {rel}");
    }
}
