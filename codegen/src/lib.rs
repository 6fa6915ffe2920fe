//! # codegen
//!
//! Turns a scheduled [`tir`] function into C (NEON intrinsics for `aarch64-neon`,
//! portable C for the host), builds it into a measurement binary, and runs it
//! natively or under qemu-aarch64, checked against the reference interpreter.
//!
//! - [`target`]: targets as data (`host`, `aarch64-neon:MCPU`).
//! - [`c_emit`]: the C emitter; [`neon`]: NEON vector loops.
//! - [`harness`]: the measurement binary's `main` (warm-up, `number x repeat` timed
//!   runs with a minimum repeat time, outputs and timings written out), many
//!   candidates per binary so a tuning batch costs one compiler start.
//! - [`toolchain`]: compiler drivers (host `cc`, `aarch64-linux-gnu-gcc`) and
//!   runners (native, `qemu-aarch64 -cpu ...`).
//! - [`insn_count`]: retired instruction counts under qemu via a TCG plugin.
//! - [`run`]: writing inputs, running a candidate with a timeout, reading outputs and
//!   timings back, and comparing with the interpreter.
#![warn(missing_docs)]

pub mod c_emit;
pub mod error;
pub mod harness;
pub mod insn_count;
pub mod neon;
pub mod run;
pub mod target;
pub mod toolchain;

pub use error::CodegenError;
pub use target::Target;
