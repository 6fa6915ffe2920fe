//! # grim-tests
//!
//! Workspace-level integration tests live in `tests/tests/`: end-to-end paths from a
//! workload spec to a lowered, interpreted and checked result. Later issues add tuned,
//! compiled and device-run paths, golden IR and adb over loopback.
#![warn(missing_docs)]
