//! # tir — the grim tensor IR
//!
//! Everything else in grim stands on this crate:
//! - [`dtype`], [`expr`], [`stmt`], [`function`]: the loop-level IR (functions with
//!   typed buffer parameters; for loops of kind serial/parallel/vectorized/unrolled,
//!   sequences, lets, ifs, stores, local allocations; scalar expressions with indirect
//!   loads through index buffers and math intrinsics);
//! - [`bcr`], [`prune`](mod@prune), [`csr`]: the BCR (block-based column-row) sparse
//!   matrix format, BCR pruning of dense weights, and CSR for baselines;
//! - [`printer`] and [`parser`]: a text format that round-trips;
//! - [`interp`]: the reference interpreter every generated kernel is checked against;
//! - [`spec`], [`workload`], [`lower`]: workload spec strings (`bcr-fc:M=...`), the
//!   deterministic weights they stand for, and their lowering to a naive loop nest;
//! - [`hash`]: the workload key (structure hash plus sparsity-pattern hash) that keys the
//!   tuning database;
//! - [`egraph`]: the e-graph layer on [`egg`]: a language for tir expressions (index and
//!   tensor level), rewrite rules loaded from text files (`tir/rules/*.rules`), a
//!   soundness checker, and saturation with cost-based extraction as a compile pass.
#![warn(missing_docs)]

pub mod bcr;
pub mod csr;
pub mod dtype;
pub mod egraph;
pub mod expr;
pub mod function;
pub mod hash;
pub mod interp;
mod lexer;
pub mod lower;
pub mod matrix;
pub mod parser;
pub mod printer;
pub mod prune;
pub mod prune_spread;
pub mod rng;
pub mod spec;
pub mod stmt;
pub mod tensor;
pub mod verify;
pub mod visit;
pub mod workload;

pub use bcr::{BcrBlock, BcrError, BcrMatrix, BlockShape, ParseBlockShapeError};
pub use csr::{CsrError, CsrMatrix};
pub use dtype::{DType, ScalarType};
pub use expr::{BinOp, Expr, Intrinsic, UnOp};
pub use function::{Function, Param, ParamKind};
pub use hash::WorkloadKey;
pub use interp::{run, InterpError, Interpreter};
pub use matrix::Matrix;
pub use parser::{parse_expr, parse_function, parse_stmt, ParseError};
pub use printer::{print_expr, print_function, print_stmt};
pub use prune::{prune, PruneConfig, PruneError, PruneRate};
pub use prune_spread::{prune_across_blocks, Spread};
pub use spec::{SpecError, WorkloadSpec};
pub use stmt::{ForKind, MemScope, Stmt};
pub use tensor::{Tensor, TensorData};
pub use verify::{verify, VerifyError};
