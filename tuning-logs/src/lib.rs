//! # tuning-logs
//!
//! The tuning database: users tune for hours on a phone and ship the result, so
//! losing or mixing up records is the worst failure this crate can have.
//!
//! - [`record`]: one [`Record`] per measured candidate: workload key and portable spec,
//!   [`Target`], [`DeviceIdentity`], the trace, the [`Outcome`] (times or an
//!   [`ErrorKind`] with its message), grim version, format version and time.
//! - [`db`]: the sled [`Database`]; the key layout in [`key`] makes every
//!   (workload, target, device) query a prefix scan, so targets and devices never mix.
//!   Queries: [`Database::best_k`], [`Database::records_of_workload`],
//!   [`Database::error_counts`], [`Database::is_measured`]. [`Database::insert`]
//!   returns only once the record is on disk.
//! - [`apply`]: [`apply_best`] replays the best trace, or says explicitly that there is
//!   none ([`ApplyBest::NoRecord`]).
//! - [`prefer`]: which record is the best ([`preferred`]): current code first, and a
//!   tuning run's confirmation round (its best candidates re-measured side by side)
//!   supersedes the single measurements before it.
//! - [`export`]: portable JSON Lines files with a versioned header; validated import
//!   (all or nothing, or skipping bad lines), export and merge.
//! - [`summary`]: per-group statistics for `grim-tune db show`.
//!
//! Data from a newer format (a record, a file, a database) is refused with both
//! versions named; a database held by another process is refused at once
//! ([`DbError::Locked`]).
//!
//! ```
//! use tuning_logs::{apply_best, ApplyBest, Database, DeviceIdentity, Measurement, Outcome, Query, Record, Target, WorkloadRef};
//! use tir::workload::Workload;
//! use schedule::Schedule;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(&dir.path().join("db")).unwrap();
//! let w = Workload::from_spec_str("fc:M=16,K=16,N=4").unwrap();
//! let (target, device) = (Target::HOST, DeviceIdentity::host());
//! assert!(matches!(apply_best(&db, &w, &target, &device).unwrap(), ApplyBest::NoRecord(_)));
//!
//! let mut s = Schedule::from_workload(&w).unwrap();
//! s.parallel("m").unwrap();
//! let time = Measurement { median_s: 1e-6, min_s: 9e-7, mean_s: 1.1e-6, stddev_s: 1e-7, number: 100, repeat: 5, instructions: None };
//! let record = Record::new(WorkloadRef::of(&w), target.clone(), device.clone(), s.trace().clone(), Outcome::Measured(time));
//! db.insert(&record).unwrap(); // on disk when this returns
//!
//! let key = w.key();
//! let q = Query { workload: &key, target: &target, device: &device };
//! assert!(db.is_measured(&q, s.trace()).unwrap());
//! match apply_best(&db, &w, &target, &device).unwrap() {
//!     ApplyBest::Tuned { schedule, .. } => assert_eq!(schedule.func(), s.func()),
//!     ApplyBest::NoRecord(none) => panic!("{none}"),
//! }
//! ```
#![warn(missing_docs)]

pub mod apply;
pub mod db;
pub mod device;
pub mod error;
pub mod export;
pub mod key;
pub mod path;
pub mod prefer;
pub mod record;
pub mod summary;
pub mod target;

pub use apply::{apply_best, workload_of, ApplyBest, NoRecord};
pub use db::{Database, Query, Stored};
pub use device::DeviceIdentity;
pub use error::{DbError, ExportError, LineError, RecordError};
pub use export::{export, import, merge, ExportFilter, ImportReport, MergeReport};
pub use path::default_db_path;
pub use prefer::preferred;
pub use record::{
    Confirmation, ErrorKind, Failure, Measurement, Outcome, Record, WorkloadRef, FORMAT_VERSION,
    GRIM_VERSION,
};
pub use summary::{summarize, GroupSummary};
pub use target::Target;
