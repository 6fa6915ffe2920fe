//! Saturation and extraction as a compile pass.
//!
//! - [`simplify_function`]: every maximal integer/boolean expression of a function
//!   (load and store indices, loop bounds, `let` values, `if` conditions) is put in
//!   its own e-graph, with the ranges of the loop and `let` variables in scope as
//!   facts, saturated with the index-level integer rules, and the cheapest
//!   equivalent under [`IndexCost`] is extracted (kept only when strictly cheaper).
//!   Float expressions are left alone (only integer-checked rules are used).
//! - [`bcr_forms`]: for each BCR weight of a workload, a tensor-level term of the
//!   BCR matmul as the lowered loop nest computes it (one product per kept row, each
//!   with its own gather of the input rows), saturated with every rule and extracted
//!   under [`TensorCost`]; with the shipped rules, rows that share a column set end
//!   up sharing one gather. A second search starts from the dense matmul of the
//!   block-masked weight ([`BcrStart::MaskedDense`]) and derives the BCR block form
//!   (gather kept rows and columns, multiply, scatter) with the BCR rules. For
//!   `bcr-fc` workloads without bias or activation every extracted term is evaluated
//!   and compared with the interpreter's output.
//!
//! Both run under explicit [`Limits`]; the stop reason of every run is reported, and
//! a run that stops on a limit is counted in [`PassReport::limit_hits`] (its best term
//! so far is still correct, because every rule applied is sound).

use super::analysis::{int_transfer, Shape, SymInfo, TirAnalysis, TirEGraph};
use super::cost::{index_cost, FunctionCost, IndexCost, TensorCost};
use super::eval::{eval_expr, Value};
use super::lang::{Level, TirLang};
use super::rules::{Kind, RuleError, RuleSet};
use crate::dtype::{DType, ScalarType};
use crate::expr::{BinOp, Expr, UnOp};
use crate::function::Function;
use crate::lower::BcrArrays;
use crate::spec::{Activation, WorkloadSpec};
use crate::stmt::Stmt;
use crate::workload::Workload;
use egg::{Extractor, Id, Language, RecExpr, Rewrite, Runner, StopReason, Symbol};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

/// Saturation limits, per e-graph run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most e-nodes (default 10 000).
    pub nodes: usize,
    /// Most iterations (default 12: enough to saturate the index expressions of the
    /// lowered corpus and to reach the BCR block form; some tensor searches blow up
    /// within a single iteration later on, and egg checks the node limit only
    /// between iterations).
    pub iterations: usize,
    /// Most wall time (default 2 s).
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nodes: 10_000,
            iterations: 12,
            time: Duration::from_secs(2),
        }
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nodes {}, iterations {}, time {:.1}s",
            self.nodes,
            self.iterations,
            self.time.as_secs_f64()
        )
    }
}

/// Why a pass could not run.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// A rule could not be turned into a rewrite.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The workload's BCR arrays overflow `i32`.
    #[error(transparent)]
    Index(#[from] crate::lower::IndexOverflow),
    /// The interpreter failed on the function before or after the pass.
    #[error("interpreter check of the e-graph pass: {0}")]
    Interp(#[from] crate::interp::InterpError),
    /// The simplified function computes different outputs (a bug: every rule applied
    /// should be sound).
    #[error("the simplified function `{function}` computes different outputs than the original on random inputs (seed {seed})")]
    Mismatch {
        /// The function.
        function: String,
        /// The input seed that showed it.
        seed: u64,
    },
}

/// A stop reason in words; limits say which limit.
pub fn stop_reason_text(r: &Option<StopReason>) -> String {
    match r {
        Some(StopReason::Saturated) => "saturated".into(),
        Some(StopReason::IterationLimit(n)) => format!("iteration limit ({n}) hit"),
        Some(StopReason::NodeLimit(n)) => format!("node limit ({n}) hit"),
        Some(StopReason::TimeLimit(t)) => format!("time limit ({t:.2}s) hit"),
        Some(StopReason::Other(s)) => format!("stopped: {s}"),
        None => "not run".into(),
    }
}

/// True when a run stopped on a node, iteration or time limit.
pub(super) fn is_limit(r: &Option<StopReason>) -> bool {
    matches!(
        r,
        Some(StopReason::IterationLimit(_) | StopReason::NodeLimit(_) | StopReason::TimeLimit(_))
    )
}

/// What the pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Applications of each rule during saturation (all runs together).
    pub fired: BTreeMap<String, usize>,
    /// How many runs stopped for each reason.
    pub stop_reasons: BTreeMap<String, usize>,
    /// Runs that stopped on a limit.
    pub limit_hits: usize,
    /// Expressions put through an e-graph.
    pub exprs: usize,
    /// Of those, expressions replaced by a cheaper one.
    pub changed: usize,
    /// Static counts before.
    pub before: FunctionCost,
    /// Static counts after.
    pub after: FunctionCost,
}

impl PassReport {
    fn record<N: egg::Analysis<TirLang>>(&mut self, runner: &Runner<TirLang, N>) {
        for it in &runner.iterations {
            for (name, n) in &it.applied {
                *self.fired.entry(name.to_string()).or_insert(0) += n;
            }
        }
        *self
            .stop_reasons
            .entry(stop_reason_text(&runner.stop_reason))
            .or_insert(0) += 1;
        if is_limit(&runner.stop_reason) {
            self.limit_hits += 1;
        }
    }

    /// `rule x count, ...` sorted by count, then name.
    pub fn fired_text(&self) -> String {
        fired_text(&self.fired)
    }
}

fn fired_text(fired: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = fired.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    if v.is_empty() {
        return "none".into();
    }
    v.iter()
        .map(|(k, n)| format!("{k} x{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The integer index rules: index-level rules whose variables are all `int`, `bool`
/// or `buf` (rules over `f32` variables are never applied to index expressions).
pub fn index_rules(rules: &RuleSet) -> RuleSet {
    RuleSet {
        rules: rules
            .rules
            .iter()
            .filter(|r| {
                r.level == Level::Index
                    && r.kinds
                        .values()
                        .all(|k| matches!(k, Kind::Int | Kind::Bool | Kind::Buf))
            })
            .cloned()
            .collect(),
    }
}

#[derive(Clone, Default)]
struct Env {
    vars: HashMap<String, (ScalarType, Option<(i64, i64)>)>,
    bufs: HashMap<String, DType>,
}

fn ty(e: &Expr, env: &Env) -> Option<ScalarType> {
    Some(match e {
        Expr::Int(_) => ScalarType::Int,
        Expr::Float(_) => ScalarType::F32,
        Expr::Bool(_) => ScalarType::Bool,
        Expr::Var(v) => env.vars.get(v)?.0,
        Expr::Binary(op, a, _) => {
            if op.is_comparison() || op.is_logic() {
                ScalarType::Bool
            } else {
                ty(a, env)?
            }
        }
        Expr::Unary(UnOp::Not, _) => ScalarType::Bool,
        Expr::Select(_, a, _) => ty(a, env)?,
        Expr::Cast(t, _) => *t,
        Expr::Load { buffer, .. } => env.bufs.get(buffer)?.scalar(),
        Expr::Call(..) => ScalarType::F32,
    })
}

/// True when `e` and all its subexpressions are `Int` or `Bool`.
fn pure(e: &Expr, env: &Env) -> bool {
    if !matches!(ty(e, env), Some(ScalarType::Int | ScalarType::Bool)) {
        return false;
    }
    match e {
        Expr::Int(_) | Expr::Bool(_) | Expr::Var(_) => true,
        Expr::Float(_) | Expr::Call(..) => false,
        Expr::Binary(_, a, b) => pure(a, env) && pure(b, env),
        Expr::Unary(_, a) | Expr::Cast(_, a) => pure(a, env),
        Expr::Select(c, a, b) => pure(c, env) && pure(a, env) && pure(b, env),
        Expr::Load { indices, .. } => indices.iter().all(|i| pure(i, env)),
    }
}

fn interval(e: &Expr, env: &Env) -> Option<(i64, i64)> {
    match e {
        Expr::Int(v) => Some((*v, *v)),
        Expr::Var(v) => env.vars.get(v)?.1,
        Expr::Binary(op, a, b) => {
            let name = match op {
                BinOp::Add => "+",
                BinOp::Sub => "-",
                BinOp::Mul => "*",
                BinOp::Div => "/",
                BinOp::Mod => "%",
                BinOp::Min => "min",
                BinOp::Max => "max",
                _ => return None,
            };
            int_transfer(name, interval(a, env)?, interval(b, env)?)
        }
        Expr::Load { buffer, .. } if env.bufs.get(buffer) == Some(&DType::I32) => {
            Some((i32::MIN as i64, i32::MAX as i64))
        }
        _ => None,
    }
}

/// Expr -> term. Buffer names get a `@` prefix so they never meet variables.
fn to_term(e: &Expr, out: &mut RecExpr<TirLang>) -> Id {
    match e {
        Expr::Int(v) => out.add(TirLang::Int(*v)),
        Expr::Bool(b) => out.add(TirLang::Bool(*b)),
        Expr::Float(f) => out.add(TirLang::Float(super::lang::F32Lit(f.to_bits()))),
        Expr::Var(v) => out.add(TirLang::Symbol(Symbol::from(v.as_str()))),
        Expr::Binary(op, a, b) => {
            let ids = [to_term(a, out), to_term(b, out)];
            out.add(match op {
                BinOp::Add => TirLang::Add(ids),
                BinOp::Sub => TirLang::Sub(ids),
                BinOp::Mul => TirLang::Mul(ids),
                BinOp::Div => TirLang::Div(ids),
                BinOp::Mod => TirLang::Mod(ids),
                BinOp::Min => TirLang::Min(ids),
                BinOp::Max => TirLang::Max(ids),
                BinOp::Eq => TirLang::Eq(ids),
                BinOp::Ne => TirLang::Ne(ids),
                BinOp::Lt => TirLang::Lt(ids),
                BinOp::Le => TirLang::Le(ids),
                BinOp::Gt => TirLang::Gt(ids),
                BinOp::Ge => TirLang::Ge(ids),
                BinOp::And => TirLang::And(ids),
                BinOp::Or => TirLang::Or(ids),
            })
        }
        Expr::Unary(UnOp::Not, a) => {
            let a = to_term(a, out);
            out.add(TirLang::Not([a]))
        }
        Expr::Select(c, a, b) => {
            let ids = [to_term(c, out), to_term(a, out), to_term(b, out)];
            out.add(TirLang::Select(ids))
        }
        Expr::Cast(t, a) => {
            let a = to_term(a, out);
            match t {
                ScalarType::F32 => out.add(TirLang::CastF32([a])),
                _ => out.add(TirLang::CastInt([a])),
            }
        }
        Expr::Load { buffer, indices } => {
            let mut ids = vec![out.add(TirLang::Symbol(Symbol::from(format!("@{buffer}"))))];
            ids.extend(indices.iter().map(|i| to_term(i, out)));
            out.add(TirLang::Load(ids.into_boxed_slice()))
        }
        Expr::Call(i, args) => {
            let ids: Vec<Id> = args.iter().map(|a| to_term(a, out)).collect();
            match <TirLang as egg::FromOp>::from_op(i.name(), ids) {
                Ok(n) => out.add(n),
                // Unreachable for the intrinsics of `Intrinsic`; never panic.
                Err(_) => out.add(TirLang::Symbol(Symbol::from(i.name()))),
            }
        }
    }
}

/// Term -> Expr for the integer/boolean fragment; `None` for anything else.
fn from_term(e: &RecExpr<TirLang>, id: Id) -> Option<Expr> {
    let n = &e[id];
    let kid = |i: usize| from_term(e, n.children()[i]);
    let bin = |op: BinOp| Some(Expr::binary(op, kid(0)?, kid(1)?));
    match n {
        TirLang::Int(v) => Some(Expr::Int(*v)),
        TirLang::Bool(b) => Some(Expr::Bool(*b)),
        TirLang::Symbol(s) => Some(Expr::Var(s.to_string())),
        TirLang::Add(_) => bin(BinOp::Add),
        TirLang::Sub(_) => bin(BinOp::Sub),
        TirLang::Mul(_) => bin(BinOp::Mul),
        TirLang::Div(_) => bin(BinOp::Div),
        TirLang::Mod(_) => bin(BinOp::Mod),
        TirLang::Min(_) => bin(BinOp::Min),
        TirLang::Max(_) => bin(BinOp::Max),
        TirLang::Eq(_) => bin(BinOp::Eq),
        TirLang::Ne(_) => bin(BinOp::Ne),
        TirLang::Lt(_) => bin(BinOp::Lt),
        TirLang::Le(_) => bin(BinOp::Le),
        TirLang::Gt(_) => bin(BinOp::Gt),
        TirLang::Ge(_) => bin(BinOp::Ge),
        TirLang::And(_) => bin(BinOp::And),
        TirLang::Or(_) => bin(BinOp::Or),
        TirLang::Not(_) => Some(Expr::Unary(UnOp::Not, Box::new(kid(0)?))),
        TirLang::Select(_) => Some(Expr::select(kid(0)?, kid(1)?, kid(2)?)),
        TirLang::CastInt(_) => Some(Expr::cast(ScalarType::Int, kid(0)?)),
        TirLang::Load(ids) => {
            let TirLang::Symbol(b) = &e[ids[0]] else {
                return None;
            };
            let buffer = b.as_str().strip_prefix('@')?.to_string();
            let mut indices = Vec::new();
            for i in &ids[1..] {
                indices.push(from_term(e, *i)?);
            }
            Some(Expr::Load { buffer, indices })
        }
        _ => None,
    }
}

struct Simplifier<'a> {
    rewrites: &'a [Rewrite<TirLang, TirAnalysis>],
    limits: Limits,
    report: PassReport,
}

impl Simplifier<'_> {
    fn simplify_pure(&mut self, e: &Expr, env: &Env) -> Expr {
        let mut term = RecExpr::default();
        to_term(e, &mut term);
        let mut analysis = TirAnalysis::default();
        for (name, (_, iv)) in &env.vars {
            analysis.symbols.insert(
                Symbol::from(name.as_str()),
                SymInfo {
                    int: *iv,
                    ..SymInfo::default()
                },
            );
        }
        for (name, dt) in &env.bufs {
            if *dt == DType::I32 {
                analysis.symbols.insert(
                    Symbol::from(format!("@{name}")),
                    SymInfo {
                        int: Some((i32::MIN as i64, i32::MAX as i64)),
                        ..SymInfo::default()
                    },
                );
            }
        }
        let runner: Runner<TirLang, TirAnalysis> = Runner::new(analysis)
            .with_node_limit(self.limits.nodes)
            .with_iter_limit(self.limits.iterations)
            .with_time_limit(self.limits.time)
            .with_expr(&term)
            .run(self.rewrites);
        self.report.exprs += 1;
        self.report.record(&runner);
        let Some(root) = runner.roots.first() else {
            return e.clone();
        };
        let (best_cost, best) = Extractor::new(&runner.egraph, IndexCost).find_best(*root);
        if best_cost >= index_cost(&term) {
            return e.clone();
        }
        match from_term(&best, best.root()) {
            Some(new) => {
                self.report.changed += 1;
                new
            }
            None => e.clone(),
        }
    }

    fn expr(&mut self, e: &Expr, env: &Env) -> Expr {
        if pure(e, env) {
            if matches!(e, Expr::Int(_) | Expr::Bool(_) | Expr::Var(_)) {
                return e.clone();
            }
            return self.simplify_pure(e, env);
        }
        match e {
            Expr::Binary(op, a, b) => Expr::binary(*op, self.expr(a, env), self.expr(b, env)),
            Expr::Unary(op, a) => Expr::Unary(*op, Box::new(self.expr(a, env))),
            Expr::Select(c, a, b) => {
                Expr::select(self.expr(c, env), self.expr(a, env), self.expr(b, env))
            }
            Expr::Cast(t, a) => Expr::cast(*t, self.expr(a, env)),
            Expr::Load { buffer, indices } => Expr::Load {
                buffer: buffer.clone(),
                indices: indices.iter().map(|i| self.expr(i, env)).collect(),
            },
            Expr::Call(i, args) => Expr::Call(*i, args.iter().map(|a| self.expr(a, env)).collect()),
            other => other.clone(),
        }
    }

    fn stmt(&mut self, s: &Stmt, env: &Env) -> Stmt {
        match s {
            Stmt::For {
                var,
                min,
                extent,
                kind,
                body,
            } => {
                let min = self.expr(min, env);
                let extent = self.expr(extent, env);
                let range = match (interval(&min, env), interval(&extent, env)) {
                    (Some((lo, lo_hi)), Some((_, ext_hi))) => {
                        let hi = (lo_hi as i128 + ext_hi as i128 - 1)
                            .clamp(i64::MIN as i128, i64::MAX as i128);
                        Some((lo, hi as i64)).filter(|(a, b)| a <= b)
                    }
                    (Some((lo, _)), None) => Some((lo, i64::MAX)),
                    _ => None,
                };
                let mut inner = env.clone();
                inner.vars.insert(var.clone(), (ScalarType::Int, range));
                Stmt::For {
                    var: var.clone(),
                    min,
                    extent,
                    kind: *kind,
                    body: Box::new(self.stmt(body, &inner)),
                }
            }
            Stmt::Seq(items) => Stmt::Seq(items.iter().map(|s| self.stmt(s, env)).collect()),
            Stmt::Let { var, value, body } => {
                let value = self.expr(value, env);
                let mut inner = env.clone();
                let t = ty(&value, env).unwrap_or(ScalarType::F32);
                let iv = if t == ScalarType::Int {
                    interval(&value, env)
                } else {
                    None
                };
                inner.vars.insert(var.clone(), (t, iv));
                Stmt::Let {
                    var: var.clone(),
                    value,
                    body: Box::new(self.stmt(body, &inner)),
                }
            }
            Stmt::If {
                cond,
                then,
                otherwise,
            } => Stmt::If {
                cond: self.expr(cond, env),
                then: Box::new(self.stmt(then, env)),
                otherwise: otherwise.as_ref().map(|o| Box::new(self.stmt(o, env))),
            },
            Stmt::Store {
                buffer,
                indices,
                value,
            } => Stmt::Store {
                buffer: buffer.clone(),
                indices: indices.iter().map(|i| self.expr(i, env)).collect(),
                value: self.expr(value, env),
            },
            Stmt::Prefetch { buffer, indices } => Stmt::Prefetch {
                buffer: buffer.clone(),
                indices: indices.iter().map(|i| self.expr(i, env)).collect(),
            },
            Stmt::Allocate {
                name,
                dtype,
                shape,
                scope,
                body,
            } => {
                let mut inner = env.clone();
                inner.bufs.insert(name.clone(), *dtype);
                Stmt::Allocate {
                    name: name.clone(),
                    dtype: *dtype,
                    shape: shape.clone(),
                    scope: *scope,
                    body: Box::new(self.stmt(body, &inner)),
                }
            }
        }
    }
}

/// Simplifies every integer/boolean expression of `f` with the integer index rules
/// of `rules` (see the module docs). Returns the new function and what happened.
pub fn simplify_function(
    f: &Function,
    rules: &RuleSet,
    limits: &Limits,
) -> Result<(Function, PassReport), PassError> {
    let rewrites = index_rules(rules).rewrites(Level::Index)?;
    let mut env = Env::default();
    for p in &f.params {
        env.bufs.insert(p.name.clone(), p.dtype);
    }
    let mut s = Simplifier {
        rewrites: &rewrites,
        limits: *limits,
        report: PassReport::default(),
    };
    let body = s.stmt(&f.body, &env);
    let out = Function {
        name: f.name.clone(),
        params: f.params.clone(),
        body,
    };
    let mut report = s.report;
    report.before = FunctionCost::of(f);
    report.after = FunctionCost::of(&out);
    Ok((out, report))
}

/// The pass as the compile pipeline runs it on a workload: [`simplify_function`] on
/// `func` (the lowered or a scheduled function of `w`), then the result is checked
/// against the reference interpreter on random inputs for each seed in `seeds`:
/// outputs must be bit-identical (index arithmetic is exact), else
/// [`PassError::Mismatch`].
pub fn simplify_checked(
    w: &Workload,
    func: &Function,
    rules: &RuleSet,
    limits: &Limits,
    seeds: &[u64],
) -> Result<(Function, PassReport), PassError> {
    let (out, report) = simplify_function(func, rules, limits)?;
    for &seed in seeds {
        let inputs = w.random_inputs(seed);
        let before = w.interpret_function(func, &inputs)?;
        let after = w.interpret_function(&out, &inputs)?;
        if before != after {
            return Err(PassError::Mismatch {
                function: func.name.clone(),
                seed,
            });
        }
    }
    Ok((out, report))
}

/// The BCR compute form chosen for one weight matrix.
#[derive(Debug, Clone)]
pub struct BcrFormReport {
    /// Weight name (`W`, `W_ih`, ...).
    pub weight: String,
    /// The starting term: [`BcrStart`].
    pub start: BcrStart,
    /// Input the matrix multiplies (`X`, `x`, `h_prev`, `im2col(X)`).
    pub input: String,
    /// Non-empty blocks.
    pub blocks: usize,
    /// Kept rows over all blocks (products in the per-row form).
    pub row_products: usize,
    /// [`TensorCost`] of the per-row form.
    pub cost_before: u64,
    /// [`TensorCost`] of the extracted form.
    pub cost_after: u64,
    /// Gathers of input rows in the per-row form.
    pub gathers_before: usize,
    /// Gathers of input rows in the extracted form.
    pub gathers_after: usize,
    /// Rule applications during saturation.
    pub fired: BTreeMap<String, usize>,
    /// Stop reason in words.
    pub stop_reason: String,
    /// True when the run stopped on a limit.
    pub hit_limit: bool,
    /// E-graph size at the end.
    pub egraph_nodes: usize,
    /// The extracted term (printed).
    pub extracted: String,
    /// Largest relative difference between the extracted term's value and the
    /// interpreter's output, when checked (`bcr-fc` without bias or activation, and a
    /// term small enough to evaluate: [`MAX_EVAL_ELEMENTS`]).
    pub checked_max_rel_diff: Option<f32>,
}

impl BcrFormReport {
    /// Rule applications as text.
    pub fn fired_text(&self) -> String {
        fired_text(&self.fired)
    }
}

/// The term a BCR form search starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BcrStart {
    /// The lowered loop nest as a term: one product per kept row, each with its own
    /// gather of input rows (`Σ_b Σ_i scatter-rows(v_bi · gather-rows(X, cols_b), [row_bi], M)`).
    PerRow,
    /// The dense matmul of the weight masked block by block:
    /// `matmul(Σ_b bcr-mask(W, rows_b, cols_b), X)`.
    MaskedDense,
}

impl fmt::Display for BcrStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BcrStart::PerRow => "per-row form (the lowered loop nest)",
            BcrStart::MaskedDense => "masked dense matmul",
        })
    }
}

/// Builds a term node by node. (`RecExpr::add` is linear in the term's size in egg
/// 0.11, via `RecExpr::root`, which makes large terms quadratic to build.)
#[derive(Default)]
pub(super) struct TermBuilder(Vec<TirLang>);

impl TermBuilder {
    /// Adds a node; its children must already be in.
    pub(super) fn add(&mut self, n: TirLang) -> Id {
        self.0.push(n);
        Id::from(self.0.len() - 1)
    }

    /// The nodes, for `RecExpr::from`.
    pub(super) fn into_nodes(self) -> Vec<TirLang> {
        self.0
    }
}

/// The tensor term of one BCR matrix, with the data of its symbols.
struct BcrTerm {
    term: RecExpr<TirLang>,
    symbols: HashMap<Symbol, SymInfo>,
    values: HashMap<String, Value>,
    blocks: usize,
    rows: usize,
}

/// Builds the per-row form `Σ_blocks Σ_rows scatter-rows(v_row · gather-rows(X, cols_b),
/// [row], M)`: the rows of a block summed right-nested (so neighbours can merge), the
/// blocks summed as a balanced tree.
fn bcr_term(
    arrays: &BcrArrays,
    weight: &str,
    input: &str,
    m: usize,
    k: usize,
    n: usize,
) -> BcrTerm {
    let mut term = TermBuilder::default();
    let mut symbols = HashMap::new();
    let mut values = HashMap::new();
    let konst = |shape| SymInfo {
        shape: Some(shape),
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
    let mut block_sums = Vec::new();
    let mut rows_total = 0;
    for b in 0..arrays.blocks {
        let (r0, r1) = (arrays.row_ptr[b] as usize, arrays.row_ptr[b + 1] as usize);
        let (c0, c1) = (arrays.col_ptr[b] as usize, arrays.col_ptr[b + 1] as usize);
        let v0 = arrays.val_ptr[b] as usize;
        let q = c1 - c0;
        let cname = format!("{weight}.c{b}");
        let cols: Vec<i64> = arrays.cols[c0..c1].iter().map(|&c| c as i64).collect();
        symbols.insert(Symbol::from(cname.as_str()), SymInfo::const_idx(&cols));
        values.insert(cname.clone(), Value::Idx(cols));
        let cs = term.add(TirLang::Symbol(Symbol::from(cname.as_str())));
        let g = term.add(TirLang::GatherRows([x, cs]));
        let mut row_terms = Vec::new();
        for i in 0..(r1 - r0) {
            let vname = format!("{weight}.v{b}.{i}");
            let rname = format!("{weight}.r{b}.{i}");
            let row = vec![arrays.rows[r0 + i] as i64];
            symbols.insert(Symbol::from(vname.as_str()), konst(Shape::Mat(1, q)));
            symbols.insert(Symbol::from(rname.as_str()), SymInfo::const_idx(&row));
            values.insert(
                vname.clone(),
                Value::mat(1, q, arrays.values[v0 + i * q..v0 + (i + 1) * q].to_vec()),
            );
            values.insert(rname.clone(), Value::Idx(row));
            let v = term.add(TirLang::Symbol(Symbol::from(vname.as_str())));
            let r = term.add(TirLang::Symbol(Symbol::from(rname.as_str())));
            let p = term.add(TirLang::MatMul([v, g]));
            row_terms.push(term.add(TirLang::ScatterRows([p, r, mm])));
        }
        rows_total += row_terms.len();
        if let Some(sum) = right_sum(&mut term, &row_terms) {
            block_sums.push(sum);
        }
    }
    let _ = balanced_sum(&mut term, &block_sums);
    BcrTerm {
        term: RecExpr::from(term.0),
        symbols,
        values,
        blocks: arrays.blocks,
        rows: rows_total,
    }
}

/// Builds `matmul(Σ_b bcr-mask(W, rows_b, cols_b), X)` (a balanced sum).
fn masked_dense_term(
    arrays: &BcrArrays,
    dense: &crate::matrix::Matrix,
    weight: &str,
    input: &str,
    n: usize,
) -> BcrTerm {
    let (m, k) = (dense.rows(), dense.cols());
    let mut term = TermBuilder::default();
    let mut symbols = HashMap::new();
    let mut values = HashMap::new();
    let konst = |shape| SymInfo {
        shape: Some(shape),
        konst: true,
        ..SymInfo::default()
    };
    symbols.insert(Symbol::from(weight), konst(Shape::Mat(m, k)));
    values.insert(weight.to_string(), Value::mat(m, k, dense.data().to_vec()));
    symbols.insert(
        Symbol::from(input),
        SymInfo {
            shape: Some(Shape::Mat(k, n)),
            ..SymInfo::default()
        },
    );
    let wid = term.add(TirLang::Symbol(Symbol::from(weight)));
    let mut masks = Vec::new();
    let mut rows_total = 0;
    for b in 0..arrays.blocks {
        let (r0, r1) = (arrays.row_ptr[b] as usize, arrays.row_ptr[b + 1] as usize);
        let (c0, c1) = (arrays.col_ptr[b] as usize, arrays.col_ptr[b + 1] as usize);
        rows_total += r1 - r0;
        let rname = format!("{weight}.rows{b}");
        let cname = format!("{weight}.cols{b}");
        let rows: Vec<i64> = arrays.rows[r0..r1].iter().map(|&r| r as i64).collect();
        let cols: Vec<i64> = arrays.cols[c0..c1].iter().map(|&c| c as i64).collect();
        symbols.insert(Symbol::from(rname.as_str()), SymInfo::const_idx(&rows));
        symbols.insert(Symbol::from(cname.as_str()), SymInfo::const_idx(&cols));
        values.insert(rname.clone(), Value::Idx(rows));
        values.insert(cname.clone(), Value::Idx(cols));
        let r = term.add(TirLang::Symbol(Symbol::from(rname.as_str())));
        let c = term.add(TirLang::Symbol(Symbol::from(cname.as_str())));
        masks.push(term.add(TirLang::BcrMask([wid, r, c])));
    }
    if let Some(sum) = balanced_sum(&mut term, &masks) {
        let x = term.add(TirLang::Symbol(Symbol::from(input)));
        term.add(TirLang::MatMul([sum, x]));
    }
    BcrTerm {
        term: RecExpr::from(term.0),
        symbols,
        values,
        blocks: arrays.blocks,
        rows: rows_total,
    }
}

/// A balanced sum (depth log2 of the count), so distributing a matmul over it takes
/// few iterations.
pub(super) fn balanced_sum(term: &mut TermBuilder, items: &[Id]) -> Option<Id> {
    match items.len() {
        0 => None,
        1 => Some(items[0]),
        n => {
            let (a, b) = items.split_at(n / 2);
            let a = balanced_sum(term, a)?;
            let b = balanced_sum(term, b)?;
            Some(term.add(TirLang::EwAdd([a, b])))
        }
    }
}

fn right_sum(term: &mut TermBuilder, items: &[Id]) -> Option<Id> {
    let (last, rest) = items.split_last()?;
    let mut acc = *last;
    for it in rest.iter().rev() {
        acc = term.add(TirLang::EwAdd([*it, acc]));
    }
    Some(acc)
}

/// Gathers of `input` rows, counted per use (a shared subterm counts each time it is
/// used, as the tree cost does).
pub(super) fn count_input_gathers(e: &RecExpr<TirLang>, input: &str) -> usize {
    let nodes = e.as_ref();
    let mut uses: Vec<usize> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let own = match n {
            TirLang::GatherRows([a, _]) => {
                usize::from(matches!(&e[*a], TirLang::Symbol(s) if s.as_str() == input))
            }
            _ => 0,
        };
        let total = n.fold(own, |acc, id| acc.saturating_add(uses[usize::from(id)]));
        uses.push(total);
    }
    uses.last().copied().unwrap_or(0)
}

/// The [`TensorCost`] of a whole term (as an e-graph of that term alone).
pub(super) fn tensor_cost_of(term: &RecExpr<TirLang>, symbols: &HashMap<Symbol, SymInfo>) -> u64 {
    let mut g = TirEGraph::new(TirAnalysis {
        symbols: symbols.clone(),
    });
    let root = g.add_expr(term);
    g.rebuild();
    let cf = TensorCost { egraph: &g };
    Extractor::new(&g, cf).find_best_cost(root)
}

/// Picks the BCR compute form of every BCR weight of `w` (see the module docs).
pub fn bcr_forms(
    w: &Workload,
    rules: &RuleSet,
    limits: &Limits,
) -> Result<Vec<BcrFormReport>, PassError> {
    let rewrites = rules.rewrites(Level::Tensor)?;
    let mut out = Vec::new();
    for mat in &w.matrices {
        let Some(bcr) = &mat.bcr else { continue };
        let arrays = BcrArrays::from_matrix(bcr)?;
        if arrays.blocks == 0 {
            continue;
        }
        let (m, k) = (bcr.rows(), bcr.cols());
        let Some((input, n)) = super::bcr_choice::input_of(w, &mat.name) else {
            continue;
        };
        for start in [BcrStart::PerRow, BcrStart::MaskedDense] {
            let t = match start {
                BcrStart::PerRow => bcr_term(&arrays, &mat.name, &input, m, k, n),
                BcrStart::MaskedDense => {
                    masked_dense_term(&arrays, &mat.dense, &mat.name, &input, n)
                }
            };
            let runner: Runner<TirLang, TirAnalysis> = Runner::new(TirAnalysis {
                symbols: t.symbols.clone(),
            })
            .with_node_limit(limits.nodes)
            .with_iter_limit(limits.iterations)
            .with_time_limit(limits.time)
            .with_expr(&t.term)
            .run(&rewrites);
            let mut fired = BTreeMap::new();
            for it in &runner.iterations {
                for (name, c) in &it.applied {
                    *fired.entry(name.to_string()).or_insert(0) += c;
                }
            }
            let root = runner.roots[0];
            let (cost_after, best) = Extractor::new(
                &runner.egraph,
                TensorCost {
                    egraph: &runner.egraph,
                },
            )
            .find_best(root);
            let cost_before = tensor_cost_of(&t.term, &t.symbols);
            let checked = check_against_interpreter(w, &best, &t, &input);
            out.push(BcrFormReport {
                weight: mat.name.clone(),
                start,
                input: input.clone(),
                blocks: t.blocks,
                row_products: t.rows,
                cost_before,
                cost_after,
                gathers_before: count_input_gathers(&t.term, &input),
                gathers_after: count_input_gathers(&best, &input),
                fired,
                stop_reason: stop_reason_text(&runner.stop_reason),
                hit_limit: is_limit(&runner.stop_reason),
                egraph_nodes: runner.egraph.total_number_of_nodes(),
                extracted: super::lang::print_term(&best),
                checked_max_rel_diff: checked,
            });
        }
    }
    Ok(out)
}

/// The most tensor elements the evaluation of an extracted term may materialise
/// (every node's value is kept): 2^25 (128 MiB of `f32`).
pub const MAX_EVAL_ELEMENTS: u64 = 1 << 25;

/// Elements materialised when evaluating `e` node by node (from the shapes).
fn eval_elements(e: &RecExpr<TirLang>, symbols: &HashMap<Symbol, SymInfo>) -> u64 {
    let mut facts: Vec<super::analysis::Facts> = Vec::with_capacity(e.as_ref().len());
    let mut total = 0u64;
    for n in e.as_ref() {
        let kids: Vec<&super::analysis::Facts> = n
            .children()
            .iter()
            .map(|c| &facts[usize::from(*c)])
            .collect();
        let f =
            super::analysis::transfer(n, &kids, &|s| symbols.get(&s).cloned().unwrap_or_default());
        total = total.saturating_add(match f.shape {
            Some(Shape::Mat(r, c)) => (r * c) as u64,
            Some(Shape::Idx(l)) => l as u64,
            None => 0,
        });
        facts.push(f);
    }
    total
}

/// For `bcr-fc` without bias and activation: evaluates `best` on random inputs and
/// returns the largest relative difference from the interpreter's `Y`.
fn check_against_interpreter(
    w: &Workload,
    best: &RecExpr<TirLang>,
    t: &BcrTerm,
    input: &str,
) -> Option<f32> {
    let WorkloadSpec::Fc(s) = &w.spec else {
        return None;
    };
    if s.bias || s.act != Activation::None {
        return None;
    }
    if eval_elements(best, &t.symbols) > MAX_EVAL_ELEMENTS {
        return None;
    }
    let inputs = w.random_inputs(7);
    let x = inputs.get("X")?;
    let crate::tensor::TensorData::F32(xd) = x.data() else {
        return None;
    };
    let xv = Value::mat(s.k, s.n, xd.to_vec());
    let outs = w.interpret(&inputs).ok()?;
    let crate::tensor::TensorData::F32(yd) = outs.get("Y")?.data() else {
        return None;
    };
    let lookup = |name: &str| {
        if name == input {
            Some(xv.clone())
        } else {
            t.values.get(name).cloned()
        }
    };
    let Ok(Value::Mat { data, .. }) = eval_expr(best, &lookup) else {
        return Some(f32::INFINITY);
    };
    if data.len() != yd.len() {
        return Some(f32::INFINITY);
    }
    Some(
        data.iter()
            .zip(yd.iter())
            .map(|(a, b)| (a - b).abs() / 1f32.max(a.abs()).max(b.abs()))
            .fold(0.0, f32::max),
    )
}
