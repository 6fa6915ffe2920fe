//! Workload keys: what the tuning database is keyed by.
//!
//! A key has two parts:
//! - the **structure hash** of a [`Function`]: a SHA-256 over a canonical encoding of
//!   the parameters (kind, element type, shape, by position) and the body, in which
//!   every variable and every local buffer is encoded by the order of its binding
//!   (alpha-renaming invariant) and parameters by their position, so names never
//!   matter;
//! - the **pattern hash** of the BCR matrices: shape, block size and every block's kept
//!   row and column indices (not the values), so the same layer pruned to a different
//!   pattern gets a different key while retrained values keep it.
//!
//! The encoding is written out by hand (tags and little-endian integers), not derived
//! from `Debug` or serde, so it stays stable across Rust versions and machines. It
//! starts with [`KEY_FORMAT_VERSION`]; changing the encoding must bump it. Golden
//! values in the tests notice any change.

use crate::expr::{BinOp, Expr, Intrinsic, UnOp};
use crate::function::{Function, ParamKind};
use crate::stmt::{ForKind, MemScope, Stmt};
use crate::{DType, ScalarType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Version of the canonical encoding; part of every hash.
pub const KEY_FORMAT_VERSION: u32 = 1;

/// The key of a workload in the tuning database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkloadKey {
    /// Structure hash of the lowered function (16 hex digits).
    pub structure: String,
    /// Hash of the sparsity pattern (16 hex digits).
    pub pattern: String,
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.structure, self.pattern)
    }
}

/// One BCR pattern to hash: shape, block size and per-block kept local indices in grid
/// row-major order. Built by [`crate::workload`] from its BCR matrices.
pub struct PatternView<'a> {
    /// Matrix rows.
    pub rows: usize,
    /// Matrix columns.
    pub cols: usize,
    /// Block rows.
    pub block_rows: usize,
    /// Block columns.
    pub block_cols: usize,
    /// `(kept_rows, kept_cols)` of every block, grid row-major.
    pub blocks: Vec<(&'a [u32], &'a [u32])>,
}

/// An incremental canonical encoder feeding SHA-256.
struct Encoder {
    hasher: Sha256,
}

impl Encoder {
    fn new(domain: &str) -> Encoder {
        let mut e = Encoder {
            hasher: Sha256::new(),
        };
        e.u32(KEY_FORMAT_VERSION);
        e.str(domain);
        e
    }

    fn tag(&mut self, t: u8) {
        self.hasher.update([t]);
    }

    fn u32(&mut self, v: u32) {
        self.hasher.update(v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.hasher.update(v.to_le_bytes());
    }

    fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }

    fn str(&mut self, s: &str) {
        self.usize(s.len());
        self.hasher.update(s.as_bytes());
    }

    fn finish(self) -> String {
        let digest = self.hasher.finalize();
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Scopes mapping names to binding numbers, for variables and for local buffers.
struct Scopes<'f> {
    func: &'f Function,
    vars: Vec<(&'f str, u64)>,
    locals: Vec<(&'f str, u64)>,
    next_var: u64,
    next_local: u64,
}

impl<'f> Scopes<'f> {
    fn var(&self, e: &mut Encoder, name: &str) {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, id)) => {
                e.tag(0);
                e.u64(*id);
            }
            None => {
                // Unbound (an ill-formed function): fall back to the name.
                e.tag(1);
                e.str(name);
            }
        }
    }

    fn buffer(&self, e: &mut Encoder, name: &str) {
        if let Some((_, id)) = self.locals.iter().rev().find(|(n, _)| *n == name) {
            e.tag(0);
            e.u64(*id);
        } else if let Some(pos) = self.func.params.iter().position(|p| p.name == name) {
            e.tag(1);
            e.usize(pos);
        } else {
            e.tag(2);
            e.str(name);
        }
    }

    fn expr(&self, e: &mut Encoder, x: &'f Expr) {
        match x {
            Expr::Int(v) => {
                e.tag(10);
                e.u64(*v as u64);
            }
            Expr::Float(v) => {
                e.tag(11);
                e.u32(v.to_bits());
            }
            Expr::Bool(v) => {
                e.tag(12);
                e.tag(*v as u8);
            }
            Expr::Var(n) => {
                e.tag(13);
                self.var(e, n);
            }
            Expr::Binary(op, a, b) => {
                e.tag(14);
                e.tag(binop_code(*op));
                self.expr(e, a);
                self.expr(e, b);
            }
            Expr::Unary(op, a) => {
                e.tag(15);
                e.tag(match op {
                    UnOp::Not => 0,
                });
                self.expr(e, a);
            }
            Expr::Select(c, a, b) => {
                e.tag(16);
                self.expr(e, c);
                self.expr(e, a);
                self.expr(e, b);
            }
            Expr::Cast(t, a) => {
                e.tag(17);
                e.tag(scalar_code(*t));
                self.expr(e, a);
            }
            Expr::Load { buffer, indices } => {
                e.tag(18);
                self.buffer(e, buffer);
                e.usize(indices.len());
                for i in indices {
                    self.expr(e, i);
                }
            }
            Expr::Call(f, args) => {
                e.tag(19);
                e.tag(intrinsic_code(*f));
                e.usize(args.len());
                for a in args {
                    self.expr(e, a);
                }
            }
        }
    }

    fn bind_var(&mut self, name: &'f str) {
        self.vars.push((name, self.next_var));
        self.next_var += 1;
    }

    fn stmt(&mut self, e: &mut Encoder, s: &'f Stmt) {
        match s {
            Stmt::For {
                var,
                min,
                extent,
                kind,
                body,
            } => {
                e.tag(30);
                e.tag(forkind_code(*kind));
                self.expr(e, min);
                self.expr(e, extent);
                self.bind_var(var);
                self.stmt(e, body);
                self.vars.pop();
            }
            Stmt::Seq(items) => {
                e.tag(31);
                e.usize(items.len());
                for i in items {
                    self.stmt(e, i);
                }
            }
            Stmt::Let { var, value, body } => {
                e.tag(32);
                self.expr(e, value);
                self.bind_var(var);
                self.stmt(e, body);
                self.vars.pop();
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                e.tag(33);
                self.expr(e, cond);
                self.stmt(e, then);
                match otherwise {
                    Some(o) => {
                        e.tag(1);
                        self.stmt(e, o);
                    }
                    None => e.tag(0),
                }
            }
            Stmt::Store {
                buffer,
                indices,
                value,
            } => {
                e.tag(34);
                self.buffer(e, buffer);
                e.usize(indices.len());
                for i in indices {
                    self.expr(e, i);
                }
                self.expr(e, value);
            }
            Stmt::Prefetch { buffer, indices } => {
                e.tag(36);
                self.buffer(e, buffer);
                e.usize(indices.len());
                for i in indices {
                    self.expr(e, i);
                }
            }
            Stmt::Allocate {
                name,
                dtype,
                shape,
                scope,
                body,
            } => {
                e.tag(35);
                e.tag(dtype_code(*dtype));
                e.usize(shape.len());
                for d in shape {
                    e.usize(*d);
                }
                e.tag(scope_code(*scope));
                self.locals.push((name, self.next_local));
                self.next_local += 1;
                self.stmt(e, body);
                self.locals.pop();
            }
        }
    }
}

fn binop_code(op: BinOp) -> u8 {
    match op {
        BinOp::Add => 0,
        BinOp::Sub => 1,
        BinOp::Mul => 2,
        BinOp::Div => 3,
        BinOp::Mod => 4,
        BinOp::Min => 5,
        BinOp::Max => 6,
        BinOp::Eq => 7,
        BinOp::Ne => 8,
        BinOp::Lt => 9,
        BinOp::Le => 10,
        BinOp::Gt => 11,
        BinOp::Ge => 12,
        BinOp::And => 13,
        BinOp::Or => 14,
    }
}

fn intrinsic_code(f: Intrinsic) -> u8 {
    match f {
        Intrinsic::Exp => 0,
        Intrinsic::Tanh => 1,
        Intrinsic::Sigmoid => 2,
        Intrinsic::Sqrt => 3,
        Intrinsic::Abs => 4,
    }
}

fn scalar_code(t: ScalarType) -> u8 {
    match t {
        ScalarType::Int => 0,
        ScalarType::F32 => 1,
        ScalarType::Bool => 2,
    }
}

fn dtype_code(t: DType) -> u8 {
    match t {
        DType::F32 => 0,
        DType::I32 => 1,
        DType::U8 => 2,
    }
}

fn forkind_code(k: ForKind) -> u8 {
    match k {
        ForKind::Serial => 0,
        ForKind::Parallel => 1,
        ForKind::Vectorized => 2,
        ForKind::Unrolled => 3,
        ForKind::BlockX => 4,
        ForKind::BlockY => 5,
        ForKind::BlockZ => 6,
        ForKind::ThreadX => 7,
        ForKind::ThreadY => 8,
        ForKind::ThreadZ => 9,
    }
}

fn scope_code(s: MemScope) -> u8 {
    match s {
        MemScope::Local => 0,
        MemScope::Shared => 1,
        MemScope::Global => 2,
    }
}

fn param_kind_code(k: ParamKind) -> u8 {
    match k {
        ParamKind::Input => 0,
        ParamKind::Output => 1,
        ParamKind::Weight => 2,
    }
}

/// The structure hash of a function (16 hex digits): equal for functions that differ
/// only in the names of the function, its parameters, variables and local buffers.
pub fn structure_hash(f: &Function) -> String {
    let mut e = Encoder::new("grim.tir.function");
    e.usize(f.params.len());
    for p in &f.params {
        e.tag(param_kind_code(p.kind));
        e.tag(dtype_code(p.dtype));
        e.usize(p.shape.len());
        for d in &p.shape {
            e.usize(*d);
        }
    }
    let mut scopes = Scopes {
        func: f,
        vars: Vec::new(),
        locals: Vec::new(),
        next_var: 0,
        next_local: 0,
    };
    scopes.stmt(&mut e, &f.body);
    e.finish()
}

/// The pattern hash of a list of BCR patterns (16 hex digits). An empty list (a dense
/// workload) has a fixed hash of its own.
pub fn pattern_hash(patterns: &[PatternView<'_>]) -> String {
    let mut e = Encoder::new("grim.tir.bcr-pattern");
    e.usize(patterns.len());
    for p in patterns {
        e.usize(p.rows);
        e.usize(p.cols);
        e.usize(p.block_rows);
        e.usize(p.block_cols);
        e.usize(p.blocks.len());
        for (rows, cols) in &p.blocks {
            e.usize(rows.len());
            for r in rows.iter() {
                e.u32(*r);
            }
            e.usize(cols.len());
            for c in cols.iter() {
                e.u32(*c);
            }
        }
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::Param;

    fn sample(names: [&str; 4]) -> Function {
        let [x, y, i, buf] = names;
        Function {
            name: format!("f_{x}"),
            params: vec![
                Param::new(x, ParamKind::Input, DType::F32, vec![8]),
                Param::new(y, ParamKind::Output, DType::F32, vec![8]),
            ],
            body: Stmt::Allocate {
                name: buf.into(),
                dtype: DType::F32,
                shape: vec![8],
                scope: MemScope::Local,
                body: Box::new(Stmt::serial(
                    i,
                    Expr::Int(8),
                    Stmt::Seq(vec![
                        Stmt::store(buf, vec![Expr::var(i)], Expr::load(x, vec![Expr::var(i)])),
                        Stmt::store(y, vec![Expr::var(i)], Expr::load(buf, vec![Expr::var(i)])),
                    ]),
                )),
            },
        }
    }

    #[test]
    fn names_do_not_matter() {
        let a = sample(["X", "Y", "i", "tmp"]);
        let b = sample(["inp", "out", "k", "cache"]);
        assert_eq!(structure_hash(&a), structure_hash(&b));
    }

    #[test]
    fn structure_matters() {
        let a = sample(["X", "Y", "i", "tmp"]);
        let mut b = a.clone();
        b.params[0].shape = vec![9];
        assert_ne!(structure_hash(&a), structure_hash(&b));
        let mut c = a.clone();
        if let Stmt::Allocate { scope, .. } = &mut c.body {
            *scope = MemScope::Global;
        }
        assert_ne!(structure_hash(&a), structure_hash(&c));
    }

    #[test]
    fn shadowing_is_resolved_to_the_nearest_binding() {
        // for i { for j { Y[i] = X[j] } } vs for i { for j { Y[j] = X[j] } }
        let mk = |outer_idx: &str| Function {
            name: "f".into(),
            params: vec![
                Param::new("X", ParamKind::Input, DType::F32, vec![4]),
                Param::new("Y", ParamKind::Output, DType::F32, vec![4]),
            ],
            body: Stmt::serial(
                "i",
                Expr::Int(4),
                Stmt::serial(
                    "j",
                    Expr::Int(4),
                    Stmt::store(
                        "Y",
                        vec![Expr::var(outer_idx)],
                        Expr::load("X", vec![Expr::var("j")]),
                    ),
                ),
            ),
        };
        assert_ne!(structure_hash(&mk("i")), structure_hash(&mk("j")));
    }

    #[test]
    fn pattern_hash_sees_indices() {
        let r = [0u32, 2];
        let p = |c: &'static [u32]| PatternView {
            rows: 4,
            cols: 4,
            block_rows: 4,
            block_cols: 4,
            blocks: vec![(&r[..], c)],
        };
        let a = pattern_hash(&[p(&[1])]);
        let b = pattern_hash(&[p(&[3])]);
        assert_ne!(a, b);
        assert_ne!(pattern_hash(&[]), a);
        assert_eq!(a.len(), 16);
    }
}
