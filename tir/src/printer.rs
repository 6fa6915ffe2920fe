//! The printer of the tir text format.
//!
//! [`print_function`] emits the grammar that [`crate::parser::parse_function`] reads:
//!
//! ```text
//! fn scale(X: in f32[4], Y: out f32[4]) {
//!   parallel for (i, 0, 4) {
//!     let x = X[i];
//!     Y[i] = select(x > 0.0, x * 2.0, 0.0);
//!   }
//! }
//! ```
//!
//! Layout: two-space indentation, one statement per line, the function text ends with a
//! newline. Nested `Seq`s are flattened. A `let` that is the last statement of its block
//! prints as `let x = e;` followed by its body's statements at the same indentation; any
//! other `let` prints braced, `let x = e { ... }`. Serial loops have no prefix keyword;
//! other loop kinds print `parallel for`, `vectorized for`, `unrolled for`.
//!
//! Expressions get the fewest parentheses that parse back to the same tree: a child is
//! parenthesized when its precedence is lower than its parent's, when it is the right
//! operand of an operator of equal precedence, or when it is a comparison operand of a
//! comparison (comparisons do not chain). Float literals use Rust's shortest
//! round-tripping form (`1.0`, `1.5e-7`, `-0.0`), or `inf`, `-inf`, `nan`; integer and
//! float constants below zero print as negative literals (`a - -3`).
//!
//! Names are printed as they are: the text round-trips when every variable, buffer,
//! parameter and function name is an identifier (`[A-Za-z_][A-Za-z0-9_]*`) that is not
//! a keyword (see [`crate::parser::KEYWORDS`]).

use crate::expr::{BinOp, Expr, UnOp};
use crate::function::{Function, Param};
use crate::stmt::{ForKind, Stmt};
use std::fmt;

/// Prints a function in the text format (ending with a newline).
pub fn print_function(f: &Function) -> String {
    let mut out = String::new();
    out.push_str("fn ");
    out.push_str(&f.name);
    out.push('(');
    for (i, p) in f.params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_param(&mut out, p);
    }
    out.push_str(") {\n");
    write_block(&mut out, &f.body, 1);
    out.push_str("}\n");
    out
}

/// Prints a statement (or a sequence of statements) at indentation zero, one statement
/// per line, each line ending with a newline. An empty `Seq` prints as the empty string.
pub fn print_stmt(s: &Stmt) -> String {
    let mut out = String::new();
    write_block(&mut out, s, 0);
    out
}

/// Prints an expression with the minimum parentheses.
pub fn print_expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_function(self))
    }
}

impl fmt::Display for Stmt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_stmt(self))
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&print_expr(self))
    }
}

fn write_param(out: &mut String, p: &Param) {
    out.push_str(&p.name);
    out.push_str(": ");
    out.push_str(p.kind.name());
    out.push(' ');
    out.push_str(p.dtype.name());
    write_dims(out, &p.shape);
}

fn write_dims(out: &mut String, dims: &[usize]) {
    out.push('[');
    for (i, d) in dims.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&d.to_string());
    }
    out.push(']');
}

fn indent_to(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push_str("  ");
    }
}

/// Collects the statements of `s`, flattening nested `Seq`s.
fn flatten<'a>(s: &'a Stmt, items: &mut Vec<&'a Stmt>) {
    match s {
        Stmt::Seq(v) => v.iter().for_each(|x| flatten(x, items)),
        other => items.push(other),
    }
}

/// Writes `s` as the statements of a block. A trailing `let` is written unbraced and its
/// body continues the block (iteratively, so long chains of lets do not recurse).
fn write_block(out: &mut String, s: &Stmt, indent: usize) {
    let mut current = s;
    loop {
        let mut items = Vec::new();
        flatten(current, &mut items);
        let n = items.len();
        let mut continuation = None;
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Stmt::Let { var, value, body } if i + 1 == n => {
                    indent_to(out, indent);
                    out.push_str("let ");
                    out.push_str(var);
                    out.push_str(" = ");
                    write_expr(out, value);
                    out.push_str(";\n");
                    continuation = Some(&**body);
                }
                other => write_stmt(out, other, indent),
            }
        }
        match continuation {
            Some(body) => current = body,
            None => return,
        }
    }
}

/// Writes `{`, newline, the block at `indent + 1`, and the closing `}` line (without
/// its newline, so that `} else {` can follow).
fn write_braced(out: &mut String, body: &Stmt, indent: usize) {
    out.push_str(" {\n");
    write_block(out, body, indent + 1);
    indent_to(out, indent);
    out.push('}');
}

/// Writes one statement (a `let` in braced form) and its trailing newline.
fn write_stmt(out: &mut String, s: &Stmt, indent: usize) {
    match s {
        Stmt::Seq(_) => {
            // Not reached from `write_block`, which flattens sequences.
            write_block(out, s, indent);
            return;
        }
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => {
            indent_to(out, indent);
            if *kind != ForKind::Serial {
                out.push_str(kind.name());
                out.push(' ');
            }
            out.push_str("for (");
            out.push_str(var);
            out.push_str(", ");
            write_expr(out, min);
            out.push_str(", ");
            write_expr(out, extent);
            out.push(')');
            write_braced(out, body, indent);
        }
        Stmt::Let { var, value, body } => {
            indent_to(out, indent);
            out.push_str("let ");
            out.push_str(var);
            out.push_str(" = ");
            write_expr(out, value);
            write_braced(out, body, indent);
        }
        Stmt::If {
            cond,
            then,
            otherwise,
        } => {
            indent_to(out, indent);
            out.push_str("if ");
            write_expr(out, cond);
            write_braced(out, then, indent);
            if let Some(e) = otherwise {
                out.push_str(" else");
                write_braced(out, e, indent);
            }
        }
        Stmt::Store {
            buffer,
            indices,
            value,
        } => {
            indent_to(out, indent);
            out.push_str(buffer);
            write_list(out, '[', indices, ']');
            out.push_str(" = ");
            write_expr(out, value);
            out.push(';');
        }
        Stmt::Prefetch { buffer, indices } => {
            indent_to(out, indent);
            out.push_str("prefetch ");
            out.push_str(buffer);
            write_list(out, '[', indices, ']');
            out.push(';');
        }
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } => {
            indent_to(out, indent);
            out.push_str("alloc ");
            out.push_str(name);
            out.push_str(": ");
            out.push_str(dtype.name());
            write_dims(out, shape);
            out.push(' ');
            out.push_str(scope.name());
            write_braced(out, body, indent);
        }
    }
    out.push('\n');
}

/// Binding strength of an expression's top node: 1 `||`, 2 `&&`, 3 comparisons,
/// 4 `+ -`, 5 `* / %`, 6 unary `!`, 7 primaries (literals, names, loads, calls).
pub(crate) fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Binary(op, _, _) => binop_precedence(*op),
        Expr::Unary(..) => 6,
        _ => 7,
    }
}

/// Precedence of an infix operator (7 for the call forms `min`/`max`).
pub(crate) fn binop_precedence(op: BinOp) -> u8 {
    match op {
        BinOp::Or => 1,
        BinOp::And => 2,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
        BinOp::Add | BinOp::Sub => 4,
        BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
        BinOp::Min | BinOp::Max => 7,
    }
}

fn write_operand(out: &mut String, e: &Expr, parens: bool) {
    if parens {
        out.push('(');
        write_expr(out, e);
        out.push(')');
    } else {
        write_expr(out, e);
    }
}

fn write_list(out: &mut String, open: char, items: &[Expr], close: char) {
    out.push(open);
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(out, e);
    }
    out.push(close);
}

/// The text of a float literal: Rust's shortest round-tripping form, which always
/// contains `.` or `e`, or `inf`, `-inf`, `nan`.
pub(crate) fn float_literal(v: f32) -> String {
    if v.is_nan() {
        "nan".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{v:?}")
    }
}

fn write_expr(out: &mut String, e: &Expr) {
    match e {
        Expr::Int(v) => out.push_str(&v.to_string()),
        Expr::Float(v) => out.push_str(&float_literal(*v)),
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Var(name) => out.push_str(name),
        Expr::Binary(op, a, b) if op.is_call_form() => {
            out.push_str(op.symbol());
            out.push('(');
            write_expr(out, a);
            out.push_str(", ");
            write_expr(out, b);
            out.push(')');
        }
        Expr::Binary(op, a, b) => {
            let p = binop_precedence(*op);
            let (pa, pb) = (precedence(a), precedence(b));
            write_operand(out, a, pa < p || (pa == p && op.is_comparison()));
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_operand(out, b, pb <= p);
        }
        Expr::Unary(UnOp::Not, a) => {
            out.push('!');
            write_operand(out, a, precedence(a) < 6);
        }
        Expr::Select(c, a, b) => {
            out.push_str("select(");
            write_expr(out, c);
            out.push_str(", ");
            write_expr(out, a);
            out.push_str(", ");
            write_expr(out, b);
            out.push(')');
        }
        Expr::Cast(ty, a) => {
            out.push_str(ty.name());
            out.push('(');
            write_expr(out, a);
            out.push(')');
        }
        Expr::Load { buffer, indices } => {
            out.push_str(buffer);
            write_list(out, '[', indices, ']');
        }
        Expr::Call(intrinsic, args) => {
            out.push_str(intrinsic.name());
            write_list(out, '(', args, ')');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::{DType, ScalarType};
    use crate::expr::Intrinsic;
    use crate::function::ParamKind;
    use crate::stmt::MemScope;

    fn v(n: &str) -> Expr {
        Expr::var(n)
    }
    fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::binary(op, a, b)
    }

    #[test]
    fn minimal_parentheses() {
        let (a, b, c) = (v("a"), v("b"), v("c"));
        let sub = |x, y| bin(BinOp::Sub, x, y);
        assert_eq!(
            print_expr(&sub(sub(a.clone(), b.clone()), c.clone())),
            "a - b - c"
        );
        assert_eq!(
            print_expr(&sub(a.clone(), sub(b.clone(), c.clone()))),
            "a - (b - c)"
        );
        assert_eq!(
            print_expr(&bin(
                BinOp::Mul,
                bin(BinOp::Add, a.clone(), b.clone()),
                c.clone()
            )),
            "(a + b) * c"
        );
        assert_eq!(
            print_expr(&bin(
                BinOp::Add,
                a.clone(),
                bin(BinOp::Mul, b.clone(), c.clone())
            )),
            "a + b * c"
        );
        assert_eq!(
            print_expr(&bin(
                BinOp::Lt,
                bin(BinOp::Lt, a.clone(), b.clone()),
                c.clone()
            )),
            "(a < b) < c"
        );
        assert_eq!(
            print_expr(&bin(
                BinOp::Or,
                bin(BinOp::And, a.clone(), b.clone()),
                bin(BinOp::And, b.clone(), c.clone())
            )),
            "a && b || b && c"
        );
        assert_eq!(
            print_expr(&Expr::Unary(
                UnOp::Not,
                Box::new(bin(BinOp::Eq, a.clone(), b.clone()))
            )),
            "!(a == b)"
        );
        assert_eq!(
            print_expr(&Expr::Unary(
                UnOp::Not,
                Box::new(Expr::Unary(UnOp::Not, Box::new(a.clone())))
            )),
            "!!a"
        );
        assert_eq!(
            print_expr(&bin(BinOp::Sub, a.clone(), Expr::Int(-3))),
            "a - -3"
        );
        assert_eq!(
            print_expr(&bin(BinOp::Mul, a.clone(), Expr::Float(-1.5))),
            "a * -1.5"
        );
        assert_eq!(
            print_expr(&bin(BinOp::Min, bin(BinOp::Add, a, b), c).max(Expr::Int(0))),
            "max(min(a + b, c), 0)"
        );
    }

    #[test]
    fn literals_and_calls() {
        assert_eq!(print_expr(&Expr::Float(1.0)), "1.0");
        assert_eq!(print_expr(&Expr::Float(1.5e-7)), "1.5e-7");
        assert_eq!(print_expr(&Expr::Float(1e20)), "1e20");
        assert_eq!(print_expr(&Expr::Float(-0.0)), "-0.0");
        assert_eq!(print_expr(&Expr::Float(f32::INFINITY)), "inf");
        assert_eq!(print_expr(&Expr::Float(f32::NEG_INFINITY)), "-inf");
        assert_eq!(print_expr(&Expr::Float(f32::NAN)), "nan");
        assert_eq!(print_expr(&Expr::Int(i64::MIN)), "-9223372036854775808");
        assert_eq!(print_expr(&Expr::Bool(false)), "false");
        assert_eq!(
            print_expr(&Expr::cast(ScalarType::Int, Expr::Float(2.5))),
            "int(2.5)"
        );
        assert_eq!(
            print_expr(&Expr::call(Intrinsic::Sigmoid, v("x"))),
            "sigmoid(x)"
        );
        assert_eq!(print_expr(&Expr::load("S", vec![])), "S[]");
        assert_eq!(
            print_expr(&Expr::select(Expr::Bool(true), v("a"), v("b"))),
            "select(true, a, b)"
        );
    }

    #[test]
    fn let_layout() {
        let store = |b: &str| Stmt::store(b, vec![Expr::Int(0)], Expr::Int(1));
        // A let that is last in its block is flattened, its body continuing the block.
        let s = Stmt::Seq(vec![
            store("A"),
            Stmt::let_("x", Expr::Int(1), Stmt::Seq(vec![store("B"), store("C")])),
        ]);
        assert_eq!(
            print_stmt(&s),
            "A[0] = 1;\nlet x = 1;\nB[0] = 1;\nC[0] = 1;\n"
        );
        // A let that is not last is braced.
        let s = Stmt::Seq(vec![Stmt::let_("x", Expr::Int(1), store("B")), store("A")]);
        assert_eq!(print_stmt(&s), "let x = 1 {\n  B[0] = 1;\n}\nA[0] = 1;\n");
        // Nested sequences are flattened.
        let s = Stmt::Seq(vec![
            Stmt::Seq(vec![store("A")]),
            Stmt::Seq(vec![]),
            store("B"),
        ]);
        assert_eq!(print_stmt(&s), "A[0] = 1;\nB[0] = 1;\n");
        assert_eq!(print_stmt(&Stmt::Seq(vec![])), "");
    }

    #[test]
    fn function_layout() {
        let f = Function {
            name: "k".into(),
            params: vec![
                Param::new("S", ParamKind::Weight, DType::I32, vec![]),
                Param::new("Y", ParamKind::Output, DType::F32, vec![0, 3]),
            ],
            body: Stmt::Allocate {
                name: "t".into(),
                dtype: DType::F32,
                shape: vec![2],
                scope: MemScope::Shared,
                body: Box::new(Stmt::If {
                    cond: Expr::Bool(true),
                    then: Box::new(Stmt::Seq(vec![])),
                    otherwise: Some(Box::new(Stmt::for_(
                        "i",
                        Expr::Int(0),
                        Expr::Int(2),
                        ForKind::Unrolled,
                        Stmt::store("t", vec![v("i")], Expr::Float(0.5)),
                    ))),
                }),
            },
        };
        let expected = "\
fn k(S: weight i32[], Y: out f32[0, 3]) {
  alloc t: f32[2] shared {
    if true {
    } else {
      unrolled for (i, 0, 2) {
        t[i] = 0.5;
      }
    }
  }
}
";
        assert_eq!(print_function(&f), expected);
        assert_eq!(f.to_string(), expected);
    }
}
