//! Round-trip tests of the tir text format: golden output, hand-written functions that
//! cover every IR variant, property tests on random functions, and fuzzing of the parser.

use proptest::prelude::*;
use proptest::sample::select;
use std::ops::{Div, Rem};
use tir::parser::{is_keyword, parse_stmt};
use tir::*;

const GOLDEN: &str = "\
fn bcr_fc(X: in f32[64, 1], Y: out f32[64, 1], W_values: weight f32[410], W_rows: weight i32[0]) {
  for (m, 0, 64) {
    for (n, 0, 1) {
      Y[m, n] = 0.0;
    }
  }
  parallel for (b, 0, 4) {
    let r0 = W_row_ptr[b];
    vectorized for (i, r0, W_row_ptr[b + 1] - r0) {
      prefetch W_values[i + 16];
      Y[W_rows[i], 0] = Y[W_rows[i], 0] + W_values[i] * X[i % 4 * 2, 0];
    }
  }
  if m < 3 && !(n == 2) {
    Y[0, 0] = select(m >= 1, tanh(1.5e-7), f32(m));
  } else {
    alloc acc: f32[4, 4] local {
      acc[0, 0] = -1.0;
    }
  }
}
";

fn v(name: &str) -> Expr {
    Expr::var(name)
}

fn int(x: i64) -> Expr {
    Expr::Int(x)
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::binary(op, a, b)
}

fn not(a: Expr) -> Expr {
    Expr::Unary(UnOp::Not, Box::new(a))
}

fn golden_function() -> Function {
    let w_rows_i = Expr::load("W_rows", vec![v("i")]);
    Function {
        name: "bcr_fc".into(),
        params: vec![
            Param::new("X", ParamKind::Input, DType::F32, vec![64, 1]),
            Param::new("Y", ParamKind::Output, DType::F32, vec![64, 1]),
            Param::new("W_values", ParamKind::Weight, DType::F32, vec![410]),
            Param::new("W_rows", ParamKind::Weight, DType::I32, vec![0]),
        ],
        body: Stmt::Seq(vec![
            Stmt::serial(
                "m",
                int(64),
                Stmt::serial(
                    "n",
                    int(1),
                    Stmt::store("Y", vec![v("m"), v("n")], Expr::Float(0.0)),
                ),
            ),
            Stmt::for_(
                "b",
                int(0),
                int(4),
                ForKind::Parallel,
                Stmt::let_(
                    "r0",
                    Expr::load("W_row_ptr", vec![v("b")]),
                    Stmt::for_(
                        "i",
                        v("r0"),
                        Expr::load("W_row_ptr", vec![v("b") + int(1)]) - v("r0"),
                        ForKind::Vectorized,
                        Stmt::Seq(vec![
                            Stmt::Prefetch {
                                buffer: "W_values".into(),
                                indices: vec![v("i") + int(16)],
                            },
                            Stmt::store(
                                "Y",
                                vec![w_rows_i.clone(), int(0)],
                                Expr::load("Y", vec![w_rows_i, int(0)])
                                    + Expr::load("W_values", vec![v("i")])
                                        * Expr::load(
                                            "X",
                                            vec![v("i").rem(int(4)) * int(2), int(0)],
                                        ),
                            ),
                        ]),
                    ),
                ),
            ),
            Stmt::If {
                cond: v("m").lt(int(3)).and(not(v("n").eq_(int(2)))),
                then: Box::new(Stmt::store(
                    "Y",
                    vec![int(0), int(0)],
                    Expr::select(
                        v("m").ge(int(1)),
                        Expr::call(Intrinsic::Tanh, Expr::Float(1.5e-7)),
                        Expr::cast(ScalarType::F32, v("m")),
                    ),
                )),
                otherwise: Some(Box::new(Stmt::Allocate {
                    name: "acc".into(),
                    dtype: DType::F32,
                    shape: vec![4, 4],
                    scope: MemScope::Local,
                    body: Box::new(Stmt::store("acc", vec![int(0), int(0)], Expr::Float(-1.0))),
                })),
            },
        ]),
    }
}

/// Flattens nested `Seq`s and collapses one-statement `Seq`s: what a print/parse round
/// trip turns a statement into.
fn canonicalize(s: Stmt) -> Stmt {
    fn flatten_into(s: Stmt, out: &mut Vec<Stmt>) {
        match s {
            Stmt::Seq(v) => v.into_iter().for_each(|x| flatten_into(x, out)),
            other => out.push(canonicalize(other)),
        }
    }
    match s {
        Stmt::Seq(v) => {
            let mut out = Vec::new();
            v.into_iter().for_each(|x| flatten_into(x, &mut out));
            if out.len() == 1 {
                out.pop().unwrap_or(Stmt::Seq(vec![]))
            } else {
                Stmt::Seq(out)
            }
        }
        Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        } => Stmt::For {
            var,
            min,
            extent,
            kind,
            body: Box::new(canonicalize(*body)),
        },
        Stmt::Let { var, value, body } => Stmt::Let {
            var,
            value,
            body: Box::new(canonicalize(*body)),
        },
        Stmt::If {
            cond,
            then,
            otherwise,
        } => Stmt::If {
            cond,
            then: Box::new(canonicalize(*then)),
            otherwise: otherwise.map(|o| Box::new(canonicalize(*o))),
        },
        Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        } => Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body: Box::new(canonicalize(*body)),
        },
        leaf @ (Stmt::Store { .. } | Stmt::Prefetch { .. }) => leaf,
    }
}

/// The brief's condition for exact equality: every `Seq` has at least two elements and
/// no `Seq` directly inside it.
fn is_canonical(s: &Stmt) -> bool {
    match s {
        Stmt::Seq(v) => {
            v.len() >= 2
                && v.iter()
                    .all(|x| !matches!(x, Stmt::Seq(_)) && is_canonical(x))
        }
        Stmt::For { body, .. } | Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => {
            is_canonical(body)
        }
        Stmt::If {
            then, otherwise, ..
        } => is_canonical(then) && otherwise.as_deref().is_none_or(is_canonical),
        Stmt::Store { .. } | Stmt::Prefetch { .. } => true,
    }
}

#[track_caller]
fn assert_round_trip(f: &Function) {
    let text = print_function(f);
    let parsed = parse_function(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(print_function(&parsed), text);
    assert_eq!(parsed.name, f.name);
    assert_eq!(parsed.params, f.params);
    assert_eq!(parsed.body, canonicalize(f.body.clone()), "\n{text}");
}

#[test]
fn golden_text() {
    let f = golden_function();
    assert_eq!(print_function(&f), GOLDEN);
    assert_eq!(f.to_string(), GOLDEN);
    assert_eq!(parse_function(GOLDEN), Ok(f));
}

#[test]
fn every_variant_round_trips() {
    let e = v("e");
    let mut stores = Vec::new();
    for (k, op) in BinOp::ALL.into_iter().enumerate() {
        stores.push(Stmt::store(
            "B",
            vec![int(k as i64)],
            bin(op, v("a"), v("b")),
        ));
    }
    for (k, i) in Intrinsic::ALL.into_iter().enumerate() {
        stores.push(Stmt::store(
            "C",
            vec![int(k as i64)],
            Expr::call(i, e.clone()),
        ));
    }
    for (k, ty) in [ScalarType::Int, ScalarType::F32, ScalarType::Bool]
        .into_iter()
        .enumerate()
    {
        stores.push(Stmt::store(
            "D",
            vec![int(k as i64)],
            Expr::cast(ty, e.clone()),
        ));
    }
    stores.push(Stmt::store("S", vec![], not(Expr::Bool(true))));
    stores.push(Stmt::store(
        "S",
        vec![],
        Expr::select(Expr::Bool(false), Expr::Float(2.5), Expr::load("S", vec![])),
    ));
    // Intrinsic calls with unusual argument counts are syntax the verifier rejects,
    // but they still round-trip.
    stores.push(Stmt::store("S", vec![], Expr::Call(Intrinsic::Exp, vec![])));
    stores.push(Stmt::store(
        "S",
        vec![],
        Expr::Call(Intrinsic::Abs, vec![int(1), int(2)]),
    ));
    let mut loops = Vec::new();
    for kind in ForKind::ALL {
        loops.push(Stmt::for_("i", int(-2), v("n"), kind, Stmt::Seq(vec![])));
    }
    let mut allocs = Stmt::Seq(stores);
    for (k, scope) in MemScope::ALL.into_iter().enumerate() {
        allocs = Stmt::Allocate {
            name: format!("t{k}"),
            dtype: if k % 2 == 0 { DType::F32 } else { DType::I32 },
            shape: (0..k).map(|d| d * 3).collect(),
            scope,
            body: Box::new(allocs),
        };
    }
    let body = Stmt::Seq(vec![
        Stmt::Seq(loops),
        Stmt::let_("x", int(1), Stmt::store("A", vec![v("x")], int(0))),
        Stmt::If {
            cond: v("c"),
            then: Box::new(Stmt::let_("y", int(2), Stmt::Seq(vec![]))),
            otherwise: Some(Box::new(Stmt::Seq(vec![]))),
        },
        Stmt::if_(v("c"), Stmt::Seq(vec![])),
        Stmt::let_(
            "z",
            int(3),
            Stmt::Seq(vec![
                allocs,
                Stmt::let_("w", v("z"), Stmt::let_("u", v("w"), Stmt::Seq(vec![]))),
            ]),
        ),
    ]);
    let params = ParamKind::ALL
        .into_iter()
        .zip([DType::F32, DType::I32, DType::F32])
        .enumerate()
        .map(|(k, (kind, dtype))| Param::new(format!("P{k}"), kind, dtype, vec![k; k]))
        .collect();
    let f = Function {
        name: "all".into(),
        params,
        body,
    };
    assert_round_trip(&f);
    // This function's Seqs are canonical except the nested loop Seq; check the layout of
    // the interesting parts too.
    let text = print_function(&f);
    assert!(text.starts_with("fn all(P0: in f32[], P1: out i32[1], P2: weight f32[2, 2]) {\n"));
    assert!(text.contains("\n  for (i, -2, n) {\n  }\n  parallel for (i, -2, n) {\n"));
    assert!(text.contains("\n  let x = 1 {\n    A[x] = 0;\n  }\n"));
    assert!(text.contains("\n  if c {\n    let y = 2;\n  } else {\n  }\n  if c {\n  }\n"));
    assert!(text.contains("\n  let z = 3;\n  alloc t2: f32[0, 3] global {\n"));
    assert!(text.contains("\n  let w = z;\n  let u = w;\n}\n"));
    assert!(text.contains("D[0] = int(e);\n"));
    assert!(text.contains("S[] = exp();\n"));
}

#[test]
fn precedence_round_trips() {
    let (a, b, c) = (v("a"), v("b"), v("c"));
    let cases: Vec<(Expr, &str)> = vec![
        (a.clone() - b.clone() - c.clone(), "a - b - c"),
        (a.clone() - (b.clone() - c.clone()), "a - (b - c)"),
        (a.clone().div(b.clone()).div(c.clone()), "a / b / c"),
        (a.clone().div(b.clone().div(c.clone())), "a / (b / c)"),
        (a.clone().rem(b.clone()) * c.clone(), "a % b * c"),
        (a.clone() * b.clone().rem(c.clone()), "a * (b % c)"),
        ((a.clone() + b.clone()) * c.clone(), "(a + b) * c"),
        (a.clone() + b.clone() * c.clone(), "a + b * c"),
        (
            bin(BinOp::Or, a.clone(), bin(BinOp::And, b.clone(), c.clone())),
            "a || b && c",
        ),
        (
            bin(BinOp::And, bin(BinOp::Or, a.clone(), b.clone()), c.clone()),
            "(a || b) && c",
        ),
        (
            bin(BinOp::Or, a.clone(), bin(BinOp::Or, b.clone(), c.clone())),
            "a || (b || c)",
        ),
        (
            bin(BinOp::Eq, a.clone().lt(b.clone()), c.clone()),
            "(a < b) == c",
        ),
        (
            bin(BinOp::Ne, a.clone(), b.clone().le(c.clone())),
            "a != (b <= c)",
        ),
        (
            bin(BinOp::Gt, a.clone() + b.clone(), c.clone() * a.clone()),
            "a + b > c * a",
        ),
        (not(a.clone()).and(not(not(b.clone()))), "!a && !!b"),
        (not(a.clone() + b.clone()), "!(a + b)"),
        (not(a.clone()) * b.clone(), "!a * b"),
        (
            Expr::load("A", vec![(a.clone() - b.clone()) - c.clone()]),
            "A[a - b - c]",
        ),
        (
            (a.clone() + b.clone()).min(c.clone() - a.clone()),
            "min(a + b, c - a)",
        ),
        (a.clone() - int(-3), "a - -3"),
        (a.clone() * Expr::Float(-1.5), "a * -1.5"),
        (int(-3) - a.clone(), "-3 - a"),
        (not(int(-1)), "!-1"),
        (Expr::Float(f32::NEG_INFINITY) + a, "-inf + a"),
        (
            int(i64::MIN) - int(i64::MAX),
            "-9223372036854775808 - 9223372036854775807",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(print_expr(&e), text);
        assert_eq!(e.to_string(), text);
        assert_eq!(parse_expr(text), Ok(e), "{text}");
    }
    // Redundant parentheses in the input are accepted and vanish.
    assert_eq!(
        parse_expr("((a) - (b)) - ((c))").map(|e| print_expr(&e)),
        Ok("a - b - c".to_string())
    );
}

#[test]
fn float_edge_cases_round_trip() {
    let cases = [
        1e-45,
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        f32::EPSILON,
        0.1,
        -0.1,
        1.0 / 3.0,
        16777217.0,
        1e20,
        0.0,
        -0.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    for x in cases {
        let text = print_expr(&Expr::Float(x));
        assert!(
            text.contains('.') || text.contains('e') || text.contains("inf"),
            "{text}"
        );
        match parse_expr(&text) {
            Ok(Expr::Float(y)) => assert_eq!(y.to_bits(), x.to_bits(), "{text}"),
            other => panic!("{text} parsed to {other:?}"),
        }
        // Also as the right operand of a subtraction.
        let e = v("a") - Expr::Float(x);
        assert_eq!(parse_expr(&print_expr(&e)), Ok(e));
    }
    assert_eq!(print_expr(&Expr::Float(-0.0)), "-0.0");
    assert_eq!(print_expr(&Expr::Float(1e-45)), "1e-45");
    assert_eq!(print_expr(&Expr::Float(f32::MAX)), "3.4028235e38");
    for text in ["nan", "-nan"] {
        match parse_expr(text) {
            Ok(Expr::Float(y)) => assert!(y.is_nan()),
            other => panic!("{text} parsed to {other:?}"),
        }
    }
    assert_eq!(print_expr(&Expr::Float(-f32::NAN)), "nan");
}

#[test]
fn let_forms() {
    // Unbraced lets take the rest of the block; braced lets only their braces.
    let text = "fn f() {\n  let a = 1 {\n    A[a] = 1;\n  }\n  let b = 2;\n  B[b] = 2;\n  let c = 3;\n  C[c] = 3;\n  D[c] = 4;\n}\n";
    let store = |buf: &str, var: &str, x: i64| Stmt::store(buf, vec![v(var)], int(x));
    let expected = Stmt::Seq(vec![
        Stmt::let_("a", int(1), store("A", "a", 1)),
        Stmt::let_(
            "b",
            int(2),
            Stmt::Seq(vec![
                store("B", "b", 2),
                Stmt::let_(
                    "c",
                    int(3),
                    Stmt::Seq(vec![store("C", "c", 3), store("D", "c", 4)]),
                ),
            ]),
        ),
    ]);
    let f = parse_function(text).map(|f| f.body);
    assert_eq!(f, Ok(expected));
    assert_eq!(
        parse_function(text).map(|f| print_function(&f)),
        Ok(text.to_string())
    );
    // A trailing unbraced let with nothing after it has an empty body.
    assert_eq!(
        parse_stmt("let x = 1;"),
        Ok(Stmt::let_("x", int(1), Stmt::Seq(vec![])))
    );
}

// ----- property tests -----

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["i", "j", "x", "acc", "W_rows", "_t0", "A"]).prop_map(String::from),
        "[A-Za-z_][A-Za-z0-9_]{0,6}".prop_filter("keywords are not names", |s| !is_keyword(s)),
    ]
}

fn float(allow_nan: bool) -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_filter("nan only when allowed", move |x| allow_nan || !x.is_nan()),
        select(vec![
            0.0f32,
            -0.0,
            1.0,
            -1.5,
            0.1,
            1e-45,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]),
    ]
}

fn expr(allow_nan: bool) -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Expr::Int),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), -3i64..4].prop_map(Expr::Int),
        float(allow_nan).prop_map(Expr::Float),
        any::<bool>().prop_map(Expr::Bool),
        name().prop_map(Expr::Var),
    ];
    leaf.prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            4 => (select(BinOp::ALL.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| Expr::binary(op, a, b)),
            1 => inner.clone().prop_map(|a| Expr::Unary(UnOp::Not, Box::new(a))),
            1 => (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| Expr::select(c, a, b)),
            1 => (
                select(vec![ScalarType::Int, ScalarType::F32, ScalarType::Bool]),
                inner.clone()
            )
                .prop_map(|(ty, a)| Expr::cast(ty, a)),
            1 => (name(), prop::collection::vec(inner.clone(), 0..3))
                .prop_map(|(b, idx)| Expr::load(b, idx)),
            1 => (select(Intrinsic::ALL.to_vec()), prop::collection::vec(inner, 0..3))
                .prop_map(|(i, args)| Expr::Call(i, args)),
        ]
    })
}

fn stmt(allow_nan: bool) -> impl Strategy<Value = Stmt> {
    let leaf = prop_oneof![
        4 => (name(), prop::collection::vec(expr(allow_nan), 0..3), expr(allow_nan))
            .prop_map(|(b, idx, val)| Stmt::store(b, idx, val)),
        1 => (name(), prop::collection::vec(expr(allow_nan), 0..3))
            .prop_map(|(buffer, indices)| Stmt::Prefetch { buffer, indices }),
        1 => prop::collection::vec(Just(Stmt::Seq(vec![])), 0..2).prop_map(Stmt::Seq),
    ];
    leaf.prop_recursive(5, 32, 4, move |inner| {
        prop_oneof![
            1 => (
                name(),
                expr(allow_nan),
                expr(allow_nan),
                select(ForKind::ALL.to_vec()),
                inner.clone()
            )
                .prop_map(|(var, min, extent, kind, body)| Stmt::for_(
                    var, min, extent, kind, body
                )),
            2 => prop::collection::vec(inner.clone(), 0..5).prop_map(Stmt::Seq),
            2 => (name(), expr(allow_nan), inner.clone())
                .prop_map(|(var, value, body)| Stmt::let_(var, value, body)),
            1 => (expr(allow_nan), inner.clone(), prop::option::of(inner.clone())).prop_map(
                |(cond, then, otherwise)| Stmt::If {
                    cond,
                    then: Box::new(then),
                    otherwise: otherwise.map(Box::new),
                }
            ),
            1 => (
                name(),
                select(vec![DType::F32, DType::I32]),
                dims(),
                select(MemScope::ALL.to_vec()),
                inner
            )
                .prop_map(|(name, dtype, shape, scope, body)| Stmt::Allocate {
                    name,
                    dtype,
                    shape,
                    scope,
                    body: Box::new(body),
                }),
        ]
    })
}

fn dims() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![4 => 0usize..100, 1 => any::<usize>()], 0..4)
}

fn function(allow_nan: bool) -> impl Strategy<Value = Function> {
    let param = (
        name(),
        select(ParamKind::ALL.to_vec()),
        select(vec![DType::F32, DType::I32]),
        dims(),
    )
        .prop_map(|(n, k, d, s)| Param::new(n, k, d, s));
    (name(), prop::collection::vec(param, 0..4), stmt(allow_nan))
        .prop_map(|(name, params, body)| Function { name, params, body })
}

/// Tokens of the grammar, for building near-valid random texts.
const TOKENS: [&str; 44] = [
    "fn", "f", "(", ")", "{", "}", "[", "]", ",", ";", ":", "=", "X", "in", "out", "f32", "i32",
    "for", "parallel", "let", "if", "else", "alloc", "local", "0", "1", "-", "+", "*", "%", "<",
    "==", "&&", "||", "!", "1.5", "-inf", "nan", "select", "min", "tanh", "int", "#", "\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_parse_print_is_identity(f in function(true)) {
        let text = print_function(&f);
        let parsed = parse_function(&text);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, text);
        let parsed = parsed.unwrap_or_else(|_| f.clone());
        prop_assert_eq!(print_function(&parsed), text);
    }

    #[test]
    fn parse_gives_back_the_canonical_function(f in function(false)) {
        let text = print_function(&f);
        let parsed = parse_function(&text);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, text);
        let parsed = parsed.unwrap_or_else(|_| f.clone());
        if is_canonical(&f.body) {
            prop_assert_eq!(&parsed, &f, "\n{}", text);
        }
        let canonical = Function { body: canonicalize(f.body.clone()), ..f };
        prop_assert_eq!(parsed, canonical, "\n{}", text);
    }

    #[test]
    fn expressions_round_trip(e in expr(false)) {
        let text = print_expr(&e);
        prop_assert_eq!(parse_expr(&text), Ok(e), "{}", text);
    }

    #[test]
    fn statements_round_trip(s in stmt(false)) {
        let text = print_stmt(&s);
        prop_assert_eq!(parse_stmt(&text), Ok(canonicalize(s)), "\n{}", text);
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_function(&text);
        let _ = parse_expr(&text);
        let _ = parse_stmt(&text);
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = parse_function(&lossy);
        let _ = parse_expr(&lossy);
    }

    #[test]
    fn random_token_soup_never_panics(toks in prop::collection::vec(select(TOKENS.to_vec()), 0..80)) {
        let text = toks.join(" ");
        if let Err(e) = parse_function(&text) {
            prop_assert!(e.line >= 1 && e.column >= 1);
        }
        let _ = parse_expr(&text);
        let _ = parse_stmt(&text);
    }

    #[test]
    fn mutated_golden_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..8)
    ) {
        let mut bytes = GOLDEN.as_bytes().to_vec();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        match parse_function(&text) {
            // Whatever parses must print to something that parses to the same thing.
            Ok(f) => prop_assert_eq!(parse_function(&print_function(&f)).map(|g| print_function(&g)), Ok(print_function(&f))),
            Err(e) => prop_assert!(e.line >= 1 && e.column >= 1 && !e.message.is_empty()),
        }
    }
}
