//! Program features of a scheduled function, the cost model's inputs.
//!
//! All static, computed from the IR alone (so records from the database, which store
//! traces, can be featurized after replay): loop counts per kind, log2 of constant
//! trip counts (total and of innermost loops), vector width, unroll size, loads and
//! stores (in the innermost statements and in total), indirect loads (through index
//! buffers), local allocations and their bytes, and the nesting depth.

use tir::visit::{for_each_load, for_each_stmt, stmt_exprs};
use tir::{Expr, ForKind, Function, Stmt};

/// Number of features.
pub const N_FEATURES: usize = 14;

/// The feature vector of `f`.
pub fn features(f: &Function) -> Vec<f64> {
    let mut kinds = [0f64; 4];
    let mut vec_width = 0f64;
    let mut unroll = 1f64;
    let mut loads = 0f64;
    let mut indirect = 0f64;
    let mut stores = 0f64;
    let mut allocs = 0f64;
    let mut alloc_bytes = 0f64;
    for_each_stmt(&f.body, &mut |s| {
        match s {
            Stmt::For { kind, extent, .. } => {
                let k = match kind {
                    ForKind::Serial => 0,
                    ForKind::Parallel => 1,
                    ForKind::Vectorized => 2,
                    _ => 3,
                };
                kinds[k] += 1.0;
                if let (ForKind::Vectorized, Expr::Int(e)) = (kind, extent) {
                    vec_width = vec_width.max(*e as f64);
                }
                if let (ForKind::Unrolled, Expr::Int(e)) = (kind, extent) {
                    unroll *= *e as f64;
                }
            }
            Stmt::Store { .. } => stores += 1.0,
            Stmt::Allocate { shape, .. } => {
                allocs += 1.0;
                alloc_bytes += 4.0 * shape.iter().product::<usize>() as f64;
            }
            _ => {}
        }
        for e in stmt_exprs(s) {
            for_each_load(e, &mut |_, idx| {
                loads += 1.0;
                let mut ind = false;
                for i in idx {
                    for_each_load(i, &mut |_, _| ind = true);
                }
                if ind {
                    indirect += 1.0;
                }
            });
        }
    });
    let (total_trip, inner_trip, depth) = trips(&f.body);
    vec![
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        vec_width,
        unroll.log2(),
        loads,
        indirect,
        stores,
        allocs,
        (1.0 + alloc_bytes).log2(),
        total_trip,
        inner_trip,
        depth,
    ]
}

/// log2 of the product of constant extents along the deepest path, of the innermost
/// loop's extent, and the maximum nesting depth.
fn trips(s: &Stmt) -> (f64, f64, f64) {
    fn walk(s: &Stmt, acc: f64, depth: f64, best: &mut (f64, f64, f64)) {
        match s {
            Stmt::For { extent, body, .. } => {
                let e = match extent {
                    Expr::Int(v) => (*v as f64).max(1.0).log2(),
                    _ => 2.0,
                };
                let mut inner = false;
                for_each_stmt(body, &mut |t| inner |= matches!(t, Stmt::For { .. }));
                if !inner {
                    best.1 = best.1.max(e);
                }
                best.0 = best.0.max(acc + e);
                best.2 = best.2.max(depth + 1.0);
                walk(body, acc + e, depth + 1.0, best);
            }
            Stmt::Seq(items) => items.iter().for_each(|i| walk(i, acc, depth, best)),
            Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => walk(body, acc, depth, best),
            Stmt::If {
                then, otherwise, ..
            } => {
                walk(then, acc, depth, best);
                if let Some(o) = otherwise {
                    walk(o, acc, depth, best);
                }
            }
            Stmt::Store { .. } | Stmt::Prefetch { .. } => {}
        }
    }
    let mut best = (0.0, 0.0, 0.0);
    walk(s, 0.0, 0.0, &mut best);
    best
}
