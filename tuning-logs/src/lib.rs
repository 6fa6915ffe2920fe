//! # tuning-logs
//!
//! The tuning database.
//!
//! This crate will own (see issue "Tuning database on sled"): one record per measured
//! candidate, keyed by the workload key from [`tir::hash`] (structure hash plus sparsity
//! pattern hash), target, device and format version; best-schedule queries; apply-best;
//! export, import and merge of portable JSON Lines files for offline schedule databases.
//!
//! Nothing is implemented yet.
#![warn(missing_docs)]
