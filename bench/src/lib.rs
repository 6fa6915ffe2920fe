//! # grim-bench
//!
//! The side-by-side benchmark of `bench/run`: grim's tuned BCR kernels against grim's
//! dense kernels, dense frameworks (ONNX Runtime, MNN, LiteRT, tract, optionally TVM),
//! block-sparse LiteRT and CSR kernels (scipy and a plain C kernel), on exactly the
//! same weights and inputs, in one run, as ratios.
//!
//! - [`plan`]: the workloads (families x sparsities x block sizes);
//! - [`export`]: each case's effective weights, inputs and reference output as raw
//!   `f32` files for every system; [`reference`]: the reference computations;
//! - [`grim_run`]: grim's rows (tuned schedules from the tuning database);
//! - [`csr_c`]: the C CSR kernel; [`protocol`]: the common timing protocol;
//! - [`results`]: result records (JSON Lines); [`report`] and [`plot`]: the markdown
//!   tables, goals, roofline, CSV and SVG figures; [`systems`]: the systems;
//! - [`ceilings`]: the machine's multiply-add peak and read bandwidths for the roofline;
//!   [`c_program`]: building the benchmark's own C programs;
//! - [`arm`]: dense vs BCR vs CSR for aarch64 by qemu instruction counts and
//!   llvm-mca cycle estimates.
#![warn(missing_docs)]

pub mod arm;
pub mod c_program;
pub mod ceilings;
pub mod csr_c;
pub mod error;
pub mod export;
pub mod grim_run;
pub mod plan;
pub mod plot;
pub mod protocol;
pub mod reference;
pub mod report;
pub mod results;
pub mod systems;

pub use error::BenchError;
