//! # schedule
//!
//! Schedule primitives that transform a [`tir`] function, and the trace that records them.
//!
//! This crate will own (see issue "Schedule primitives and replayable traces"):
//! - loop transformations: split, fuse, reorder; for-kinds: unroll, vectorize, parallel,
//!   bind to GPU thread axes;
//! - cache_read / cache_write, compute_at / compute_inline, decompose_reduction;
//! - the BCR primitives that make GRIM fast: row reordering, column reordering,
//!   load-redundancy elimination and block tiling;
//! - the trace: primitive applications with their sampled decisions, serializable to
//!   JSON and replayable deterministically.
//!
//! Nothing is implemented yet: the crate exists so the workspace layout states the
//! architecture (`tir <- schedule <- codegen <- tuner`).
#![warn(missing_docs)]
