//! The cost model used by extraction, and static operation counts of functions.
//!
//! # Index level ([`IndexCost`])
//! The cost of a term is the sum over its nodes of
//!
//! | node | cost |
//! |---|---|
//! | literal, variable, buffer name | 0 |
//! | `+ - * min max`, comparisons, `&& \|\| !`, `select`, casts, intrinsics | 1 |
//! | `/ %` | 4 (integer division is several times slower than an add on ARM cores) |
//! | `load` | 8 (memory traffic: one 4-byte element, plus its address arithmetic) |
//!
//! Extraction minimises this (a tree cost: a shared subterm counts each time it is
//! used, which matches code that recomputes it). The pass keeps the original
//! expression unless the extracted one is strictly cheaper.
//!
//! # Tensor level ([`TensorCost`])
//! Operation count plus memory traffic in elements, from the shapes of the e-class
//! analysis: `matmul` of `m x k` by `k x n` costs `m*k*n` multiply-adds plus
//! `m*k + k*n + m*n` elements moved; `gather-rows`/`gather-cols`/`transpose`/
//! concatenations read and write every output element (2 per element); `scatter-rows`
//! of an `r x c` matrix reads it and accumulates into the output (`3*r*c`); elementwise
//! ops cost one operation per element plus inputs and output moved (`4` per element for
//! `ew-add`/`ew-mul`, `3` for unary ones), except that an `ew-add` of sums of
//! `scatter-rows` results costs `3*s` where `s` is the smaller operand's number of
//! scattered elements ([`Facts::scattered`](super::analysis::Facts)): kernels
//! accumulate each block's rows into one output buffer in place; `rows`, `cols`,
//! `len`, literals and symbols are free. A node whose operands are all compile-time
//! constants (weights, BCR index arrays) costs 0: it is folded when the kernel is
//! built (for example stacking the kept values of rows that share a gather).
//!
//! # Functions ([`FunctionCost`])
//! Static counts over every expression of a function: arithmetic operations, of which
//! divisions/modulos, loads, and the [`IndexCost`] weighted sum.

use super::analysis::{Shape, TirEGraph};
use super::lang::TirLang;
use crate::expr::{BinOp, Expr};
use crate::function::Function;
use crate::stmt::Stmt;
use egg::{CostFunction, Id, Language};
use std::fmt;

/// The index-level cost of one node, children excluded (see the module docs).
pub fn index_node_cost(n: &TirLang) -> u64 {
    match n {
        TirLang::Int(_) | TirLang::Float(_) | TirLang::Bool(_) | TirLang::Symbol(_) => 0,
        TirLang::Div(_) | TirLang::Mod(_) => 4,
        TirLang::Load(_) => 8,
        _ => 1,
    }
}

/// The index-level cost function.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexCost;

impl CostFunction<TirLang> for IndexCost {
    type Cost = u64;
    fn cost<C>(&mut self, enode: &TirLang, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        enode.fold(index_node_cost(enode), |acc, id| {
            acc.saturating_add(costs(id))
        })
    }
}

/// The tree cost of a whole term under [`IndexCost`].
pub fn index_cost(e: &egg::RecExpr<TirLang>) -> u64 {
    let nodes = e.as_ref();
    let mut c: Vec<u64> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let v = n.fold(index_node_cost(n), |acc, id| {
            acc.saturating_add(c[usize::from(id)])
        });
        c.push(v);
    }
    c.last().copied().unwrap_or(0)
}

/// The tensor-level cost function; reads shapes and constness from the e-graph.
pub struct TensorCost<'a> {
    /// The e-graph whose analysis gives shapes.
    pub egraph: &'a TirEGraph,
}

fn elems(s: Option<Shape>) -> u64 {
    match s {
        Some(Shape::Mat(r, c)) => (r * c) as u64,
        Some(Shape::Idx(l)) => l as u64,
        None => 0,
    }
}

impl TensorCost<'_> {
    /// The cost of one node, children excluded.
    pub fn node_cost(&self, n: &TirLang) -> u64 {
        use TirLang as L;
        let kids = n.children();
        if n.is_leaf() {
            return 0;
        }
        if kids.iter().all(|k| self.egraph[*k].data.konst) {
            return 0;
        }
        let sh = |i: usize| self.egraph[kids[i]].data.shape;
        match n {
            L::MatMul(_) => match (sh(0), sh(1)) {
                (Some(Shape::Mat(m, k)), Some(Shape::Mat(_, nn))) => {
                    let (m, k, nn) = (m as u64, k as u64, nn as u64);
                    m * k * nn + m * k + k * nn + m * nn
                }
                _ => 1,
            },
            L::GatherRows(_)
            | L::GatherCols(_)
            | L::Transpose(_)
            | L::VCat(_)
            | L::HCat(_)
            | L::ICat(_)
            | L::BcrMask(_)
            | L::InvPerm(_) => {
                let out = match n {
                    L::GatherRows(_) => match (sh(0), sh(1)) {
                        (Some(Shape::Mat(_, c)), Some(Shape::Idx(l))) => (l * c) as u64,
                        _ => 1,
                    },
                    L::GatherCols(_) => match (sh(0), sh(1)) {
                        (Some(Shape::Mat(r, _)), Some(Shape::Idx(l))) => (r * l) as u64,
                        _ => 1,
                    },
                    L::VCat(_) | L::HCat(_) | L::ICat(_) => elems(sh(0)) + elems(sh(1)),
                    _ => elems(sh(0)),
                };
                2 * out
            }
            L::ScatterRows(_) => 3 * elems(sh(0)),
            L::EwAdd(_) => {
                // Adding a sum of scattered block results accumulates in place.
                let sc = |i: usize| self.egraph[kids[i]].data.scattered;
                match (sc(0), sc(1)) {
                    (Some(a), Some(b)) => 3 * a.min(b),
                    (Some(a), None) | (None, Some(a)) => 3 * a,
                    (None, None) => 4 * elems(sh(0)),
                }
            }
            L::EwMul(_) => 4 * elems(sh(0)),
            L::EwRelu(_) | L::EwTanh(_) => 3 * elems(sh(0)),
            L::Rows(_) | L::Cols(_) | L::Len(_) => 0,
            other => index_node_cost(other),
        }
    }
}

impl CostFunction<TirLang> for TensorCost<'_> {
    type Cost = u64;
    fn cost<C>(&mut self, enode: &TirLang, mut costs: C) -> u64
    where
        C: FnMut(Id) -> u64,
    {
        let own = self.node_cost(enode);
        enode.fold(own, |acc, id| acc.saturating_add(costs(id)))
    }
}

/// Static operation counts of a function (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionCost {
    /// Arithmetic, comparison, logic, select, cast and intrinsic operations.
    pub ops: u64,
    /// Of `ops`, integer or float divisions and modulos.
    pub divmods: u64,
    /// Loads.
    pub loads: u64,
    /// [`IndexCost`] weights summed over every expression.
    pub weighted: u64,
}

impl fmt::Display for FunctionCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ops {} (div/mod {}), loads {}, weighted cost {}",
            self.ops, self.divmods, self.loads, self.weighted
        )
    }
}

impl FunctionCost {
    /// Counts the operations of every expression of `f`.
    pub fn of(f: &Function) -> FunctionCost {
        let mut c = FunctionCost::default();
        c.stmt(&f.body);
        c
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::For {
                min, extent, body, ..
            } => {
                self.expr(min);
                self.expr(extent);
                self.stmt(body);
            }
            Stmt::Seq(items) => items.iter().for_each(|s| self.stmt(s)),
            Stmt::Let { value, body, .. } => {
                self.expr(value);
                self.stmt(body);
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => {
                self.expr(cond);
                self.stmt(then);
                if let Some(o) = otherwise {
                    self.stmt(o);
                }
            }
            Stmt::Store { indices, value, .. } => {
                indices.iter().for_each(|e| self.expr(e));
                self.expr(value);
            }
            Stmt::Prefetch { indices, .. } => indices.iter().for_each(|e| self.expr(e)),
            Stmt::Allocate { body, .. } => self.stmt(body),
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Int(_) | Expr::Float(_) | Expr::Bool(_) | Expr::Var(_) => {}
            Expr::Binary(op, a, b) => {
                self.ops += 1;
                if matches!(op, BinOp::Div | BinOp::Mod) {
                    self.divmods += 1;
                    self.weighted += 4;
                } else {
                    self.weighted += 1;
                }
                self.expr(a);
                self.expr(b);
            }
            Expr::Unary(_, a) | Expr::Cast(_, a) => {
                self.ops += 1;
                self.weighted += 1;
                self.expr(a);
            }
            Expr::Select(c, a, b) => {
                self.ops += 1;
                self.weighted += 1;
                self.expr(c);
                self.expr(a);
                self.expr(b);
            }
            Expr::Load { indices, .. } => {
                self.loads += 1;
                self.weighted += 8;
                indices.iter().for_each(|i| self.expr(i));
            }
            Expr::Call(_, args) => {
                self.ops += 1;
                self.weighted += 1;
                args.iter().for_each(|a| self.expr(a));
            }
        }
    }
}
