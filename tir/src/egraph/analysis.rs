//! The e-class analysis: what is known about every e-class, used for constant
//! folding, for rule side conditions and by the tensor cost model.
//!
//! [`Facts`] holds an integer interval (`[lo, hi]`, only when the term is an `Int`
//! that cannot error given its operands), a boolean constant, a tensor shape, and
//! whether the term is a compile-time constant (built from literals and symbols
//! declared constant, such as weights and BCR index arrays). Intervals come from
//! literals, from [`SymInfo`] of symbols (loop variables get their loop range, `i32`
//! buffers the `i32` range for their elements) and from interval arithmetic; a result
//! outside `i64` is *unknown* (the expression may overflow), so a known interval
//! always means "never errors and lies in this range".
//!
//! A class whose interval is a single point gets the literal added (constant
//! folding); a class with a known boolean gets `true`/`false`.
//!
//! Rule conditions ([`cond_holds`]) are evaluated on these facts: a condition holds
//! only when it is *definitely* true for every value in the intervals of the matched
//! classes, which is what makes a conditional rule sound to apply.

use super::lang::TirLang;
use egg::{Analysis, DidMerge, EGraph, Id, Language, PatternAst, Subst, Symbol};
use std::collections::HashMap;

/// A tensor-level shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    /// A `rows x cols` matrix.
    Mat(usize, usize),
    /// An index vector of this length.
    Idx(usize),
}

/// What is known about the entries of an index vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdxFacts {
    /// Every entry is in `[0, bound)`.
    pub bound: usize,
    /// No entry repeats.
    pub distinct: bool,
    /// The vector is a permutation of `0..len`.
    pub perm: bool,
}

/// What is known about an e-class.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// Integer interval `[lo, hi]` (the term is an `Int` that never errors).
    pub int: Option<(i64, i64)>,
    /// The term is this boolean constant.
    pub boolean: Option<bool>,
    /// Tensor shape.
    pub shape: Option<Shape>,
    /// For an index vector: what is known of its entries.
    pub idx: Option<IdxFacts>,
    /// Elements that can be non-zero when the class is computed as a sum of
    /// `scatter-rows` (the rows scattered times their width); used by the cost model
    /// for in-place accumulation.
    pub scattered: Option<u64>,
    /// Compile-time constant (computable without run-time inputs).
    pub konst: bool,
}

/// What the analysis knows about a symbol.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SymInfo {
    /// For an `Int` variable: its range. For a buffer: the range of its elements.
    pub int: Option<(i64, i64)>,
    /// For a tensor: its shape.
    pub shape: Option<Shape>,
    /// For an index vector: what is known of its entries.
    pub idx: Option<IdxFacts>,
    /// Known at compile time (weights, index arrays).
    pub konst: bool,
}

impl SymInfo {
    /// A compile-time constant index vector with these entries.
    pub fn const_idx(entries: &[i64]) -> SymInfo {
        let mut sorted = entries.to_vec();
        sorted.sort_unstable();
        let distinct = sorted.windows(2).all(|w| w[0] != w[1]);
        let nonneg = sorted.first().is_none_or(|&x| x >= 0);
        let bound = sorted.last().map_or(0, |&x| x + 1).max(0) as usize;
        SymInfo {
            int: None,
            shape: Some(Shape::Idx(entries.len())),
            idx: nonneg.then_some(IdxFacts {
                bound,
                distinct,
                perm: distinct && bound == entries.len(),
            }),
            konst: true,
        }
    }
}

/// The analysis: symbol facts given by the caller, then [`Facts`] per e-class.
#[derive(Debug, Clone, Default)]
pub struct TirAnalysis {
    /// Facts about symbols (variables, buffers, named tensors).
    pub symbols: HashMap<Symbol, SymInfo>,
}

/// The e-graph type used everywhere in [`crate::egraph`].
pub type TirEGraph = EGraph<TirLang, TirAnalysis>;

fn fit(v: i128) -> Option<i64> {
    i64::try_from(v).ok()
}

fn span(vals: &[i128]) -> Option<(i64, i64)> {
    let lo = *vals.iter().min()?;
    let hi = *vals.iter().max()?;
    Some((fit(lo)?, fit(hi)?))
}

fn fdiv(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

fn fmod(a: i128, b: i128) -> i128 {
    a - fdiv(a, b) * b
}

/// Interval transfer of an integer binary operator (`None`: unknown or may error).
pub fn int_transfer(op: &str, a: (i64, i64), b: (i64, i64)) -> Option<(i64, i64)> {
    let (al, ah, bl, bh) = (a.0 as i128, a.1 as i128, b.0 as i128, b.1 as i128);
    match op {
        "+" => span(&[al + bl, ah + bh]),
        "-" => span(&[al - bh, ah - bl]),
        "*" => span(&[al * bl, al * bh, ah * bl, ah * bh]),
        "min" => span(&[al.min(bl), ah.min(bh)]),
        "max" => span(&[al.max(bl), ah.max(bh)]),
        "/" => {
            if bl <= 0 && bh >= 0 {
                return None;
            }
            span(&[fdiv(al, bl), fdiv(al, bh), fdiv(ah, bl), fdiv(ah, bh)])
        }
        "%" => {
            if bl <= 0 && bh >= 0 {
                return None;
            }
            if bl == bh && fdiv(al, bl) == fdiv(ah, bl) {
                // The whole range lies in one period: modulo is a shift.
                return span(&[fmod(al, bl), fmod(ah, bl)]);
            }
            if bl > 0 {
                span(&[0, bh - 1])
            } else {
                span(&[bl + 1, 0])
            }
        }
        _ => None,
    }
}

fn cmp_transfer(op: &str, a: (i64, i64), b: (i64, i64)) -> Option<bool> {
    let lt = |x: (i64, i64), y: (i64, i64)| {
        if x.1 < y.0 {
            Some(true)
        } else if x.0 >= y.1 {
            Some(false)
        } else {
            None
        }
    };
    let le = |x: (i64, i64), y: (i64, i64)| {
        if x.1 <= y.0 {
            Some(true)
        } else if x.0 > y.1 {
            Some(false)
        } else {
            None
        }
    };
    match op {
        "<" => lt(a, b),
        "<=" => le(a, b),
        ">" => lt(b, a),
        ">=" => le(b, a),
        "==" => {
            if a.0 == a.1 && b.0 == b.1 && a.0 == b.0 {
                Some(true)
            } else if a.1 < b.0 || b.1 < a.0 {
                Some(false)
            } else {
                None
            }
        }
        "!=" => cmp_transfer("==", a, b).map(|x| !x),
        _ => None,
    }
}

/// The facts of a node from the facts of its children (`symbol` gives symbol facts).
pub fn transfer(node: &TirLang, kids: &[&Facts], symbol: &dyn Fn(Symbol) -> SymInfo) -> Facts {
    use TirLang as L;
    let mut f = Facts {
        konst: !kids.is_empty() && kids.iter().all(|k| k.konst),
        ..Facts::default()
    };
    let op = node.to_string();
    let int = |i: usize| kids.get(i).and_then(|k| k.int);
    let sh = |i: usize| kids.get(i).and_then(|k| k.shape);
    match node {
        L::Int(v) => {
            f.int = Some((*v, *v));
            f.konst = true;
        }
        L::Bool(b) => {
            f.boolean = Some(*b);
            f.konst = true;
        }
        L::Float(_) => f.konst = true,
        L::Symbol(s) => {
            let info = symbol(*s);
            f.int = info.int;
            f.shape = info.shape;
            f.idx = info.idx;
            f.konst = info.konst;
        }
        L::Add(_) | L::Sub(_) | L::Mul(_) | L::Div(_) | L::Mod(_) | L::Min(_) | L::Max(_) => {
            if let (Some(a), Some(b)) = (int(0), int(1)) {
                f.int = int_transfer(&op, a, b);
            }
        }
        L::Eq(_) | L::Ne(_) | L::Lt(_) | L::Le(_) | L::Gt(_) | L::Ge(_) => {
            if let (Some(a), Some(b)) = (int(0), int(1)) {
                f.boolean = cmp_transfer(&op, a, b);
            }
        }
        L::And(_) => {
            f.boolean = match (kids[0].boolean, kids[1].boolean) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            // `&&` evaluates both sides: a `false` is only certain when the other side
            // cannot error, which we know only for constants.
            if f.boolean == Some(false) && !(kids[0].boolean.is_some() && kids[1].boolean.is_some())
            {
                f.boolean = None;
            }
        }
        L::Or(_) => {
            f.boolean = match (kids[0].boolean, kids[1].boolean) {
                (Some(a), Some(b)) => Some(a || b),
                _ => None,
            };
        }
        L::Not(_) => f.boolean = kids[0].boolean.map(|b| !b),
        L::Select(_) => {
            if let (Some(a), Some(b)) = (int(1), int(2)) {
                // Only with a known condition: an unknown one might error.
                f.int = match kids[0].boolean {
                    Some(true) => Some(a),
                    Some(false) => Some(b),
                    None => None,
                };
            }
        }
        L::Load(ids) => {
            // The element range of the buffer; the load itself may still be out of
            // bounds, so this is only used for conditions, never folded (a buffer
            // never has a one-point range).
            let _ = ids;
            f.int = kids.first().and_then(|b| b.int).filter(|(lo, hi)| lo != hi);
            f.konst = false;
        }
        L::MatMul(_) => {
            if let (Some(Shape::Mat(m, k)), Some(Shape::Mat(k2, n))) = (sh(0), sh(1)) {
                if k == k2 {
                    f.shape = Some(Shape::Mat(m, n));
                }
            }
        }
        L::Transpose(_) => {
            if let Some(Shape::Mat(r, c)) = sh(0) {
                f.shape = Some(Shape::Mat(c, r));
            }
        }
        L::GatherRows(_) => {
            if let (Some(Shape::Mat(_, c)), Some(Shape::Idx(l))) = (sh(0), sh(1)) {
                f.shape = Some(Shape::Mat(l, c));
            }
        }
        L::GatherCols(_) => {
            if let (Some(Shape::Mat(r, _)), Some(Shape::Idx(l))) = (sh(0), sh(1)) {
                f.shape = Some(Shape::Mat(r, l));
            }
        }
        L::ScatterRows(_) => {
            f.scattered = match sh(0) {
                Some(Shape::Mat(r, c)) => Some((r * c) as u64),
                _ => None,
            };
            if let (Some(Shape::Mat(_, c)), Some((m, m2))) = (sh(0), int(2)) {
                if m == m2 && m >= 0 {
                    f.shape = Some(Shape::Mat(m as usize, c));
                }
            }
        }
        L::VCat(_) => {
            if let (Some(Shape::Mat(a, c)), Some(Shape::Mat(b, c2))) = (sh(0), sh(1)) {
                if c == c2 {
                    f.shape = Some(Shape::Mat(a + b, c));
                }
            }
        }
        L::HCat(_) => {
            if let (Some(Shape::Mat(r, a)), Some(Shape::Mat(r2, b))) = (sh(0), sh(1)) {
                if r == r2 {
                    f.shape = Some(Shape::Mat(r, a + b));
                }
            }
        }
        L::ICat(_) => {
            if let (Some(Shape::Idx(a)), Some(Shape::Idx(b))) = (sh(0), sh(1)) {
                f.shape = Some(Shape::Idx(a + b));
            }
            if let (Some(x), Some(y)) = (kids[0].idx, kids[1].idx) {
                f.idx = Some(IdxFacts {
                    bound: x.bound.max(y.bound),
                    distinct: false,
                    perm: false,
                });
            }
        }
        L::InvPerm(_) => {
            f.shape = sh(0);
            if let (Some(Shape::Idx(n)), Some(x)) = (sh(0), kids[0].idx) {
                if x.perm {
                    f.idx = Some(IdxFacts {
                        bound: n,
                        distinct: true,
                        perm: true,
                    });
                }
            }
        }
        L::EwAdd(_) | L::EwMul(_) => {
            if sh(0).is_some() && sh(0) == sh(1) {
                f.shape = sh(0);
            }
            if matches!(node, L::EwAdd(_)) {
                if let (Some(a), Some(b)) = (kids[0].scattered, kids[1].scattered) {
                    f.scattered = Some(a + b);
                }
            }
        }
        L::EwRelu(_) | L::EwTanh(_) | L::BcrMask(_) => f.shape = sh(0),
        L::Rows(_) | L::Cols(_) => {
            if let Some(Shape::Mat(r, c)) = sh(0) {
                let v = if matches!(node, L::Rows(_)) { r } else { c } as i64;
                f.int = Some((v, v));
                f.konst = true;
            }
        }
        L::Len(_) => {
            if let Some(Shape::Idx(l)) = sh(0) {
                f.int = Some((l as i64, l as i64));
                f.konst = true;
            }
        }
        L::CastInt(_)
        | L::CastF32(_)
        | L::Exp(_)
        | L::Tanh(_)
        | L::Sigmoid(_)
        | L::Sqrt(_)
        | L::Abs(_) => {}
    }
    f
}

impl Analysis<TirLang> for TirAnalysis {
    type Data = Facts;

    fn make(egraph: &mut TirEGraph, enode: &TirLang, _id: Id) -> Facts {
        let kids: Vec<Facts> = enode
            .children()
            .iter()
            .map(|c| egraph[*c].data.clone())
            .collect();
        let refs: Vec<&Facts> = kids.iter().collect();
        let symbols = &egraph.analysis.symbols;
        transfer(enode, &refs, &|s| {
            symbols.get(&s).cloned().unwrap_or_default()
        })
    }

    fn merge(&mut self, a: &mut Facts, b: Facts) -> DidMerge {
        let before = a.clone();
        a.int = match (a.int, b.int) {
            (Some(x), Some(y)) => {
                let (lo, hi) = (x.0.max(y.0), x.1.min(y.1));
                if lo <= hi {
                    Some((lo, hi))
                } else {
                    Some(x)
                }
            }
            (x, y) => x.or(y),
        };
        a.boolean = a.boolean.or(b.boolean);
        a.shape = a.shape.or(b.shape);
        a.idx = match (a.idx, b.idx) {
            (Some(x), Some(y)) => Some(IdxFacts {
                bound: x.bound.min(y.bound),
                distinct: x.distinct || y.distinct,
                perm: x.perm || y.perm,
            }),
            (x, y) => x.or(y),
        };
        a.scattered = match (a.scattered, b.scattered) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        a.konst = a.konst || b.konst;
        let a_changed = *a != before;
        let b_changed = *a != b;
        DidMerge(a_changed, b_changed)
    }

    fn modify(egraph: &mut TirEGraph, id: Id) {
        let facts = egraph[id].data.clone();
        if let Some((lo, hi)) = facts.int {
            if lo == hi {
                let c = egraph.add(TirLang::Int(lo));
                egraph.union(id, c);
            }
        }
        if let Some(b) = facts.boolean {
            let c = egraph.add(TirLang::Bool(b));
            egraph.union(id, c);
        }
    }
}

/// True when `cond` (a pattern over the matched variables) is definitely true on the
/// facts of the classes bound by `subst`.
pub fn cond_holds(egraph: &TirEGraph, subst: &Subst, cond: &PatternAst<TirLang>) -> bool {
    use egg::ENodeOrVar;
    let mut facts: Vec<Facts> = Vec::with_capacity(cond.as_ref().len());
    let symbols = &egraph.analysis.symbols;
    for n in cond.as_ref() {
        let f = match n {
            ENodeOrVar::Var(v) => match subst.get(*v) {
                Some(id) => egraph[*id].data.clone(),
                None => return false,
            },
            ENodeOrVar::ENode(node) => {
                let kids: Vec<&Facts> = node
                    .children()
                    .iter()
                    .map(|c| &facts[usize::from(*c)])
                    .collect();
                transfer(node, &kids, &|s| {
                    symbols.get(&s).cloned().unwrap_or_default()
                })
            }
        };
        facts.push(f);
    }
    facts.last().is_some_and(|f| f.boolean == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(int_transfer("%", (0, 100), (4, 4)), Some((0, 3)));
        assert_eq!(int_transfer("%", (8, 10), (4, 4)), Some((0, 2)));
        assert_eq!(int_transfer("/", (0, 7), (4, 4)), Some((0, 1)));
        assert_eq!(int_transfer("/", (-1, 7), (4, 4)), Some((-1, 1)));
        assert_eq!(int_transfer("/", (0, 7), (-1, 4)), None);
        assert_eq!(int_transfer("+", (i64::MAX, i64::MAX), (1, 1)), None);
        assert_eq!(cmp_transfer("<", (0, 3), (4, 4)), Some(true));
        assert_eq!(cmp_transfer(">=", (0, 3), (0, 0)), Some(true));
        assert_eq!(cmp_transfer("<", (0, 4), (4, 4)), None);
    }

    #[test]
    fn constant_folding_through_symbol_ranges() {
        let mut a = TirAnalysis::default();
        a.symbols.insert(
            Symbol::from("k"),
            SymInfo {
                int: Some((0, 0)),
                ..SymInfo::default()
            },
        );
        let mut g = TirEGraph::new(a);
        let e: egg::RecExpr<TirLang> = "(+ x k)".parse().unwrap();
        let _ = g.add_expr(&e);
        g.rebuild();
        let k = g.lookup_expr(&"k".parse().unwrap()).unwrap();
        let zero = g.lookup_expr(&"0".parse().unwrap()).unwrap();
        assert_eq!(g.find(k), g.find(zero));
    }
}
