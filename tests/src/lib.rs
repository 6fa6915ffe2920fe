//! # grim-tests
//!
//! Workspace-level integration tests live in `tests/tests/`: end-to-end paths from a
//! workload spec to a lowered, interpreted and checked result, and the offline path of
//! a team shipping a tuning database (tune under qemu, export, import, apply the best
//! schedule, generate aarch64 code and check it).
#![warn(missing_docs)]
