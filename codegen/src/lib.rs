//! # codegen
//!
//! Turns a scheduled [`tir`] function into source code and binaries.
//!
//! This crate will own (see issue "Codegen"):
//! - C for ARM CPUs with NEON intrinsics (`aarch64-neon` targets with a `-mcpu`), and
//!   portable C for the host machine;
//! - OpenCL C for mobile GPUs (bound loops become work-item indices, `__local` buffers);
//! - build drivers for the host compiler and the aarch64 cross compiler, batch builds of
//!   many candidates in one translation unit, and the measurement binary that runs on a
//!   phone, under qemu-aarch64 or natively.
//!
//! Nothing is implemented yet.
#![warn(missing_docs)]
