//! Schedule decisions read off the extracted BCR compute form: which rows share one
//! gather of the input, hence whether load-redundancy elimination and row reordering
//! pay off (GRIM's "rows sharing a column set share one gather").
//!
//! # What runs
//! For each BCR weight of a workload, the blocks are grouped by their kept-column list
//! into *column classes* (blocks whose kept columns are identical: a single block, or
//! the blocks that row reordering merges into one group). For each class, the per-row
//! form of its kept rows (as the lowered loop nest computes them: one product per kept
//! row, each with its own gather of the input rows, summed as a balanced tree so that
//! merging neighbours takes `log2(rows)` iterations) is saturated with every tensor
//! rule of the [`RuleSet`] and the cheapest term under [`TensorCost`] is extracted.
//! Classes run separately so that the e-graphs stay small for whole layers (a 1024 x
//! 1024 layer has ~1000 classes); the price is that a rule relating gathers of two
//! *different* column lists could not fire across classes (no shipped rule does).
//! The e-graph sees only shapes (the row and column indices are opaque symbols), so
//! classes of the same shape (kept rows per block, kept columns) give the same run:
//! one run per distinct shape, a handful per layer ([`BcrChoice::runs`]).
//!
//! # How the extracted term is read
//! Every outermost `scatter-rows` of the extracted term scatters some kept rows (the
//! row symbols under its index argument) computed from some gathers of the input
//! (counted per use, as the tree cost counts them). A `scatter-rows` with one gather
//! and two or more rows is a **shared gather**. Then:
//! - some shared gather exists -> **load-redundancy elimination** (each entry's input
//!   values loaded once, reused by every row of the entry);
//! - some shared gather serves rows of two or more blocks -> **row reordering** by
//!   block column first (it merges exactly the blocks of a column class into one
//!   entry, so the input is loaded once per class), unless the weight's entries are
//!   uniform and the merge would leave groups of different sizes while saving less
//!   than half of the entries: then the offsets stay specializable instead
//!   ([`BcrChoice::reordering_forfeits_specialization`]);
//! - otherwise neither: the extracted form keeps one gather per kept row.
//!
//! The schedule primitives are all-or-nothing per weight while the extracted form may
//! share only some gathers (a limit hit mid-way): the choice is taken when *some*
//! gather is shared, and [`BcrChoice::rows_sharing`] says how many rows did.
//! Column reordering cannot be read off: the per-row form has no column permutation
//! for a rule to move (`col-perm-into-gather` needs a `gather-cols` by a permutation of
//! all `K` columns), so it stays a tuning knob ([`BcrChoice::column_reordering`]).
//! A term that is not a sum of scattered products (a researcher's rule can make one)
//! is not read; its class counts in [`BcrChoice::unread_classes`] and decides
//! nothing.

use super::analysis::{Shape, SymInfo, TirAnalysis};
use super::cost::TensorCost;
use super::lang::{Level, TirLang};
use super::pass::{
    balanced_sum, is_limit, stop_reason_text, tensor_cost_of, Limits, PassError, TermBuilder,
};
use super::rules::RuleSet;
use crate::lower::BcrArrays;
use crate::spec::WorkloadSpec;
use crate::workload::Workload;
use egg::{Extractor, Language, RecExpr, Runner, Symbol};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// The BCR schedule decisions derived for one weight, with the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct BcrChoice {
    /// Weight name (`W`, `W_ih`, `W_hh`).
    pub weight: String,
    /// The input the weight multiplies (`X`, `x`, `h_prev`, `im2col(X)`).
    pub input: String,
    /// Non-empty blocks.
    pub blocks: usize,
    /// Column classes (distinct kept-column lists).
    pub classes: usize,
    /// E-graph runs: one per distinct class shape (classes of equal shape give equal
    /// runs, see the module docs).
    pub runs: usize,
    /// Kept rows over all blocks.
    pub rows: usize,
    /// Gathers of input rows in the per-row form (one per kept row).
    pub gathers_before: usize,
    /// Gathers of input rows in the extracted form.
    pub gathers_after: usize,
    /// Gathers in the extracted form that serve two or more rows.
    pub shared_gathers: usize,
    /// Rows served by a shared gather.
    pub rows_sharing: usize,
    /// Shared gathers whose rows come from two or more blocks.
    pub cross_block_gathers: usize,
    /// [`TensorCost`] of the per-row forms (sum over classes).
    pub cost_before: u64,
    /// [`TensorCost`] of the extracted forms (sum over classes).
    pub cost_after: u64,
    /// Rule applications, all classes together (a run shared by several classes
    /// counts once per class).
    pub fired: BTreeMap<String, usize>,
    /// How many classes' runs stopped for each reason.
    pub stop_reasons: BTreeMap<String, usize>,
    /// Classes whose run stopped on a limit (its best term so far was read).
    pub limit_hits: usize,
    /// Classes whose extracted term is not a sum of scattered products (not read).
    pub unread_classes: usize,
    /// Every non-empty block keeps the same number of rows and of columns: the
    /// entry offsets are affine and can be specialized to constants (see
    /// `schedule::primitive::bcr::specialize_offsets`).
    pub uniform_entries: bool,
    /// Every column class has the same number of blocks: the groups row reordering
    /// makes are uniform too.
    pub uniform_classes: bool,
}

impl BcrChoice {
    /// Apply load-redundancy elimination: some gather of the input is shared.
    pub fn load_redundancy_elimination(&self) -> bool {
        self.shared_gathers > 0
    }

    /// Reorder rows (by block column) first: some shared gather spans blocks, and
    /// the reordering does not forfeit offset specialization for little gain (see
    /// [`BcrChoice::reordering_forfeits_specialization`]).
    pub fn row_reordering(&self) -> bool {
        self.cross_block_gathers > 0 && !self.reordering_forfeits_specialization()
    }

    /// True when row reordering would merge uniform entries into groups of different
    /// sizes (so their offsets could no longer be specialized to constants) while
    /// saving less than half of the entries. Specialization removes three offset
    /// loads per entry and lets the C compiler unroll the per-entry loops; a few
    /// merged blocks do not pay for that: the g2p encoder GRU (256 hidden, 16x16
    /// blocks, 92.5%: 768 blocks in 756 column classes) ran in 22.2 us with the
    /// reordering and 9.7 us with specialization instead (1 thread, this 2-core
    /// x86 host). The threshold (half the entries) is a heuristic; the tuner still
    /// tries both.
    pub fn reordering_forfeits_specialization(&self) -> bool {
        self.uniform_entries && !self.uniform_classes && self.classes * 2 > self.blocks
    }

    /// Column reordering is never derived (see the module docs): always `None`.
    pub fn column_reordering(&self) -> Option<bool> {
        None
    }

    /// Rule applications as text (`rule xN, ...`, most first).
    pub fn fired_text(&self) -> String {
        let mut v: Vec<(&String, &usize)> = self.fired.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        if v.is_empty() {
            return "none".into();
        }
        v.iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Stop reasons as text (`saturated x3, iteration limit (8) hit x1`).
    pub fn stop_text(&self) -> String {
        self.stop_reasons
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// One line saying what was chosen and why.
    pub fn reason(&self) -> String {
        let form = format!(
            "{} gathers of {} rows for {} kept rows (cost {} -> {})",
            self.gathers_after, self.input, self.rows, self.cost_before, self.cost_after
        );
        if self.row_reordering() {
            format!(
                "{form}: {} gathers shared by {} rows, {} across blocks with equal kept columns -> row reordering + load-redundancy elimination",
                self.shared_gathers, self.rows_sharing, self.cross_block_gathers
            )
        } else if self.cross_block_gathers > 0 {
            format!(
                "{form}: {} gathers shared by {} rows, {} across blocks with equal kept columns, but merging {} uniform blocks into {} groups of different sizes would forfeit offset specialization -> load-redundancy elimination",
                self.shared_gathers, self.rows_sharing, self.cross_block_gathers, self.blocks, self.classes
            )
        } else if self.load_redundancy_elimination() {
            format!(
                "{form}: {} gathers shared by {} rows within blocks -> load-redundancy elimination",
                self.shared_gathers, self.rows_sharing
            )
        } else {
            format!("{form}: no gather shared -> as lowered (no load-redundancy elimination)")
        }
    }
}

impl fmt::Display for BcrChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.weight, self.reason())
    }
}

/// The input a BCR weight multiplies and its column count, by workload kind; `None`
/// for kinds without BCR weights.
pub(super) fn input_of(w: &Workload, weight: &str) -> Option<(String, usize)> {
    match &w.spec {
        WorkloadSpec::Fc(s) => Some(("X".to_string(), s.n)),
        WorkloadSpec::Rnn(s) => Some((
            if weight == "W_ih" { "x" } else { "h_prev" }.to_string(),
            s.batch,
        )),
        WorkloadSpec::Conv2d(_) => {
            let cols = w.func.params.iter().find(|p| p.name == "Y").map_or(1, |p| {
                p.shape.iter().skip(2).product::<usize>() * p.shape.first().copied().unwrap_or(1)
            });
            Some(("im2col(X)".to_string(), cols))
        }
        _ => None,
    }
}

/// What an e-graph run over one column class depends on: the kept-row count of each
/// of its blocks, its kept-column count, and the matrix and input sizes. The symbols'
/// facts are derived from these alone (see [`class_term`]), so classes with the same
/// shape give the same run and share one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClassShape {
    rows_per_block: Vec<usize>,
    q: usize,
    m: usize,
    k: usize,
    n: usize,
}

/// The per-row term of one column class, and which block of the class (0, 1, ...)
/// each row symbol belongs to.
struct ClassTerm {
    term: RecExpr<TirLang>,
    symbols: HashMap<Symbol, SymInfo>,
    row_block: HashMap<Symbol, usize>,
    rows: usize,
}

/// Builds `Σ_{rows of the class} scatter-rows(v · gather-rows(X, c), [row], M)` as a
/// balanced sum, rows in block order. The facts given to the e-graph are those that
/// hold for every class of this shape: a row index is one index below `M` (distinct),
/// the kept columns are `q` distinct indices below `K` (a permutation when `q = K`);
/// the actual indices never enter the e-graph, so the weaker bounds lose nothing the
/// shipped rules use and make equal shapes give equal runs.
fn class_term(shape: &ClassShape, input: &str) -> ClassTerm {
    let ClassShape {
        rows_per_block,
        q,
        m,
        k,
        n,
    } = shape;
    let (q, m, k, n) = (*q, *m, *k, *n);
    let mut term = TermBuilder::default();
    let mut symbols = HashMap::new();
    let mut row_block = HashMap::new();
    let konst_idx = |len: usize, bound: usize| SymInfo {
        shape: Some(Shape::Idx(len)),
        idx: Some(super::analysis::IdxFacts {
            bound,
            distinct: true,
            perm: len == bound,
        }),
        konst: true,
        ..SymInfo::default()
    };
    let x = term.add(TirLang::Symbol(Symbol::from(input)));
    symbols.insert(
        Symbol::from(input),
        SymInfo {
            shape: Some(Shape::Mat(k, n)),
            ..SymInfo::default()
        },
    );
    let mm = term.add(TirLang::Int(m as i64));
    let cname = Symbol::from("cols");
    symbols.insert(cname, konst_idx(q, k));
    let cs = term.add(TirLang::Symbol(cname));
    let mut rows = Vec::new();
    for (b, &nr) in rows_per_block.iter().enumerate() {
        for i in 0..nr {
            let v = Symbol::from(format!("v{b}.{i}"));
            let r = Symbol::from(format!("r{b}.{i}"));
            symbols.insert(
                v,
                SymInfo {
                    shape: Some(Shape::Mat(1, q)),
                    konst: true,
                    ..SymInfo::default()
                },
            );
            symbols.insert(r, konst_idx(1, m));
            row_block.insert(r, b);
            let vid = term.add(TirLang::Symbol(v));
            let rid = term.add(TirLang::Symbol(r));
            let g = term.add(TirLang::GatherRows([x, cs]));
            let p = term.add(TirLang::MatMul([vid, g]));
            rows.push(term.add(TirLang::ScatterRows([p, rid, mm])));
        }
    }
    let n_rows = rows.len();
    let _ = balanced_sum(&mut term, &rows);
    ClassTerm {
        term: RecExpr::from(term.into_nodes()),
        symbols,
        row_block,
        rows: n_rows,
    }
}

/// The outcome of the e-graph run of one class shape.
#[derive(Debug, Clone)]
struct ClassOutcome {
    rows: usize,
    /// The groups, `None` when the extracted term could not be read.
    groups: Option<Vec<Group>>,
    /// Input gathers of the extracted term (per use).
    gathers: usize,
    cost_before: u64,
    cost_after: u64,
    fired: BTreeMap<String, usize>,
    stop: String,
    hit_limit: bool,
}

fn run_class(
    shape: &ClassShape,
    input: &str,
    rewrites: &[egg::Rewrite<TirLang, TirAnalysis>],
    limits: &Limits,
) -> ClassOutcome {
    let t = class_term(shape, input);
    let runner: Runner<TirLang, TirAnalysis> = Runner::new(TirAnalysis {
        symbols: t.symbols.clone(),
    })
    .with_node_limit(limits.nodes)
    .with_iter_limit(limits.iterations)
    .with_time_limit(limits.time)
    .with_expr(&t.term)
    .run(rewrites);
    let mut fired = BTreeMap::new();
    for it in &runner.iterations {
        for (name, c) in &it.applied {
            *fired.entry(name.to_string()).or_insert(0) += c;
        }
    }
    let cost_before = tensor_cost_of(&t.term, &t.symbols);
    let (cost_after, best) = match runner.roots.first() {
        Some(&root) => Extractor::new(
            &runner.egraph,
            TensorCost {
                egraph: &runner.egraph,
            },
        )
        .find_best(root),
        None => (cost_before, t.term.clone()),
    };
    let groups = read_groups(&best, input, &t.row_block)
        .filter(|g| g.iter().map(|g| g.rows).sum::<usize>() == t.rows);
    ClassOutcome {
        rows: t.rows,
        gathers: super::pass::count_input_gathers(&best, input),
        groups,
        cost_before,
        cost_after,
        fired,
        stop: stop_reason_text(&runner.stop_reason),
        hit_limit: is_limit(&runner.stop_reason),
    }
}

/// One outermost `scatter-rows` of an extracted term.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    gathers: usize,
    rows: usize,
    blocks: usize,
}

/// Reads `e` as a sum of scattered products (see the module docs); `None` when some
/// gather of the input is not under a `scatter-rows`, or some `scatter-rows` has no
/// row symbol under its index argument.
fn read_groups(
    e: &RecExpr<TirLang>,
    input: &str,
    row_block: &HashMap<Symbol, usize>,
) -> Option<Vec<Group>> {
    let nodes = e.as_ref();
    if nodes.is_empty() {
        return Some(Vec::new());
    }
    // Bottom up: gathers of the input per use, and the row symbols below each node
    // (with their blocks), per use.
    let mut gathers: Vec<usize> = Vec::with_capacity(nodes.len());
    let mut rows: Vec<usize> = Vec::with_capacity(nodes.len());
    let mut blocks: Vec<BTreeSet<usize>> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let (g0, r0, b0): (usize, usize, BTreeSet<usize>) = match n {
            TirLang::GatherRows([a, _]) => {
                let is_input = matches!(nodes.get(usize::from(*a)), Some(TirLang::Symbol(s)) if s.as_str() == input);
                (usize::from(is_input), 0, BTreeSet::new())
            }
            TirLang::Symbol(s) => match row_block.get(s) {
                Some(&b) => (0, 1, BTreeSet::from([b])),
                None => (0, 0, BTreeSet::new()),
            },
            _ => (0, 0, BTreeSet::new()),
        };
        let mut g = g0;
        let mut r = r0;
        let mut bs = b0;
        for c in n.children() {
            let c = usize::from(*c);
            g = g.saturating_add(*gathers.get(c)?);
            r = r.saturating_add(*rows.get(c)?);
            bs.extend(blocks.get(c)?.iter().copied());
        }
        gathers.push(g);
        rows.push(r);
        blocks.push(bs);
    }
    // Top down from the root to the outermost scatters.
    let mut out = Vec::new();
    let mut stack = vec![nodes.len() - 1];
    let mut budget = nodes.len().saturating_mul(4).max(64);
    while let Some(i) = stack.pop() {
        budget = budget.checked_sub(1)?;
        let n = nodes.get(i)?;
        match n {
            TirLang::ScatterRows([p, r, _]) => {
                let (p, r) = (usize::from(*p), usize::from(*r));
                let rows_here = *rows.get(r)?;
                if rows_here == 0 {
                    return None;
                }
                out.push(Group {
                    gathers: *gathers.get(p)?,
                    rows: rows_here,
                    blocks: blocks.get(r)?.len(),
                });
            }
            TirLang::GatherRows(_) if *gathers.get(i)? > 0 => return None,
            _ => stack.extend(n.children().iter().map(|c| usize::from(*c))),
        }
    }
    Some(out)
}

/// Derives the BCR schedule decisions of every BCR weight of `w` from the forms that
/// `rules` extract (see the module docs). Weights with no non-empty block are skipped.
pub fn bcr_choices(
    w: &Workload,
    rules: &RuleSet,
    limits: &Limits,
) -> Result<Vec<BcrChoice>, PassError> {
    let rewrites = rules.rewrites(Level::Tensor)?;
    let mut out = Vec::new();
    for mat in &w.matrices {
        let Some(bcr) = &mat.bcr else { continue };
        let Some((input, n)) = input_of(w, &mat.name) else {
            continue;
        };
        let arrays = BcrArrays::from_matrix(bcr)?;
        if arrays.blocks == 0 {
            continue;
        }
        // Column classes, in order of first block.
        let mut classes: Vec<Vec<usize>> = Vec::new();
        let mut by_cols: HashMap<&[i32], usize> = HashMap::new();
        for b in 0..arrays.blocks {
            let cols = &arrays.cols[arrays.col_ptr[b] as usize..arrays.col_ptr[b + 1] as usize];
            match by_cols.get(cols) {
                Some(&c) => classes[c].push(b),
                None => {
                    by_cols.insert(cols, classes.len());
                    classes.push(vec![b]);
                }
            }
        }
        let mut choice = BcrChoice {
            weight: mat.name.clone(),
            input: input.clone(),
            blocks: arrays.blocks,
            classes: classes.len(),
            runs: 0,
            rows: 0,
            gathers_before: 0,
            gathers_after: 0,
            shared_gathers: 0,
            rows_sharing: 0,
            cross_block_gathers: 0,
            cost_before: 0,
            cost_after: 0,
            fired: BTreeMap::new(),
            stop_reasons: BTreeMap::new(),
            limit_hits: 0,
            unread_classes: 0,
            uniform_entries: {
                let span = |p: &[i32], b: usize| p[b + 1] - p[b];
                (0..arrays.blocks).all(|b| {
                    span(&arrays.row_ptr, b) == span(&arrays.row_ptr, 0)
                        && span(&arrays.col_ptr, b) == span(&arrays.col_ptr, 0)
                })
            },
            uniform_classes: classes.iter().all(|c| c.len() == classes[0].len()),
        };
        let mut runs: HashMap<ClassShape, ClassOutcome> = HashMap::new();
        for blocks in &classes {
            let span = |p: &[i32], b: usize| p[b + 1] as usize - p[b] as usize;
            let shape = ClassShape {
                rows_per_block: blocks.iter().map(|&b| span(&arrays.row_ptr, b)).collect(),
                q: span(&arrays.col_ptr, blocks[0]),
                m: bcr.rows(),
                k: bcr.cols(),
                n,
            };
            let o = runs
                .entry(shape)
                .or_insert_with_key(|shape| run_class(shape, &input, &rewrites, limits));
            choice.rows += o.rows;
            choice.gathers_before += o.rows;
            for (name, c) in &o.fired {
                *choice.fired.entry(name.clone()).or_insert(0) += c;
            }
            *choice.stop_reasons.entry(o.stop.clone()).or_insert(0) += 1;
            choice.limit_hits += usize::from(o.hit_limit);
            choice.cost_before = choice.cost_before.saturating_add(o.cost_before);
            choice.cost_after = choice.cost_after.saturating_add(o.cost_after);
            choice.gathers_after += o.gathers;
            match &o.groups {
                Some(groups) => {
                    for g in groups.iter().filter(|g| g.gathers == 1 && g.rows >= 2) {
                        choice.shared_gathers += 1;
                        choice.rows_sharing += g.rows;
                        choice.cross_block_gathers += usize::from(g.blocks >= 2);
                    }
                }
                None => choice.unread_classes += 1,
            }
        }
        choice.runs = runs.len();
        out.push(choice);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RecExpr<TirLang> {
        s.parse().unwrap()
    }

    #[test]
    fn reads_shared_and_per_row_gathers() {
        let rb: HashMap<Symbol, usize> = [("r0", 0), ("r1", 0), ("r2", 1)]
            .into_iter()
            .map(|(s, b)| (Symbol::from(s), b))
            .collect();
        let shared = parse(
            "(ew-add (scatter-rows (matmul (vcat v0 v1) (gather-rows X c)) (icat r0 r1) 8) \
             (scatter-rows (matmul v2 (gather-rows X c)) r2 8))",
        );
        let g = read_groups(&shared, "X", &rb).unwrap();
        assert_eq!(
            g,
            vec![
                Group {
                    gathers: 1,
                    rows: 1,
                    blocks: 1
                },
                Group {
                    gathers: 1,
                    rows: 2,
                    blocks: 1
                },
            ]
        );
        let across = parse("(scatter-rows (matmul (vcat v0 v2) (gather-rows X c)) (icat r0 r2) 8)");
        assert_eq!(read_groups(&across, "X", &rb).unwrap()[0].blocks, 2);
        // Two gathers stacked under one scatter: not shared.
        let stacked = parse(
            "(scatter-rows (vcat (matmul v0 (gather-rows X c)) (matmul v1 (gather-rows X c))) (icat r0 r1) 8)",
        );
        assert_eq!(read_groups(&stacked, "X", &rb).unwrap()[0].gathers, 2);
        // A gather outside any scatter: not read.
        let odd = parse("(matmul v0 (gather-rows X c))");
        assert_eq!(read_groups(&odd, "X", &rb), None);
    }
}
