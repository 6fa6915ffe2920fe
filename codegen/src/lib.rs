//! # codegen
//!
//! Turns a scheduled [`tir`] function into C (NEON intrinsics for `aarch64-neon`,
//! portable C for the host), builds it into a measurement binary, and runs it
//! natively or under qemu-aarch64, checked against the reference interpreter.
//!
//! - [`target`]: targets as data (`host`, `aarch64-neon:MCPU`, `opencl`, `opencl:fp16`).
//! - [`c_emit`]: the C emitter; [`neon`]: NEON vector loops; [`row_fma`]: padded BCR
//!   rows' multiply-adds in AVX-512/AVX2 intrinsics; [`scratch`]: which heap
//!   scratch buffers are kept from one call to the next.
//! - [`harness`]: the measurement binary's `main` (warm-up, `number x repeat` timed
//!   runs with a minimum repeat time, outputs and timings written out), many
//!   candidates per binary so a tuning batch costs one compiler start.
//! - [`toolchain`]: compiler drivers (host `cc`, `aarch64-linux-gnu-gcc`) and
//!   runners (native, `qemu-aarch64 -cpu ...`).
//! - [`insn_count`]: retired instruction counts under qemu via a TCG plugin.
//! - [`run`]: writing inputs, running a candidate with a timeout, reading outputs and
//!   timings back, and comparing with the interpreter.
//! - [`opencl_emit`]: the OpenCL C emitter (bound loops to work-groups/work-items,
//!   `__local` arrays, `float4`/`half4` vector loops, one kernel per bound stage);
//!   [`opencl_run`]: building and running it through an OpenCL driver (pocl here, a
//!   phone's GPU driver there) with profiling-event timing, and
//!   [`opencl_run::check_against_interpreter`] for callers such as the CLI;
//!   [`opencl_harness`]: the device-side C program that runs one OpenCL program on a
//!   phone over adb, loading the device's `libOpenCL.so` with `dlopen`.
#![warn(missing_docs)]

pub mod avx2;
pub mod avx512;
pub mod avx512_masked;
pub mod c_emit;
pub mod error;
pub mod harness;
pub mod insn_count;
pub mod neon;
pub mod neon_masked;
pub mod opencl_emit;
pub mod opencl_harness;
pub mod opencl_run;
pub mod row_fma;
pub mod run;
pub mod scratch;
pub mod target;
pub mod toolchain;

pub use error::CodegenError;
pub use target::Target;
