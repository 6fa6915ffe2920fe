//! Heap scratch buffers kept from one call of a kernel to the next.
//!
//! A `tir` allocation starts as zeros on every call, so the C code allocated large
//! ones with `calloc` and freed them at the end: for a conv's padded input (64 x 58 x
//! 58 floats, 861 KB) that is a fresh zeroed mapping on every call, its page faults
//! and zeroing in the calling thread, and at 2 threads the other thread then reads
//! its half from the first one's cache (conv 3x3 64->64 56x56 at 90%, tuned 2-thread
//! kernel: 212 us per call, 170 us with the buffer kept; 292 vs 275 us at 1 thread).
//!
//! A buffer may be kept, zeroed once, when every call leaves it as a fresh zeroed one
//! would: [`reusable_across_calls`] holds when, in the allocation's body, every store
//! into the buffer comes (in statement order) before every read of it, and the
//! stores' positions do not depend on any data (no loads in their indices, in the
//! bounds of the loops around them, in the conditions or in the lets on their way).
//! Then each call writes the same positions with fresh values before reading any, and
//! the positions no call writes stay the zeros of the first allocation.

use tir::visit::{expr_loads_buffer, for_each_load, for_each_stmt, stmt_exprs};
use tir::{Expr, Stmt};

/// Whether buffer `name`, allocated around `body`, reads on every call exactly what a
/// freshly zeroed buffer would (see the module documentation).
pub fn reusable_across_calls(name: &str, body: &Stmt) -> bool {
    let phases: Vec<&Stmt> = match body {
        Stmt::Seq(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut read = false;
    for phase in phases {
        let (reads, writes) = accesses(phase, name);
        if writes && (read || reads || !stores_at_fixed_positions(phase, name, false)) {
            return false;
        }
        read |= reads;
    }
    true
}

/// Whether `s` reads `name` anywhere (a load or a prefetch), and whether it stores
/// into it.
fn accesses(s: &Stmt, name: &str) -> (bool, bool) {
    let (mut reads, mut writes) = (false, false);
    for_each_stmt(s, &mut |t| {
        match t {
            Stmt::Prefetch { buffer, .. } => reads |= buffer == name,
            Stmt::Store { buffer, .. } => writes |= buffer == name,
            _ => {}
        }
        reads |= stmt_exprs(t).iter().any(|e| expr_loads_buffer(e, name));
    });
    (reads, writes)
}

/// Whether `e` loads nothing.
fn load_free(e: &Expr) -> bool {
    let mut any = false;
    for_each_load(e, &mut |_, _| any = true);
    !any
}

/// Whether every store into `name` within `s` has load-free indices and sits under
/// load-free loop bounds, conditions and lets; `data_dependent` says whether a
/// statement around `s` already made that false.
fn stores_at_fixed_positions(s: &Stmt, name: &str, data_dependent: bool) -> bool {
    match s {
        Stmt::Store {
            buffer, indices, ..
        } => buffer != name || (!data_dependent && indices.iter().all(load_free)),
        Stmt::Prefetch { .. } => true,
        Stmt::Seq(items) => items
            .iter()
            .all(|i| stores_at_fixed_positions(i, name, data_dependent)),
        Stmt::For {
            min, extent, body, ..
        } => stores_at_fixed_positions(
            body,
            name,
            data_dependent || !load_free(min) || !load_free(extent),
        ),
        Stmt::Let { value, body, .. } => {
            stores_at_fixed_positions(body, name, data_dependent || !load_free(value))
        }
        Stmt::If {
            cond,
            then,
            otherwise,
        } => {
            let dd = data_dependent || !load_free(cond);
            stores_at_fixed_positions(then, name, dd)
                && otherwise
                    .as_deref()
                    .is_none_or(|o| stores_at_fixed_positions(o, name, dd))
        }
        // A nested allocation of the same name hides this buffer inside it.
        Stmt::Allocate {
            name: inner, body, ..
        } => inner == name || stores_at_fixed_positions(body, name, data_dependent),
    }
}
