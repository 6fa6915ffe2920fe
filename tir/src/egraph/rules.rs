//! Rewrite rules as data: the rule-file format, its parser, and [`RuleSet`].
//!
//! # The rule-file format
//! One rule per line; `#` starts a comment. The comment line right above a rule is
//! its documentation (shipped rules all have one). A rule reads
//!
//! ```text
//! NAME [FLAGS]: LHS => RHS [if COND] [where ?v: KIND, ...]
//! ```
//!
//! - `NAME`: letters, digits, `-`, `_`, `.`; unique among all loaded rules.
//! - `[FLAGS]` (optional): `[approx]` marks a rule that is only approximately true
//!   in floating point (reassociating float sums); the checker compares its two
//!   sides with a relative tolerance of 1e-4 and says so. Without it, floats must
//!   agree exactly.
//! - `LHS`, `RHS`, `COND`: s-expressions over the operators of
//!   [`lang::OPS`](super::lang::OPS), pattern variables `?x`, integer literals,
//!   float literals (with a `.` or exponent) and `true`/`false`.
//! - `=>` rewrites left to right; `<=>` both ways (then each side must bind every
//!   variable of the other).
//! - `if COND`: a boolean condition over variables of the left side (and of the
//!   right side for `<=>`). In the compile pipeline it must be *provable* from the
//!   e-class facts (constants and intervals); the checker only draws bindings that
//!   satisfy it.
//! - Declared tensor kinds are conditions too: in the compile pipeline a rule fires
//!   only where the matched classes are known to have those kinds (shapes matching
//!   the dimension names, index bounds, distinctness, permutations; see
//!   [`kinds_hold`]), so a rule is only ever applied where it was checked.
//! - `where ?v: KIND, ...`: variable kinds. Index-level variables default to `int`
//!   (the first argument of `load` defaults to `buf`); tensor rules must declare every
//!   variable. Kinds: `int`, `bool`, `f32`, `buf` (an uninterpreted buffer),
//!   `mat[m,k]` (an m x k `f32` matrix), `idx[a,m]` (a length-a vector of indices in
//!   `[0, m)`, repeats allowed), `distinct[a,m]` (a <= m distinct indices in `[0, m)`,
//!   in random order), `perm[m]` (a permutation of `0..m`), `dim[m]` (the integer
//!   value of dimension `m`). Dimensions are drawn in `1..=5`. Dimension names are
//!   shared within a rule, so `?W: mat[m,k], ?X: mat[k,n]` makes `(matmul ?W ?X)`
//!   well shaped.
//!
//! Every error names `FILE:LINE:COLUMN` and what was expected.

use super::analysis::{cond_holds, TirAnalysis, TirEGraph};
use super::lang::{find_op, Arity, F32Lit, Level, TirLang};
use egg::{
    Condition, ConditionalApplier, ENodeOrVar, FromOp, Id, Pattern, PatternAst, Rewrite, Subst, Var,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// The shipped rule files, `(label, text)`, embedded in the binary.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "tir/rules/index.rules",
        include_str!("../../rules/index.rules"),
    ),
    (
        "tir/rules/algebra.rules",
        include_str!("../../rules/algebra.rules"),
    ),
    ("tir/rules/bcr.rules", include_str!("../../rules/bcr.rules")),
];

/// The form every rule line must have, quoted in parse errors.
pub const EXPECTED_FORM: &str =
    "NAME [approx]: LHS => RHS [if COND] [where ?v: KIND, ...]   (or <=> for both directions)";

/// The kind of a pattern variable (what the checker draws for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An integer.
    Int,
    /// A boolean.
    Bool,
    /// A float.
    F32,
    /// An uninterpreted buffer (the first argument of `load`).
    Buf,
    /// A `rows x cols` matrix, by dimension names.
    Mat(String, String),
    /// A vector of `len` indices in `[0, bound)`, repeats allowed.
    Idx(String, String),
    /// `len <= bound` distinct indices in `[0, bound)`.
    Distinct(String, String),
    /// A permutation of `0..n`.
    Perm(String),
    /// An integer equal to a dimension.
    Dim(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Int => write!(f, "int"),
            Kind::Bool => write!(f, "bool"),
            Kind::F32 => write!(f, "f32"),
            Kind::Buf => write!(f, "buf"),
            Kind::Mat(a, b) => write!(f, "mat[{a},{b}]"),
            Kind::Idx(a, b) => write!(f, "idx[{a},{b}]"),
            Kind::Distinct(a, b) => write!(f, "distinct[{a},{b}]"),
            Kind::Perm(a) => write!(f, "perm[{a}]"),
            Kind::Dim(a) => write!(f, "dim[{a}]"),
        }
    }
}

/// One loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// File it came from (a path, or the label of a shipped file).
    pub file: String,
    /// 1-based line in that file.
    pub line: usize,
    /// The comment line right above the rule, if any.
    pub doc: Option<String>,
    /// Left side.
    pub lhs: PatternAst<TirLang>,
    /// Right side.
    pub rhs: PatternAst<TirLang>,
    /// Side condition.
    pub cond: Option<PatternAst<TirLang>>,
    /// `<=>`.
    pub bidirectional: bool,
    /// `[approx]`: floats compared with a relative tolerance.
    pub approx: bool,
    /// Kind of every variable (`?x` -> kind).
    pub kinds: BTreeMap<String, Kind>,
    /// Tensor rules use at least one tensor operator.
    pub level: Level,
    /// The rule text after `NAME:` (as written, trimmed).
    pub text: String,
}

impl Rule {
    /// `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// What can go wrong loading rules.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// A rule file could not be read.
    #[error("cannot read rule file {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{file}:{line}:{col}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        col: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A rule asked to be dropped is not loaded.
    #[error(
        "cannot drop rule `{name}`: no loaded rule has that name (see `grim-tune rules list`)"
    )]
    UnknownRule {
        /// The name asked for.
        name: String,
    },
}

/// A set of loaded rules, in load order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    /// The rules.
    pub rules: Vec<Rule>,
}

struct Scan<'a> {
    chars: Vec<char>,
    i: usize,
    file: &'a str,
    line: usize,
}

type PResult<T> = Result<T, RuleError>;

impl Scan<'_> {
    fn err<T>(&self, col: usize, msg: impl Into<String>) -> PResult<T> {
        Err(RuleError::Syntax {
            file: self.file.to_string(),
            line: self.line,
            col,
            message: msg.into(),
        })
    }
    fn col(&self) -> usize {
        self.i + 1
    }
    fn skip_ws(&mut self) {
        while self.i < self.chars.len() && self.chars[self.i].is_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }
    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.i >= self.chars.len()
    }
    /// A run of characters that are not whitespace, parens, brackets, `,` or `:`.
    fn word(&mut self) -> (String, usize) {
        self.skip_ws();
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || "()[],:".contains(c) {
                break;
            }
            self.i += 1;
        }
        (self.chars[start..self.i].iter().collect(), start + 1)
    }
    fn expect_char(&mut self, c: char, what: &str) -> PResult<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            let found = self
                .peek()
                .map_or("end of line".to_string(), |c| format!("`{c}`"));
            self.err(self.col(), format!("expected {what}, found {found}"))
        }
    }
    fn sexpr(&mut self, depth: usize) -> PResult<Sx> {
        self.skip_ws();
        let col = self.col();
        if depth > 64 {
            return self.err(col, "pattern nested too deeply");
        }
        match self.peek() {
            None => self.err(col, "expected a pattern, found end of line"),
            Some('(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    match self.peek() {
                        None => return self.err(col, "unclosed `(`"),
                        Some(')') => {
                            self.i += 1;
                            break;
                        }
                        Some(_) => items.push(self.sexpr(depth + 1)?),
                    }
                }
                Ok(Sx::List(items, col))
            }
            Some(')') => self.err(col, "unexpected `)`"),
            Some(_) => {
                let (w, c) = self.word();
                if w.is_empty() {
                    let ch = self.peek().unwrap_or(' ');
                    return self.err(c, format!("expected a pattern, found `{ch}`"));
                }
                Ok(Sx::Atom(w, c))
            }
        }
    }
}

enum Sx {
    Atom(String, usize),
    List(Vec<Sx>, usize),
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// Builds a pattern from an s-expression; records each variable's first column and
/// the variables used as a load's buffer.
fn build(
    sc: &Scan<'_>,
    sx: &Sx,
    ast: &mut PatternAst<TirLang>,
    vars: &mut BTreeMap<String, usize>,
    bufs: &mut BTreeSet<String>,
    level: &mut Level,
) -> PResult<Id> {
    match sx {
        Sx::Atom(w, col) => {
            if let Some(name) = w.strip_prefix('?') {
                if !valid_name(name) {
                    return sc.err(*col, format!("bad variable name `{w}`"));
                }
                let v: Var = w.parse().map_err(|_| RuleError::Syntax {
                    file: sc.file.to_string(),
                    line: sc.line,
                    col: *col,
                    message: format!("bad variable name `{w}`"),
                })?;
                vars.entry(w.clone()).or_insert(*col);
                return Ok(ast.add(ENodeOrVar::Var(v)));
            }
            let node = if let Ok(v) = w.parse::<i64>() {
                TirLang::Int(v)
            } else if let Ok(f) = w.parse::<F32Lit>() {
                TirLang::Float(f)
            } else if w == "true" || w == "false" {
                TirLang::Bool(w == "true")
            } else if find_op(w).is_some() {
                return sc.err(
                    *col,
                    format!("operator `{w}` must be applied: write ({w} ...)"),
                );
            } else {
                return sc.err(
                    *col,
                    format!("unknown atom `{w}`: expected a ?variable, an integer, a float (with `.`), true or false"),
                );
            };
            Ok(ast.add(ENodeOrVar::ENode(node)))
        }
        Sx::List(items, col) => {
            let Some((head, args)) = items.split_first() else {
                return sc.err(*col, "empty `()`: expected (OPERATOR ARG ...)");
            };
            let Sx::Atom(op_name, op_col) = head else {
                return sc.err(*col, "expected an operator name after `(`");
            };
            let Some(op) = find_op(op_name) else {
                let known: Vec<&str> = super::lang::OPS.iter().map(|o| o.name).collect();
                return sc.err(
                    *op_col,
                    format!(
                        "unknown operator `{op_name}`; known operators: {}",
                        known.join(" ")
                    ),
                );
            };
            let ok = match op.arity {
                Arity::Exactly(n) => args.len() == n,
                Arity::AtLeast(n) => args.len() >= n,
            };
            if !ok {
                let want = match op.arity {
                    Arity::Exactly(n) => format!("{n}"),
                    Arity::AtLeast(n) => format!("at least {n}"),
                };
                return sc.err(
                    *op_col,
                    format!("`{op_name}` takes {want} arguments, got {}", args.len()),
                );
            }
            if op.level == Level::Tensor {
                *level = Level::Tensor;
            }
            if op_name == "load" {
                if let Some(Sx::Atom(b, _)) = args.first() {
                    if b.starts_with('?') {
                        bufs.insert(b.clone());
                    }
                }
            }
            let mut kids = Vec::new();
            for a in args {
                kids.push(build(sc, a, ast, vars, bufs, level)?);
            }
            let node = TirLang::from_op(op_name, kids).map_err(|e| RuleError::Syntax {
                file: sc.file.to_string(),
                line: sc.line,
                col: *op_col,
                message: format!("{e}"),
            })?;
            Ok(ast.add(ENodeOrVar::ENode(node)))
        }
    }
}

struct Side {
    ast: PatternAst<TirLang>,
    vars: BTreeMap<String, usize>,
    col: usize,
    lone_var: bool,
}

fn side(sc: &mut Scan<'_>, bufs: &mut BTreeSet<String>, level: &mut Level) -> PResult<Side> {
    sc.skip_ws();
    let col = sc.col();
    let sx = sc.sexpr(0)?;
    let mut ast = PatternAst::default();
    let mut vars = BTreeMap::new();
    build(sc, &sx, &mut ast, &mut vars, bufs, level)?;
    Ok(Side {
        lone_var: matches!(sx, Sx::Atom(ref w, _) if w.starts_with('?')),
        ast,
        vars,
        col,
    })
}

fn parse_kind(sc: &mut Scan<'_>) -> PResult<Kind> {
    let (k, col) = sc.word();
    let dims = |sc: &mut Scan<'_>, n: usize| -> PResult<Vec<String>> {
        sc.expect_char('[', &format!("`[` and {n} dimension name(s) after `{k}`"))?;
        let mut out = Vec::new();
        for i in 0..n {
            if i > 0 {
                sc.expect_char(',', "`,` between dimensions")?;
            }
            let (d, c) = sc.word();
            if !valid_name(&d) {
                return sc.err(c, "expected a dimension name such as `m`");
            }
            out.push(d);
        }
        sc.expect_char(']', "`]`")?;
        Ok(out)
    };
    Ok(match k.as_str() {
        "int" => Kind::Int,
        "bool" => Kind::Bool,
        "f32" => Kind::F32,
        "buf" => Kind::Buf,
        "mat" => {
            let d = dims(sc, 2)?;
            Kind::Mat(d[0].clone(), d[1].clone())
        }
        "idx" => {
            let d = dims(sc, 2)?;
            Kind::Idx(d[0].clone(), d[1].clone())
        }
        "distinct" => {
            let d = dims(sc, 2)?;
            Kind::Distinct(d[0].clone(), d[1].clone())
        }
        "perm" => {
            let d = dims(sc, 1)?;
            Kind::Perm(d[0].clone())
        }
        "dim" => {
            let d = dims(sc, 1)?;
            Kind::Dim(d[0].clone())
        }
        _ => {
            return sc.err(
                col,
                format!("unknown kind `{k}`: expected int, bool, f32, buf, mat[m,k], idx[a,m], distinct[a,m], perm[m] or dim[m]"),
            )
        }
    })
}

fn parse_rule_line(text: &str, file: &str, line: usize, doc: Option<String>) -> PResult<Rule> {
    let mut sc = Scan {
        chars: text.chars().collect(),
        i: 0,
        file,
        line,
    };
    let form = format!("; expected form: {EXPECTED_FORM}");
    let (name, ncol) = sc.word();
    if !valid_name(&name) {
        return sc.err(
            ncol,
            format!("expected a rule name (letters, digits, -, _, .){form}"),
        );
    }
    let mut approx = false;
    sc.skip_ws();
    if sc.peek() == Some('[') {
        sc.i += 1;
        loop {
            let (flag, fcol) = sc.word();
            match flag.as_str() {
                "approx" => approx = true,
                _ => return sc.err(fcol, format!("unknown flag `{flag}`: expected `approx`")),
            }
            sc.skip_ws();
            match sc.peek() {
                Some(',') => sc.i += 1,
                Some(']') => {
                    sc.i += 1;
                    break;
                }
                _ => return sc.err(sc.col(), "expected `,` or `]` in the flag list"),
            }
        }
    }
    sc.skip_ws();
    if sc.peek() != Some(':') {
        return sc.err(sc.col(), format!("expected `:` after the rule name{form}"));
    }
    sc.i += 1;
    sc.skip_ws();
    let body_start = sc.i;
    let mut bufs = BTreeSet::new();
    let mut level = Level::Index;
    let lhs = side(&mut sc, &mut bufs, &mut level)?;
    let (arrow, acol) = sc.word();
    let bidirectional = match arrow.as_str() {
        "=>" => false,
        "<=>" => true,
        "" => {
            return sc.err(
                acol,
                format!("expected `=>` or `<=>` after the left side{form}"),
            )
        }
        other => {
            return sc.err(
                acol,
                format!("expected `=>` or `<=>`, found `{other}`{form}"),
            )
        }
    };
    let rhs = side(&mut sc, &mut bufs, &mut level)?;
    let mut cond = None;
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    let mut decl_cols: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        if sc.at_end() {
            break;
        }
        let save = sc.i;
        let (kw, kcol) = sc.word();
        match kw.as_str() {
            "if" if cond.is_none() && kinds.is_empty() => {
                let c = side(&mut sc, &mut bufs, &mut level)?;
                cond = Some(c);
            }
            "where" if kinds.is_empty() => loop {
                let (v, vcol) = sc.word();
                if !v.starts_with('?') || !valid_name(&v[1..]) {
                    return sc.err(vcol, "expected a variable such as `?W` in `where`");
                }
                sc.expect_char(':', &format!("`:` and a kind after `{v}`"))?;
                let k = parse_kind(&mut sc)?;
                if kinds.insert(v.clone(), k).is_some() {
                    return sc.err(vcol, format!("kind of `{v}` declared twice"));
                }
                decl_cols.insert(v, vcol);
                sc.skip_ws();
                if sc.peek() == Some(',') {
                    sc.i += 1;
                } else {
                    break;
                }
            },
            _ => {
                sc.i = save;
                let what = if kw.is_empty() {
                    sc.peek().map_or(String::new(), |c| c.to_string())
                } else {
                    kw
                };
                return sc.err(
                    kcol,
                    format!("unexpected `{what}` after the right side: expected `if COND`, `where ...` or end of line{form}"),
                );
            }
        }
    }
    // Variable binding rules.
    if lhs.lone_var {
        return sc.err(
            lhs.col,
            "the left side must be an operator application, not a lone variable",
        );
    }
    for (v, col) in &rhs.vars {
        if !lhs.vars.contains_key(v) {
            return sc.err(
                *col,
                format!("variable `{v}` on the right is not bound on the left"),
            );
        }
    }
    if bidirectional {
        if rhs.lone_var {
            return sc.err(
                rhs.col,
                "with `<=>` the right side must be an operator application, not a lone variable",
            );
        }
        for (v, col) in &lhs.vars {
            if !rhs.vars.contains_key(v) {
                return sc.err(
                    *col,
                    format!("with `<=>`, variable `{v}` on the left must also appear on the right"),
                );
            }
        }
    }
    if let Some(c) = &cond {
        for (v, col) in &c.vars {
            if !lhs.vars.contains_key(v) {
                return sc.err(
                    *col,
                    format!("variable `{v}` in the condition is not bound on the left"),
                );
            }
        }
    }
    for (v, col) in &decl_cols {
        if !lhs.vars.contains_key(v) && !rhs.vars.contains_key(v) {
            return sc.err(*col, format!("`{v}` is declared but not used"));
        }
    }
    for (v, col) in &lhs.vars {
        if kinds.contains_key(v) {
            continue;
        }
        if level == Level::Tensor {
            return sc.err(
                *col,
                format!("tensor rule: declare the kind of `{v}`, e.g. `where {v}: mat[m,k]`"),
            );
        }
        let k = if bufs.contains(v) {
            Kind::Buf
        } else {
            Kind::Int
        };
        kinds.insert(v.clone(), k);
    }
    let end = text.len();
    let body: String = text
        .chars()
        .skip(body_start)
        .take(end)
        .collect::<String>()
        .trim()
        .to_string();
    Ok(Rule {
        name,
        file: file.to_string(),
        line,
        doc,
        lhs: lhs.ast,
        rhs: rhs.ast,
        cond: cond.map(|c| c.ast),
        bidirectional,
        approx,
        kinds,
        level,
        text: body,
    })
}

/// When a rewrite may fire: the declared tensor kinds of its variables hold on the
/// matched classes ([`kinds_hold`]) and its condition is proved from the facts.
struct RuleGuard {
    kinds: Vec<(Var, Kind)>,
    cond: Option<PatternAst<TirLang>>,
}

impl Condition<TirLang, TirAnalysis> for RuleGuard {
    fn check(&self, egraph: &mut TirEGraph, _eclass: Id, subst: &Subst) -> bool {
        kinds_hold(egraph, subst, &self.kinds)
            && self
                .cond
                .as_ref()
                .is_none_or(|c| cond_holds(egraph, subst, c))
    }
}

/// True when the classes bound by `subst` have the declared tensor kinds: shapes
/// agree with the dimension names (one value per name), index vectors are within
/// their bounds, `distinct[..]` vectors are known to have no repeats and `perm[..]`
/// vectors are known permutations, `dim[m]` is the constant value of `m`. Scalar kinds
/// (`int`, `bool`, `f32`, `buf`) are not checked here. Without this guard a rule
/// checked on well-kinded bindings could fire on terms it was never checked for.
pub fn kinds_hold(egraph: &TirEGraph, subst: &Subst, kinds: &[(Var, Kind)]) -> bool {
    use super::analysis::Shape;
    let mut dims: BTreeMap<String, usize> = BTreeMap::new();
    let bind = |d: &str, v: usize, dims: &mut BTreeMap<String, usize>| -> bool {
        match dims.get(d) {
            Some(&x) => x == v,
            None => {
                dims.insert(d.to_string(), v);
                true
            }
        }
    };
    let facts = |v: &Var| subst.get(*v).map(|id| &egraph[*id].data);
    for (v, k) in kinds {
        let Some(f) = facts(v) else { return false };
        let ok = match k {
            Kind::Mat(a, b) => match f.shape {
                Some(Shape::Mat(r, c)) => bind(a, r, &mut dims) && bind(b, c, &mut dims),
                _ => false,
            },
            Kind::Idx(a, _) | Kind::Distinct(a, _) | Kind::Perm(a) => match (f.shape, f.idx) {
                (Some(Shape::Idx(l)), Some(_)) => bind(a, l, &mut dims),
                _ => false,
            },
            Kind::Dim(a) => match f.int {
                Some((lo, hi)) if lo == hi && lo >= 0 => bind(a, lo as usize, &mut dims),
                _ => false,
            },
            Kind::Int | Kind::Bool | Kind::F32 | Kind::Buf => true,
        };
        if !ok {
            return false;
        }
    }
    for (v, k) in kinds {
        let Some(ix) = facts(v).and_then(|f| f.idx) else {
            continue;
        };
        let ok = match k {
            Kind::Idx(_, m) => dims.get(m.as_str()).is_none_or(|&m| ix.bound <= m),
            Kind::Distinct(a, m) => {
                ix.distinct
                    && dims.get(m.as_str()).is_none_or(|&m| {
                        ix.bound <= m && dims.get(a.as_str()).is_none_or(|&a| a <= m)
                    })
            }
            Kind::Perm(_) => ix.perm,
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

impl RuleSet {
    /// The shipped rules (`tir/rules/*.rules`).
    pub fn shipped() -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        for (file, text) in SHIPPED {
            set.extend(RuleSet::parse(text, file)?)?;
        }
        Ok(set)
    }

    /// Parses rule-file text; `file` names it in errors and in [`Rule::file`].
    pub fn parse(text: &str, file: &str) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        let mut doc: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                doc = None;
                continue;
            }
            if let Some(c) = trimmed.strip_prefix('#') {
                doc = Some(c.trim().to_string());
                continue;
            }
            // Strip a trailing comment.
            let code = match raw.find('#') {
                Some(p) => &raw[..p],
                None => raw,
            };
            let rule = parse_rule_line(code, file, line, doc.take())?;
            set.push(rule)?;
        }
        Ok(set)
    }

    /// Reads and parses a rule file.
    pub fn load(path: &Path) -> Result<RuleSet, RuleError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RuleError::Io {
            file: file.clone(),
            source,
        })?;
        RuleSet::parse(&text, &file)
    }

    /// The shipped rules plus the rules of each file in `extra`.
    pub fn shipped_and(extra: &[&Path]) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::shipped()?;
        for p in extra {
            set.extend(RuleSet::load(p)?)?;
        }
        Ok(set)
    }

    fn push(&mut self, rule: Rule) -> Result<(), RuleError> {
        if let Some(prev) = self.rules.iter().find(|r| r.name == rule.name) {
            return Err(RuleError::Syntax {
                file: rule.file.clone(),
                line: rule.line,
                col: 1,
                message: format!(
                    "rule `{}` is already defined at {}",
                    rule.name,
                    prev.location()
                ),
            });
        }
        self.rules.push(rule);
        Ok(())
    }

    /// Adds every rule of `other` (names must stay unique).
    pub fn extend(&mut self, other: RuleSet) -> Result<(), RuleError> {
        for r in other.rules {
            self.push(r)?;
        }
        Ok(())
    }

    /// The set without the rules named in `names` (for a researcher who replaces or
    /// disables a shipped rule: drop it, then load a file with the new version).
    /// Errors on a name that is not loaded. A `<=>` rule is dropped in both directions.
    pub fn without(mut self, names: &[&str]) -> Result<RuleSet, RuleError> {
        for n in names {
            let before = self.rules.len();
            self.rules.retain(|r| r.name != *n);
            if self.rules.len() == before {
                return Err(RuleError::UnknownRule {
                    name: n.to_string(),
                });
            }
        }
        Ok(self)
    }

    /// Looks a rule up by name.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The egg rewrites of the rules usable at `level`: index-level runs use index
    /// rules only; tensor-level runs use every rule. A `<=>` rule gives two rewrites,
    /// `NAME` and `NAME<=`.
    pub fn rewrites(&self, level: Level) -> Result<Vec<Rewrite<TirLang, TirAnalysis>>, RuleError> {
        let mut out = Vec::new();
        for r in &self.rules {
            if level == Level::Index && r.level == Level::Tensor {
                continue;
            }
            let err = |m: String| RuleError::Syntax {
                file: r.file.clone(),
                line: r.line,
                col: 1,
                message: m,
            };
            let mk = |name: String, l: &PatternAst<TirLang>, rr: &PatternAst<TirLang>| {
                let searcher = Pattern::new(l.clone());
                let applier = Pattern::new(rr.clone());
                let kinds: Vec<(Var, Kind)> = r
                    .kinds
                    .iter()
                    .filter(|(_, k)| !matches!(k, Kind::Int | Kind::Bool | Kind::F32 | Kind::Buf))
                    .filter_map(|(v, k)| v.parse::<Var>().ok().map(|v| (v, k.clone())))
                    .collect();
                if r.cond.is_none() && kinds.is_empty() {
                    return Rewrite::new(name, searcher, applier);
                }
                Rewrite::new(
                    name,
                    searcher,
                    ConditionalApplier {
                        condition: RuleGuard {
                            kinds,
                            cond: r.cond.clone(),
                        },
                        applier,
                    },
                )
            };
            out.push(mk(r.name.clone(), &r.lhs, &r.rhs).map_err(err)?);
            if r.bidirectional {
                out.push(mk(format!("{}<=", r.name), &r.rhs, &r.lhs).map_err(err)?);
            }
        }
        Ok(out)
    }

    /// Number of rules per file, in load order.
    pub fn counts_by_file(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = Vec::new();
        for r in &self.rules {
            match out.iter_mut().find(|(f, _)| *f == r.file) {
                Some((_, n)) => *n += 1,
                None => out.push((r.file.clone(), 1)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_of(text: &str) -> String {
        match RuleSet::parse(text, "t.rules") {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_a_rule_with_condition_and_kinds() {
        let s = RuleSet::parse(
            "# x / c * c + x % c == x\ndm: (+ (* (/ ?a ?c) ?c) (% ?a ?c)) => ?a if (!= ?c 0)\n",
            "t.rules",
        )
        .unwrap();
        let r = &s.rules[0];
        assert_eq!(r.name, "dm");
        assert_eq!(r.line, 2);
        assert_eq!(r.doc.as_deref(), Some("x / c * c + x % c == x"));
        assert!(r.cond.is_some());
        assert_eq!(r.kinds["?a"], Kind::Int);
        let t = RuleSet::parse(
            "g: (ew-relu (gather-rows ?A ?p)) <=> (gather-rows (ew-relu ?A) ?p) where ?A: mat[m,n], ?p: idx[a,m]",
            "t.rules",
        )
        .unwrap();
        assert_eq!(t.rules[0].level, Level::Tensor);
        assert!(t.rules[0].bidirectional);
        assert_eq!(t.rewrites(Level::Tensor).unwrap().len(), 2);
        assert_eq!(t.rewrites(Level::Index).unwrap().len(), 0);
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            err_of("\n\nbad: (+ ?a 0) => ?b"),
            "t.rules:3:18: variable `?b` on the right is not bound on the left"
        );
        assert!(err_of("x: (frob ?a) => ?a").starts_with("t.rules:1:5: unknown operator `frob`"));
        assert!(err_of("x: (+ ?a) => ?a").starts_with("t.rules:1:5: `+` takes 2 arguments, got 1"));
        assert!(err_of("x (+ ?a 0) => ?a").contains("expected `:` after the rule name"));
        assert!(err_of("x: (+ ?a 0) -> ?a").starts_with("t.rules:1:13: expected `=>` or `<=>`"));
        assert!(err_of("x: (+ ?a 0) => ?a if (< ?a").starts_with("t.rules:1:22: unclosed `(`"));
        assert!(err_of("x: (+ ?a 0) => ?a if (< ?z 0)").contains("`?z` in the condition"));
        assert!(err_of("x: (+ ?a foo) => ?a").contains("unknown atom `foo`"));
        assert!(err_of("x: ?a => (+ ?a 0)").contains("lone variable"));
        assert!(err_of("x: (matmul ?A ?B) => (matmul ?A ?B)").contains("declare the kind of `?A`"));
        assert!(err_of("x: (+ ?a 0) => ?a junk").contains("unexpected `junk`"));
        assert!(err_of("x [fast]: (+ ?a 0) => ?a").contains("unknown flag `fast`"));
        assert!(
            err_of("x: (+ ?a 0) => ?a\nx: (* ?a 1) => ?a").contains("already defined at t.rules:1")
        );
        assert!(err_of("x: (+ ?a 0) <=> ?a").contains("lone variable"));
    }

    #[test]
    fn shipped_rules_load_and_are_documented() {
        let s = RuleSet::shipped().unwrap();
        assert!(s.rules.len() >= 20);
        for r in &s.rules {
            assert!(
                r.doc.is_some(),
                "{} at {} has no comment",
                r.name,
                r.location()
            );
        }
    }
}
