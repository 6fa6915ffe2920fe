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
//! Today it holds the `grim-tune` front end: [`show`] (a workload's pattern
//! statistics, key and lowered IR), [`check_ir`] (parse and verify a `.tir` file),
//! [`build_check`] (`build` and `check` generated code against the interpreter,
//! locally, under qemu or on OpenCL), [`tune_cmd`] (the tuning run; [`tune`] the
//! search loop, [`confirm`] the confirmation round that ends it), [`db`] (the
//! database commands), [`rules`] (list, check and explain the e-graph rewrite
//! rules) and [`adb`] (the adb runner and `grim-tune devices`).
#![warn(missing_docs)]

pub mod adb;
pub mod build_check;
pub mod commands;
pub mod confirm;
pub mod convert_cmd;
pub mod cost_model;
pub mod db;
pub mod db_store;
pub mod features;
pub mod measure;
pub mod model_cmd;
pub mod model_run;
pub mod pipeline;
pub mod plot;
pub mod rules;
pub mod space;
pub mod space_bcr;
pub mod tune;
pub mod tune_cmd;

pub use commands::{check_ir, show, CliError};
