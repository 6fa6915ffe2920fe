//! The measurement binary: many candidate kernels in one C file with a `main` that
//! runs one of them on inputs read from a file, writes its outputs, and times it.
//!
//! Command line: `BINARY INDEX INPUT OUTPUT NUMBER REPEAT MIN_REPEAT_MS`.
//! - `INPUT` holds every parameter of candidate `INDEX` in order, raw little-endian
//!   (`f32` or `i32`), outputs included (zeros);
//! - the kernel runs once; its output parameters, in order, are written to `OUTPUT`;
//! - then one warm-up run and `REPEAT` timed samples of `NUMBER` runs each, `NUMBER`
//!   doubled until a sample lasts at least `MIN_REPEAT_MS` (as TVM's
//!   `min_repeat_ms`); the last line on stdout is
//!   `GRIM-TIMING median min mean stddev number repeat threads` in seconds per run,
//!   `threads` being OpenMP's thread count for parallel loops (1 without OpenMP).
//!
//! With `REPEAT = 0` the binary instead runs the kernel exactly `NUMBER` more times
//! after the first run and prints nothing (used to count instructions).
//!
//! Exit status: 0 on success, 2 bad arguments, 3 I/O error, 4 the kernel reported an
//! allocation failure.

use crate::c_emit::{c_elem_type, emit_kernel, kernel_symbol, prelude};
use crate::error::CodegenError;
use crate::target::Target;
use std::fmt::Write as _;
use tir::{Function, ParamKind};

/// One candidate of a batch: a scheduled function.
pub struct Candidate<'f> {
    /// The scheduled function.
    pub func: &'f Function,
}

/// Generates the C source of a measurement binary holding `candidates` (in order;
/// candidate `i` is run by `INDEX = i`).
pub fn measurement_source(
    candidates: &[Candidate<'_>],
    target: &Target,
) -> Result<String, CodegenError> {
    let mut s = prelude(target);
    s.push_str("#include <stdio.h>\n#include <string.h>\n#include <time.h>\n");
    s.push_str("#ifdef _OPENMP\n#include <omp.h>\n#endif\n\n");
    for (i, c) in candidates.iter().enumerate() {
        s.push_str(&emit_kernel(c.func, &i.to_string(), target)?);
        s.push('\n');
        // A uniform entry point taking the argument array.
        let _ = writeln!(s, "static int grim_entry_{i}(void** a) {{");
        let args: Vec<String> = c
            .func
            .params
            .iter()
            .enumerate()
            .map(|(k, p)| format!("({}*)a[{k}]", c_elem_type(p.dtype)))
            .collect();
        let _ = writeln!(
            s,
            "  return {}({});\n}}",
            kernel_symbol(&i.to_string()),
            args.join(", ")
        );
        let sizes: Vec<String> = c
            .func
            .params
            .iter()
            .map(|p| format!("{}u", p.len() * p.dtype.size_bytes()))
            .collect();
        let outs: Vec<&str> = c
            .func
            .params
            .iter()
            .map(|p| {
                if p.kind == ParamKind::Output {
                    "1"
                } else {
                    "0"
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "static const size_t grim_sizes_{i}[] = {{{}0u}};\nstatic const int grim_outs_{i}[] = {{{}0}};\n",
            sizes.iter().map(|x| format!("{x}, ")).collect::<String>(),
            outs.iter().map(|x| format!("{x}, ")).collect::<String>()
        );
    }
    s.push_str("typedef struct { int (*entry)(void**); int nparams; const size_t* sizes; const int* outs; } grim_candidate;\n");
    s.push_str("static const grim_candidate grim_candidates[] = {\n");
    for (i, c) in candidates.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {{grim_entry_{i}, {}, grim_sizes_{i}, grim_outs_{i}}},",
            c.func.params.len()
        );
    }
    let _ = writeln!(
        s,
        "  {{0, 0, 0, 0}}\n}};\nstatic const int grim_ncandidates = {};\n",
        candidates.len()
    );
    s.push_str(MAIN);
    Ok(s)
}

const MAIN: &str = r#"
static double grim_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int grim_cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s INDEX INPUT OUTPUT NUMBER REPEAT MIN_REPEAT_MS\n", argv[0]);
    return 2;
  }
  int idx = atoi(argv[1]);
  long number = atol(argv[4]);
  long repeat = atol(argv[5]);
  double min_ms = atof(argv[6]);
  if (idx < 0 || idx >= grim_ncandidates || number < 1 || repeat < 0 || repeat > 100000) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  const grim_candidate* c = &grim_candidates[idx];
  void* args[4096];
  if (c->nparams > 4096) return 2;
  FILE* in = fopen(argv[2], "rb");
  if (!in) { perror(argv[2]); return 3; }
  for (int k = 0; k < c->nparams; ++k) {
    size_t bytes = c->sizes[k];
    /* 64-byte aligned, so vector loops take the same alignment path on every run,
       wherever the heap lies. */
    args[k] = aligned_alloc(64, bytes ? (bytes + 63) / 64 * 64 : 64);
    if (!args[k]) return 3;
    if (bytes && fread(args[k], 1, bytes, in) != bytes) {
      fprintf(stderr, "%s: short read for parameter %d\n", argv[2], k);
      return 3;
    }
  }
  fclose(in);
  if (c->entry(args) != 0) return 4;
  FILE* out = fopen(argv[3], "wb");
  if (!out) { perror(argv[3]); return 3; }
  for (int k = 0; k < c->nparams; ++k) {
    if (c->outs[k] && c->sizes[k] && fwrite(args[k], 1, c->sizes[k], out) != c->sizes[k]) return 3;
  }
  if (fclose(out) != 0) return 3;
  if (repeat == 0) { /* counting mode: exactly NUMBER more runs, no timing code */
    for (long r = 0; r < number; ++r) c->entry(args);
    return 0;
  }
  if (c->entry(args) != 0) return 4; /* warm-up */
  for (;;) {
    double t0 = grim_now();
    for (long r = 0; r < number; ++r) c->entry(args);
    double dt = grim_now() - t0;
    if (dt * 1000.0 >= min_ms || number >= (1L << 30)) break;
    number *= 2;
  }
  double* samples = (double*)malloc(sizeof(double) * (size_t)repeat);
  if (!samples) return 3;
  for (long s = 0; s < repeat; ++s) {
    double t0 = grim_now();
    for (long r = 0; r < number; ++r) c->entry(args);
    samples[s] = (grim_now() - t0) / (double)number;
  }
  double mean = 0, var = 0;
  for (long s = 0; s < repeat; ++s) mean += samples[s];
  mean /= (double)repeat;
  for (long s = 0; s < repeat; ++s) var += (samples[s] - mean) * (samples[s] - mean);
  double stddev = repeat > 1 ? sqrt(var / (double)(repeat - 1)) : 0.0;
  qsort(samples, (size_t)repeat, sizeof(double), grim_cmp);
  double median = repeat % 2 ? samples[repeat / 2] : 0.5 * (samples[repeat / 2 - 1] + samples[repeat / 2]);
#ifdef _OPENMP
  int threads = omp_get_max_threads();
#else
  int threads = 1;
#endif
  printf("GRIM-TIMING %.9e %.9e %.9e %.9e %ld %ld %d\n", median, samples[0], mean, stddev, number, repeat, threads);
  return 0;
}
"#;
