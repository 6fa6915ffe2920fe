//! Reference semantics of both levels of [`TirLang`], used by the soundness checker
//! and to check extracted tensor terms against the interpreter.
//!
//! Integers follow [`crate::interp`] exactly: `i64` with checked arithmetic (overflow
//! is an error), floor `/` and `%` (a zero divisor is an error); `select`, `&&` and
//! `||` evaluate every operand, so an error in any operand is an error of the whole
//! expression. Floats are IEEE `f32` with the interpreter's `min`/`max`.
//! `(load B i ...)` reads an *uninterpreted* buffer: its value is a fixed hash of the
//! buffer's seed and the indices (an integer in `[-64, 64)`), so two loads are equal
//! exactly when they read the same buffer at the same indices.
//!
//! Tensor values are small dense row-major `f32` matrices and index vectors; every
//! operator checks shapes and index ranges and reports a mismatch as an error.

use super::lang::TirLang;
use crate::expr::Intrinsic;
use std::fmt;

/// A value of either level.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A float.
    F32(f32),
    /// A boolean.
    Bool(bool),
    /// An uninterpreted buffer, identified by a seed.
    Buf(u64),
    /// A dense row-major matrix.
    Mat {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// `rows * cols` values.
        data: Vec<f32>,
    },
    /// An index vector.
    Idx(Vec<i64>),
}

impl Value {
    /// A matrix value (data must have `rows * cols` entries).
    pub fn mat(rows: usize, cols: usize, data: Vec<f32>) -> Value {
        Value::Mat { rows, cols, data }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::F32(v) => write!(f, "{v:?}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Buf(s) => write!(f, "buffer#{s}"),
            Value::Idx(v) => write!(f, "{v:?}"),
            Value::Mat { rows, cols, data } => {
                write!(f, "{rows}x{cols} [")?;
                for r in 0..*rows {
                    if r > 0 {
                        write!(f, "; ")?;
                    }
                    for c in 0..*cols {
                        if c > 0 {
                            write!(f, " ")?;
                        }
                        write!(f, "{:.4}", data[r * cols + c])?;
                    }
                }
                write!(f, "]")
            }
        }
    }
}

/// Why a term has no value on a binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Integer overflow.
    #[error("integer overflow in {0}")]
    Overflow(String),
    /// Integer division or modulo by zero.
    #[error("division by zero in {0}")]
    DivByZero(String),
    /// Operand kinds do not fit the operator (e.g. `+` of an int and a matrix).
    #[error("type error: {0}")]
    Type(String),
    /// Matrix/index shapes do not fit the operator.
    #[error("shape error: {0}")]
    Shape(String),
    /// An index vector entry outside its range.
    #[error("index out of range: {0}")]
    Index(String),
    /// A symbol or pattern variable with no value.
    #[error("unbound `{0}`")]
    Unbound(String),
    /// A float to int cast of NaN or an out-of-range value.
    #[error("cast of {0} to int out of range")]
    Cast(String),
}

fn floor_div(a: i64, b: i64) -> Result<i64, EvalError> {
    if b == 0 {
        return Err(EvalError::DivByZero(format!("{a} / {b}")));
    }
    let q = a
        .checked_div(b)
        .ok_or_else(|| EvalError::Overflow(format!("{a} / {b}")))?;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        Ok(q - 1)
    } else {
        Ok(q)
    }
}

fn floor_mod(a: i64, b: i64) -> Result<i64, EvalError> {
    if b == 0 {
        return Err(EvalError::DivByZero(format!("{a} % {b}")));
    }
    let r = a.checked_rem(b).unwrap_or(0);
    if r != 0 && ((r < 0) != (b < 0)) {
        Ok(r + b)
    } else {
        Ok(r)
    }
}

/// Floor division as the interpreter does it (`None` on a zero divisor or overflow).
pub fn int_div(a: i64, b: i64) -> Option<i64> {
    floor_div(a, b).ok()
}

/// Floor modulo as the interpreter does it (`None` on a zero divisor).
pub fn int_mod(a: i64, b: i64) -> Option<i64> {
    floor_mod(a, b).ok()
}

/// The value of `(load buf idx...)` on an uninterpreted buffer.
fn load_hash(seed: u64, idx: &[i64]) -> i64 {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15;
    for &i in idx {
        h ^= i as u64;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 29;
    }
    (h % 128) as i64 - 64
}

fn ty(v: &Value) -> &'static str {
    match v {
        Value::Int(_) => "int",
        Value::F32(_) => "f32",
        Value::Bool(_) => "bool",
        Value::Buf(_) => "buffer",
        Value::Mat { .. } => "matrix",
        Value::Idx(_) => "index vector",
    }
}

fn type_err(op: &str, args: &[&Value]) -> EvalError {
    let kinds: Vec<&str> = args.iter().map(|v| ty(v)).collect();
    EvalError::Type(format!("`{op}` of ({})", kinds.join(", ")))
}

fn int_bin(op: &str, a: i64, b: i64) -> Result<Value, EvalError> {
    let ov = || EvalError::Overflow(format!("{a} {op} {b}"));
    Ok(match op {
        "+" => Value::Int(a.checked_add(b).ok_or_else(ov)?),
        "-" => Value::Int(a.checked_sub(b).ok_or_else(ov)?),
        "*" => Value::Int(a.checked_mul(b).ok_or_else(ov)?),
        "/" => Value::Int(floor_div(a, b)?),
        "%" => Value::Int(floor_mod(a, b)?),
        "min" => Value::Int(a.min(b)),
        "max" => Value::Int(a.max(b)),
        "==" => Value::Bool(a == b),
        "!=" => Value::Bool(a != b),
        "<" => Value::Bool(a < b),
        "<=" => Value::Bool(a <= b),
        ">" => Value::Bool(a > b),
        ">=" => Value::Bool(a >= b),
        _ => return Err(type_err(op, &[&Value::Int(a), &Value::Int(b)])),
    })
}

fn f32_bin(op: &str, a: f32, b: f32) -> Result<Value, EvalError> {
    Ok(match op {
        "+" => Value::F32(a + b),
        "-" => Value::F32(a - b),
        "*" => Value::F32(a * b),
        "/" => Value::F32(a / b),
        "min" => Value::F32(a.min(b)),
        "max" => Value::F32(a.max(b)),
        "==" => Value::Bool(a == b),
        "!=" => Value::Bool(a != b),
        "<" => Value::Bool(a < b),
        "<=" => Value::Bool(a <= b),
        ">" => Value::Bool(a > b),
        ">=" => Value::Bool(a >= b),
        _ => return Err(type_err(op, &[&Value::F32(a), &Value::F32(b)])),
    })
}

fn mat(v: &Value, op: &str) -> Result<(usize, usize, Vec<f32>), EvalError> {
    match v {
        Value::Mat { rows, cols, data } => Ok((*rows, *cols, data.clone())),
        other => Err(type_err(op, &[other])),
    }
}

fn idx<'a>(v: &'a Value, op: &str) -> Result<&'a [i64], EvalError> {
    match v {
        Value::Idx(i) => Ok(i),
        other => Err(type_err(op, &[other])),
    }
}

fn check_range(ix: &[i64], bound: usize, op: &str) -> Result<Vec<usize>, EvalError> {
    ix.iter()
        .map(|&i| {
            if i >= 0 && (i as usize) < bound {
                Ok(i as usize)
            } else {
                Err(EvalError::Index(format!("{op}: {i} not in [0, {bound})")))
            }
        })
        .collect()
}

fn ew1(v: &Value, op: &str, f: impl Fn(f32) -> f32) -> Result<Value, EvalError> {
    let (r, c, d) = mat(v, op)?;
    Ok(Value::mat(r, c, d.into_iter().map(f).collect()))
}

fn ew2(a: &Value, b: &Value, op: &str, f: impl Fn(f32, f32) -> f32) -> Result<Value, EvalError> {
    let (ra, ca, da) = mat(a, op)?;
    let (rb, cb, db) = mat(b, op)?;
    if (ra, ca) != (rb, cb) {
        return Err(EvalError::Shape(format!("{op} of {ra}x{ca} and {rb}x{cb}")));
    }
    Ok(Value::mat(
        ra,
        ca,
        da.iter().zip(&db).map(|(x, y)| f(*x, *y)).collect(),
    ))
}

/// Evaluates one node given the values of its children (in order). Leaves other
/// than symbols need no children; symbols are looked up by `symbol`.
pub fn eval_node(
    node: &TirLang,
    args: &[&Value],
    symbol: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, EvalError> {
    use TirLang as L;
    let name = node.to_string();
    let op = name.as_str();
    match node {
        L::Int(v) => Ok(Value::Int(*v)),
        L::Float(f) => Ok(Value::F32(f.value())),
        L::Bool(b) => Ok(Value::Bool(*b)),
        L::Symbol(s) => symbol(s.as_str()).ok_or_else(|| EvalError::Unbound(s.to_string())),
        L::Add(_)
        | L::Sub(_)
        | L::Mul(_)
        | L::Div(_)
        | L::Mod(_)
        | L::Min(_)
        | L::Max(_)
        | L::Eq(_)
        | L::Ne(_)
        | L::Lt(_)
        | L::Le(_)
        | L::Gt(_)
        | L::Ge(_) => match (args[0], args[1]) {
            (Value::Int(a), Value::Int(b)) => int_bin(op, *a, *b),
            (Value::F32(a), Value::F32(b)) => f32_bin(op, *a, *b),
            (Value::Bool(a), Value::Bool(b)) if op == "==" => Ok(Value::Bool(a == b)),
            (Value::Bool(a), Value::Bool(b)) if op == "!=" => Ok(Value::Bool(a != b)),
            (a, b) => Err(type_err(op, &[a, b])),
        },
        L::And(_) | L::Or(_) => match (args[0], args[1]) {
            (Value::Bool(a), Value::Bool(b)) => {
                Ok(Value::Bool(if op == "&&" { *a && *b } else { *a || *b }))
            }
            (a, b) => Err(type_err(op, &[a, b])),
        },
        L::Not(_) => match args[0] {
            Value::Bool(a) => Ok(Value::Bool(!a)),
            a => Err(type_err(op, &[a])),
        },
        L::Select(_) => match args[0] {
            Value::Bool(c) => {
                let (t, e) = (args[1], args[2]);
                if std::mem::discriminant(t) != std::mem::discriminant(e) {
                    return Err(type_err(op, &[args[0], t, e]));
                }
                Ok(if *c { t.clone() } else { e.clone() })
            }
            a => Err(type_err(op, &[a, args[1], args[2]])),
        },
        L::CastInt(_) => match args[0] {
            Value::Int(v) => Ok(Value::Int(*v)),
            Value::Bool(b) => Ok(Value::Int(*b as i64)),
            Value::F32(f) => {
                if f.is_nan() || *f >= 9.223_372e18 || *f < -9.223_372e18 {
                    Err(EvalError::Cast(format!("{f}")))
                } else {
                    Ok(Value::Int(f.trunc() as i64))
                }
            }
            a => Err(type_err(op, &[a])),
        },
        L::CastF32(_) => match args[0] {
            Value::Int(v) => Ok(Value::F32(*v as f32)),
            Value::F32(f) => Ok(Value::F32(*f)),
            a => Err(type_err(op, &[a])),
        },
        L::Exp(_) | L::Tanh(_) | L::Sigmoid(_) | L::Sqrt(_) | L::Abs(_) => match args[0] {
            Value::F32(x) => {
                let i = Intrinsic::from_name(op).ok_or_else(|| type_err(op, &[args[0]]))?;
                Ok(Value::F32(i.eval(*x)))
            }
            a => Err(type_err(op, &[a])),
        },
        L::Load(_) => {
            let seed = match args.first() {
                Some(Value::Buf(s)) => *s,
                Some(a) => return Err(type_err(op, &[a])),
                None => return Err(EvalError::Type("`load` without a buffer".into())),
            };
            let mut ix = Vec::new();
            for a in &args[1..] {
                match a {
                    Value::Int(i) => ix.push(*i),
                    other => return Err(type_err(op, &[other])),
                }
            }
            Ok(Value::Int(load_hash(seed, &ix)))
        }
        L::MatMul(_) => {
            let (m, k, a) = mat(args[0], op)?;
            let (k2, n, b) = mat(args[1], op)?;
            if k != k2 {
                return Err(EvalError::Shape(format!("matmul of {m}x{k} and {k2}x{n}")));
            }
            let mut out = vec![0.0f32; m * n];
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f32;
                    for t in 0..k {
                        s += a[i * k + t] * b[t * n + j];
                    }
                    out[i * n + j] = s;
                }
            }
            Ok(Value::mat(m, n, out))
        }
        L::Transpose(_) => {
            let (r, c, d) = mat(args[0], op)?;
            let mut out = vec![0.0f32; r * c];
            for i in 0..r {
                for j in 0..c {
                    out[j * r + i] = d[i * c + j];
                }
            }
            Ok(Value::mat(c, r, out))
        }
        L::GatherRows(_) => {
            let (r, c, d) = mat(args[0], op)?;
            let ix = check_range(idx(args[1], op)?, r, op)?;
            let mut out = Vec::with_capacity(ix.len() * c);
            for &i in &ix {
                out.extend_from_slice(&d[i * c..(i + 1) * c]);
            }
            Ok(Value::mat(ix.len(), c, out))
        }
        L::GatherCols(_) => {
            let (r, c, d) = mat(args[0], op)?;
            let ix = check_range(idx(args[1], op)?, c, op)?;
            let mut out = Vec::with_capacity(ix.len() * r);
            for i in 0..r {
                for &j in &ix {
                    out.push(d[i * c + j]);
                }
            }
            Ok(Value::mat(r, ix.len(), out))
        }
        L::ScatterRows(_) => {
            let (r, c, d) = mat(args[0], op)?;
            let m = match args[2] {
                Value::Int(m) if *m >= 0 && *m <= 1 << 20 => *m as usize,
                Value::Int(m) => return Err(EvalError::Shape(format!("scatter-rows to {m} rows"))),
                a => return Err(type_err(op, &[a])),
            };
            let ix = check_range(idx(args[1], op)?, m, op)?;
            if ix.len() != r {
                return Err(EvalError::Shape(format!(
                    "scatter-rows of {r} rows with {} indices",
                    ix.len()
                )));
            }
            let mut out = vec![0.0f32; m * c];
            for (src, &dst) in ix.iter().enumerate() {
                for j in 0..c {
                    out[dst * c + j] += d[src * c + j];
                }
            }
            Ok(Value::mat(m, c, out))
        }
        L::VCat(_) => {
            let (ra, ca, mut da) = mat(args[0], op)?;
            let (rb, cb, db) = mat(args[1], op)?;
            if ca != cb {
                return Err(EvalError::Shape(format!("vcat of {ra}x{ca} and {rb}x{cb}")));
            }
            da.extend_from_slice(&db);
            Ok(Value::mat(ra + rb, ca, da))
        }
        L::HCat(_) => {
            let (ra, ca, da) = mat(args[0], op)?;
            let (rb, cb, db) = mat(args[1], op)?;
            if ra != rb {
                return Err(EvalError::Shape(format!("hcat of {ra}x{ca} and {rb}x{cb}")));
            }
            let mut out = Vec::with_capacity(ra * (ca + cb));
            for i in 0..ra {
                out.extend_from_slice(&da[i * ca..(i + 1) * ca]);
                out.extend_from_slice(&db[i * cb..(i + 1) * cb]);
            }
            Ok(Value::mat(ra, ca + cb, out))
        }
        L::ICat(_) => {
            let mut a = idx(args[0], op)?.to_vec();
            a.extend_from_slice(idx(args[1], op)?);
            Ok(Value::Idx(a))
        }
        L::InvPerm(_) => {
            let p = idx(args[0], op)?;
            let n = p.len();
            let mut inv = vec![-1i64; n];
            for (i, &v) in check_range(p, n, op)?.iter().enumerate() {
                if inv[v] >= 0 {
                    return Err(EvalError::Index(format!(
                        "inverse-perm: {p:?} is not a permutation"
                    )));
                }
                inv[v] = i as i64;
            }
            Ok(Value::Idx(inv))
        }
        L::EwAdd(_) => ew2(args[0], args[1], op, |x, y| x + y),
        L::EwMul(_) => ew2(args[0], args[1], op, |x, y| x * y),
        L::EwRelu(_) => ew1(args[0], op, |x| x.max(0.0)),
        L::EwTanh(_) => ew1(args[0], op, f32::tanh),
        L::BcrMask(_) => {
            let (r, c, d) = mat(args[0], op)?;
            let rs = check_range(idx(args[1], op)?, r, op)?;
            let cs = check_range(idx(args[2], op)?, c, op)?;
            let mut keep_r = vec![false; r];
            let mut keep_c = vec![false; c];
            rs.iter().for_each(|&i| keep_r[i] = true);
            cs.iter().for_each(|&j| keep_c[j] = true);
            let mut out = d;
            for i in 0..r {
                for j in 0..c {
                    if !(keep_r[i] && keep_c[j]) {
                        out[i * c + j] = 0.0;
                    }
                }
            }
            Ok(Value::mat(r, c, out))
        }
        L::Rows(_) => Ok(Value::Int(mat(args[0], op)?.0 as i64)),
        L::Cols(_) => Ok(Value::Int(mat(args[0], op)?.1 as i64)),
        L::Len(_) => Ok(Value::Int(idx(args[0], op)?.len() as i64)),
    }
}

/// Evaluates a whole term (a [`egg::RecExpr`] of [`TirLang`]) with symbols bound by
/// `symbol`. Every node is evaluated (no short circuit), as the interpreter does.
pub fn eval_expr(
    expr: &egg::RecExpr<TirLang>,
    symbol: &dyn Fn(&str) -> Option<Value>,
) -> Result<Value, EvalError> {
    use egg::Language;
    let nodes = expr.as_ref();
    let mut vals: Vec<Result<Value, EvalError>> = Vec::with_capacity(nodes.len());
    for n in nodes {
        let mut args = Vec::new();
        let mut err = None;
        for c in n.children() {
            match &vals[usize::from(*c)] {
                Ok(v) => args.push(v),
                Err(e) => {
                    err = Some(e.clone());
                    break;
                }
            }
        }
        let v = match err {
            Some(e) => Err(e),
            None => eval_node(n, &args, symbol),
        };
        vals.push(v);
    }
    vals.pop()
        .unwrap_or_else(|| Err(EvalError::Unbound("empty term".into())))
}

/// Evaluates a pattern (with `?vars`) under a binding of its variables.
pub fn eval_pattern(
    pat: &egg::PatternAst<TirLang>,
    binding: &dyn Fn(&egg::Var) -> Option<Value>,
) -> Result<Value, EvalError> {
    use egg::{ENodeOrVar, Language};
    let nodes = pat.as_ref();
    let mut vals: Vec<Result<Value, EvalError>> = Vec::with_capacity(nodes.len());
    let no_symbols = |_: &str| None;
    for n in nodes {
        let v = match n {
            ENodeOrVar::Var(v) => binding(v).ok_or_else(|| EvalError::Unbound(v.to_string())),
            ENodeOrVar::ENode(n) => {
                let mut args = Vec::new();
                let mut err = None;
                for c in n.children() {
                    match &vals[usize::from(*c)] {
                        Ok(v) => args.push(v),
                        Err(e) => {
                            err = Some(e.clone());
                            break;
                        }
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => eval_node(n, &args, &no_symbols),
                }
            }
        };
        vals.push(v);
    }
    vals.pop()
        .unwrap_or_else(|| Err(EvalError::Unbound("empty pattern".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str) -> Result<Value, EvalError> {
        let e: egg::RecExpr<TirLang> = s.parse().unwrap();
        eval_expr(&e, &|_| None)
    }

    #[test]
    fn int_semantics_match_the_interpreter() {
        assert_eq!(ev("(/ -7 2)"), Ok(Value::Int(-4)));
        assert_eq!(ev("(% -7 2)"), Ok(Value::Int(1)));
        assert_eq!(ev("(% 7 -2)"), Ok(Value::Int(-1)));
        assert!(matches!(ev("(/ 1 0)"), Err(EvalError::DivByZero(_))));
        assert!(matches!(
            ev("(+ 9223372036854775807 1)"),
            Err(EvalError::Overflow(_))
        ));
        // select evaluates both branches.
        assert!(ev("(select true 1 (/ 1 0))").is_err());
        for a in -20i64..20 {
            for b in [-7i64, -3, -1, 1, 2, 5] {
                let q = int_div(a, b).unwrap();
                let r = int_mod(a, b).unwrap();
                assert_eq!(q * b + r, a);
                assert!(if b > 0 {
                    (0..b).contains(&r)
                } else {
                    (b + 1..=0).contains(&r)
                });
            }
        }
    }

    #[test]
    fn tensor_ops() {
        let x = Value::mat(2, 2, vec![1.0, 2.0, 3.0, 4.0]);
        let sym = |s: &str| match s {
            "X" => Some(x.clone()),
            "r" => Some(Value::Idx(vec![1, 1])),
            _ => None,
        };
        let e: egg::RecExpr<TirLang> = "(scatter-rows (gather-rows X r) r 3)".parse().unwrap();
        assert_eq!(
            eval_expr(&e, &sym),
            Ok(Value::mat(3, 2, vec![0.0, 0.0, 6.0, 8.0, 0.0, 0.0]))
        );
        let e: egg::RecExpr<TirLang> = "(matmul X (transpose X))".parse().unwrap();
        assert_eq!(
            eval_expr(&e, &sym),
            Ok(Value::mat(2, 2, vec![5.0, 11.0, 11.0, 25.0]))
        );
    }
}
