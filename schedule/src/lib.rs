//! # schedule
//!
//! Schedule primitives that transform a [`tir`] function, and the trace that records
//! them: the language the tuner's search speaks.
//!
//! - [`Schedule`] holds a function, the weight data bound to it and the [`Trace`] of
//!   what was applied. Loops are addressed by name (lowering gives every loop a
//!   distinct name; primitives create fresh ones, e.g. `split` of `i` gives `i_0`,
//!   `i_1`).
//! - [`primitive`]: one module per family: [`primitive::loop_transformation`] (split,
//!   fuse, reorder), [`primitive::for_kind`] (unroll, vectorize, parallel, bind),
//!   [`primitive::sampling`] (sample_perfect_tile, sample_categorical),
//!   [`primitive::cache`] (cache_read, cache_write), [`primitive::compute_location`]
//!   (compute_at, compute_inline, decompose_reduction), and [`primitive::bcr`] (row
//!   and column reordering, load-redundancy elimination, row vectorization, block
//!   tiling and row partitioning of BCR weights, which also rewrite the weight data).
//! - [`region`]: the affine region analysis behind the cache and compute-location
//!   primitives.
//! - [`analysis`]: the conservative dependence analysis behind legality checks.
//! - [`trace`]: instructions with their decisions; JSON round trip; replay.
//!
//! Every primitive checks its preconditions and returns a [`ScheduleError`] naming the
//! loop and the reason; a failed primitive leaves the schedule unchanged.
//!
//! ```
//! use schedule::{Schedule, Remainder};
//! use tir::workload::Workload;
//!
//! let w = Workload::from_spec_str("fc:M=64,K=32,N=8").unwrap();
//! let mut s = Schedule::from_workload(&w).unwrap();
//! let tiles = s.split("n", &[None, Some(4)], Remainder::Exact).unwrap(); // n_0, n_1
//! s.reorder(&["k", "n_1"]).unwrap(); // m, n_0, n_1, k  ->  m, n_0, k, n_1
//! s.vectorize("n_1").unwrap();
//! s.parallel("m").unwrap();
//! assert!(s.parallel("k").is_err()); // k is a reduction loop
//! assert_eq!(tiles, ["n_0", "n_1"]);
//! let replayed = s.trace().replay(&w.func, &w.weights).unwrap();
//! assert_eq!(replayed.func(), s.func());
//! ```
#![warn(missing_docs)]

pub mod analysis;
pub mod error;
pub mod loops;
pub mod primitive;
pub mod region;
pub mod schedule;
pub mod trace;

pub use error::ScheduleError;
pub use primitive::bcr::{ColumnOrder, RowOrder};
pub use primitive::loop_transformation::Remainder;
pub use schedule::{GroupCounts, Partition, Schedule};
pub use trace::{Factor, Instruction, Trace};
