//! # tuner
//!
//! The search for fast schedules, and the `grim-tune` command-line program.
//!
//! This crate will own (see issues "The tuner and grim-tune tune" and "Tuning on a phone
//! over adb"): search spaces derived from a workload and its BCR pattern, search
//! strategies (random, evolutionary with a learned cost model), parallel candidate
//! building, progress reporting, runners (local host, adb device, qemu-aarch64), the
//! measurement protocol, watchdogs and resumable runs.
//!
//! Today it holds the `grim-tune` front end with the commands that work on the
//! foundation: [`show`] (a workload's pattern statistics, key and lowered IR) and
//! [`check_ir`] (parse and verify a `.tir` file), and [`rules`] (list, check and
//! explain the e-graph rewrite rules).
#![warn(missing_docs)]

pub mod commands;
pub mod rules;

pub use commands::{check_ir, show, CliError};
