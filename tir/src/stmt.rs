//! Statements of the loop-level IR.

use crate::dtype::DType;
use crate::expr::Expr;
use serde::{Deserialize, Serialize};

/// How a `for` loop is to be executed. The interpreter runs every kind serially (the
/// kinds only promise that iterations are independent or may be expanded); code
/// generators honour them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ForKind {
    /// Plain sequential loop.
    Serial,
    /// Iterations may run on different threads.
    Parallel,
    /// The loop is mapped onto SIMD lanes.
    Vectorized,
    /// The loop is fully expanded.
    Unrolled,
    /// GPU: iterations map to work-groups along x (`get_group_id(0)`, CUDA `blockIdx.x`).
    BlockX,
    /// GPU: iterations map to work-groups along y.
    BlockY,
    /// GPU: iterations map to work-groups along z.
    BlockZ,
    /// GPU: iterations map to work-items of a group along x (`get_local_id(0)`,
    /// CUDA `threadIdx.x`).
    ThreadX,
    /// GPU: iterations map to work-items of a group along y.
    ThreadY,
    /// GPU: iterations map to work-items of a group along z.
    ThreadZ,
}

impl ForKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ForKind; 10] = [
        ForKind::Serial,
        ForKind::Parallel,
        ForKind::Vectorized,
        ForKind::Unrolled,
        ForKind::BlockX,
        ForKind::BlockY,
        ForKind::BlockZ,
        ForKind::ThreadX,
        ForKind::ThreadY,
        ForKind::ThreadZ,
    ];

    /// True for the GPU thread-axis bindings.
    pub fn is_thread_binding(self) -> bool {
        matches!(
            self,
            ForKind::BlockX
                | ForKind::BlockY
                | ForKind::BlockZ
                | ForKind::ThreadX
                | ForKind::ThreadY
                | ForKind::ThreadZ
        )
    }

    /// The keyword used in the text format.
    pub fn name(self) -> &'static str {
        match self {
            ForKind::Serial => "serial",
            ForKind::Parallel => "parallel",
            ForKind::Vectorized => "vectorized",
            ForKind::Unrolled => "unrolled",
            ForKind::BlockX => "block_x",
            ForKind::BlockY => "block_y",
            ForKind::BlockZ => "block_z",
            ForKind::ThreadX => "thread_x",
            ForKind::ThreadY => "thread_y",
            ForKind::ThreadZ => "thread_z",
        }
    }

    /// Looks a kind up by its keyword.
    pub fn from_name(name: &str) -> Option<ForKind> {
        ForKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Where a local buffer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemScope {
    /// Private to the executing thread (registers / stack).
    Local,
    /// Shared by a GPU work-group (`__local` in OpenCL).
    Shared,
    /// Heap memory visible to every thread.
    Global,
}

impl MemScope {
    /// Every scope, in a fixed order.
    pub const ALL: [MemScope; 3] = [MemScope::Local, MemScope::Shared, MemScope::Global];

    /// The keyword used in the text format.
    pub fn name(self) -> &'static str {
        match self {
            MemScope::Local => "local",
            MemScope::Shared => "shared",
            MemScope::Global => "global",
        }
    }

    /// Looks a scope up by its keyword.
    pub fn from_name(name: &str) -> Option<MemScope> {
        MemScope::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Stmt {
    /// `for var in [min, min + extent)`: `min` and `extent` are `Int` expressions
    /// evaluated once before the loop; they may load from index buffers (BCR loops have
    /// data-dependent extents). An extent `<= 0` runs no iteration.
    For {
        /// Loop variable, bound in `body`.
        var: String,
        /// First value of `var`.
        min: Expr,
        /// Number of iterations.
        extent: Expr,
        /// Execution kind.
        kind: ForKind,
        /// Loop body.
        body: Box<Stmt>,
    },
    /// Statements run in order.
    Seq(Vec<Stmt>),
    /// `let var = value` bound in `body`.
    Let {
        /// Bound variable.
        var: String,
        /// Its value, evaluated once.
        value: Expr,
        /// Scope of the binding.
        body: Box<Stmt>,
    },
    /// `if cond { then } else { otherwise }`.
    If {
        /// `Bool` condition.
        cond: Expr,
        /// Taken when `cond` is true.
        then: Box<Stmt>,
        /// Taken when `cond` is false, if present.
        otherwise: Option<Box<Stmt>>,
    },
    /// `buffer[indices] = value`.
    Store {
        /// Buffer name (a parameter or an allocated local).
        buffer: String,
        /// One `Int` index per dimension.
        indices: Vec<Expr>,
        /// Stored value; its type matches the buffer's element type.
        value: Expr,
    },
    /// `prefetch buffer[indices]`: a hint that the element will be read soon, so the
    /// memory system may start fetching its cache line (C's `__builtin_prefetch`). It
    /// changes no value; its indices must be in bounds, as a load's.
    Prefetch {
        /// Buffer name (a parameter or an allocated local).
        buffer: String,
        /// One `Int` index per dimension.
        indices: Vec<Expr>,
    },
    /// Allocates a buffer visible in `body`. Its contents start as zero.
    Allocate {
        /// Buffer name.
        name: String,
        /// Element type.
        dtype: DType,
        /// Shape (row-major).
        shape: Vec<usize>,
        /// Memory scope.
        scope: MemScope,
        /// Scope of the buffer.
        body: Box<Stmt>,
    },
}

impl Stmt {
    /// A `for` loop.
    pub fn for_(
        var: impl Into<String>,
        min: Expr,
        extent: Expr,
        kind: ForKind,
        body: Stmt,
    ) -> Stmt {
        Stmt::For {
            var: var.into(),
            min,
            extent,
            kind,
            body: Box::new(body),
        }
    }

    /// A serial loop `for var in [0, extent)`.
    pub fn serial(var: impl Into<String>, extent: Expr, body: Stmt) -> Stmt {
        Stmt::for_(var, Expr::Int(0), extent, ForKind::Serial, body)
    }

    /// A store `buffer[indices] = value`.
    pub fn store(buffer: impl Into<String>, indices: Vec<Expr>, value: Expr) -> Stmt {
        Stmt::Store {
            buffer: buffer.into(),
            indices,
            value,
        }
    }

    /// `let var = value in body`.
    pub fn let_(var: impl Into<String>, value: Expr, body: Stmt) -> Stmt {
        Stmt::Let {
            var: var.into(),
            value,
            body: Box::new(body),
        }
    }

    /// `if cond { then }`.
    pub fn if_(cond: Expr, then: Stmt) -> Stmt {
        Stmt::If {
            cond,
            then: Box::new(then),
            otherwise: None,
        }
    }
}
