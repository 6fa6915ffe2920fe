//! Property tests of the interpreter and the verifier.
//!
//! - Random affine (and floor-div/mod, and indirect) index expressions into buffers:
//!   the interpreter never panics, and agrees with a direct Rust model of the same
//!   loop nest, errors included.
//! - Random, mostly ill-formed, functions: the interpreter never panics, with or
//!   without verification; its own static checks reject exactly what the verifier
//!   rejects; and on verified functions both runs agree.

use proptest::prelude::*;
use proptest::sample::select;
use std::collections::BTreeMap;
use std::ops::{Div, Rem};
use tir::{
    BinOp, DType, Expr, ForKind, Function, InterpError, Interpreter, Intrinsic, MemScope, Param,
    ParamKind, ScalarType, Stmt, Tensor, UnOp,
};

// ---------------------------------------------------------------------------------
// Affine kernels against a model.

/// An index expression over loop variables `i` and `j`.
#[derive(Debug, Clone)]
enum Ix {
    /// `a * i + b * j + c`
    Aff(i64, i64, i64),
    /// `x / d` (floor)
    Div(Box<Ix>, i64),
    /// `x % d` (floor)
    Mod(Box<Ix>, i64),
    /// `I[x]`: an indirect load through the index buffer.
    Ind(Box<Ix>),
}

/// How the model's evaluation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    DivByZero,
    OutOfBounds,
}

const IND: [i32; 6] = [0, 3, -1, 7, 2, 1];
const X_SHAPE: [usize; 2] = [4, 5];
const Y_SHAPE: [usize; 2] = [3, 4];

impl Ix {
    fn expr(&self) -> Expr {
        match self {
            Ix::Aff(a, b, c) => {
                Expr::Int(*a) * Expr::var("i") + Expr::Int(*b) * Expr::var("j") + Expr::Int(*c)
            }
            Ix::Div(x, d) => x.expr().div(Expr::Int(*d)),
            Ix::Mod(x, d) => x.expr().rem(Expr::Int(*d)),
            Ix::Ind(x) => Expr::load("I", vec![x.expr()]),
        }
    }

    fn eval(&self, i: i64, j: i64) -> Result<i64, Fail> {
        Ok(match self {
            Ix::Aff(a, b, c) => a * i + b * j + c,
            Ix::Div(x, d) => {
                let x = x.eval(i, j)?;
                if *d == 0 {
                    return Err(Fail::DivByZero);
                }
                (x as f64 / *d as f64).floor() as i64
            }
            Ix::Mod(x, d) => {
                let x = x.eval(i, j)?;
                if *d == 0 {
                    return Err(Fail::DivByZero);
                }
                x - d * (x as f64 / *d as f64).floor() as i64
            }
            Ix::Ind(x) => {
                let k = x.eval(i, j)?;
                if k < 0 || k >= IND.len() as i64 {
                    return Err(Fail::OutOfBounds);
                }
                IND[k as usize] as i64
            }
        })
    }
}

fn arb_ix() -> impl Strategy<Value = Ix> {
    let leaf = (-3i64..=3, -3i64..=3, -4i64..=6).prop_map(|(a, b, c)| Ix::Aff(a, b, c));
    leaf.prop_recursive(3, 8, 1, |inner| {
        prop_oneof![
            (inner.clone(), -3i64..=3).prop_map(|(x, d)| Ix::Div(Box::new(x), d)),
            (inner.clone(), -3i64..=3).prop_map(|(x, d)| Ix::Mod(Box::new(x), d)),
            inner.prop_map(|x| Ix::Ind(Box::new(x))),
        ]
    })
}

#[derive(Debug, Clone)]
struct Kernel {
    /// (min, extent) of `i` and of `j`.
    loops: [(i64, i64); 2],
    /// Store (and re-load) indices into Y, then load indices into X.
    y: [Ix; 2],
    x: [Ix; 2],
    scale: f32,
    kind: ForKind,
}

fn arb_kernel() -> impl Strategy<Value = Kernel> {
    (
        [(-3i64..=3, -1i64..=5), (-3i64..=3, -1i64..=5)],
        [arb_ix(), arb_ix()],
        [arb_ix(), arb_ix()],
        select(vec![1.0f32, -0.5, 2.0]),
        select(ForKind::ALL.to_vec()),
    )
        .prop_map(|(loops, y, x, scale, kind)| Kernel {
            loops,
            y,
            x,
            scale,
            kind,
        })
}

impl Kernel {
    fn function(&self) -> Function {
        let yi: Vec<Expr> = self.y.iter().map(Ix::expr).collect();
        let xi: Vec<Expr> = self.x.iter().map(Ix::expr).collect();
        let store = Stmt::store(
            "Y",
            yi.clone(),
            Expr::load("Y", yi) + Expr::load("X", xi) * Expr::Float(self.scale),
        );
        let [(mi, ei), (mj, ej)] = self.loops;
        let body = Stmt::for_(
            "i",
            Expr::Int(mi),
            Expr::Int(ei),
            self.kind,
            Stmt::for_("j", Expr::Int(mj), Expr::Int(ej), ForKind::Serial, store),
        );
        Function {
            name: "affine".into(),
            params: vec![
                Param::new("I", ParamKind::Weight, DType::I32, vec![IND.len()]),
                Param::new("X", ParamKind::Input, DType::F32, X_SHAPE.to_vec()),
                Param::new("Y", ParamKind::Output, DType::F32, Y_SHAPE.to_vec()),
            ],
            body,
        }
    }

    /// The model: the loop nest in plain Rust, evaluating every access's indices, then
    /// checking them, in the interpreter's order.
    fn model(&self, x: &[f32]) -> Result<Vec<f32>, Fail> {
        let mut y = vec![0.0f32; Y_SHAPE[0] * Y_SHAPE[1]];
        let access = |ixs: &[Ix; 2], shape: [usize; 2], i, j| -> Result<usize, Fail> {
            let a = ixs[0].eval(i, j)?;
            let b = ixs[1].eval(i, j)?;
            if a < 0 || a >= shape[0] as i64 || b < 0 || b >= shape[1] as i64 {
                return Err(Fail::OutOfBounds);
            }
            Ok(a as usize * shape[1] + b as usize)
        };
        let [(mi, ei), (mj, ej)] = self.loops;
        for i in mi..mi + ei.max(0) {
            for j in mj..mj + ej.max(0) {
                let dst = access(&self.y, Y_SHAPE, i, j)?;
                let old = y[access(&self.y, Y_SHAPE, i, j)?];
                let xv = x[access(&self.x, X_SHAPE, i, j)?];
                y[dst] = old + xv * self.scale;
            }
        }
        Ok(y)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn affine_kernels_match_the_model(k in arb_kernel()) {
        let xs: Vec<f32> = (0..X_SHAPE[0] * X_SHAPE[1]).map(|v| v as f32 * 0.25 - 1.0).collect();
        let fun = k.function();
        let mut args: BTreeMap<String, Tensor> = [
            ("I".to_string(), Tensor::i32(vec![IND.len()], IND.to_vec()).unwrap()),
            ("X".to_string(), Tensor::f32(X_SHAPE.to_vec(), xs.clone()).unwrap()),
            ("Y".to_string(), Tensor::zeros(DType::F32, Y_SHAPE.to_vec())),
        ]
        .into_iter()
        .collect();
        let got = tir::run(&fun, &mut args);
        match (k.model(&xs), got) {
            (Ok(want), Ok(())) => prop_assert_eq!(args["Y"].as_f32().unwrap(), want.as_slice()),
            (Err(Fail::DivByZero), Err(InterpError::DivByZero { .. })) => {}
            (Err(Fail::OutOfBounds), Err(InterpError::OutOfBounds { .. })) => {}
            (want, got) => prop_assert!(false, "model {:?}, interpreter {:?}", want, got),
        }
    }
}

// ---------------------------------------------------------------------------------
// Arbitrary functions.

const VARS: [&str; 4] = ["i", "j", "x", "zz"];
const BUFS: [&str; 7] = ["X", "I", "Y", "N", "T", "U", "nope"];

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        prop_oneof![
            -4i64..4,
            Just(i64::MAX),
            Just(i64::MIN),
            Just(i32::MAX as i64 + 1)
        ]
        .prop_map(Expr::Int),
        select(vec![0.0f32, 1.5, -2.5, f32::NAN, f32::INFINITY, 1e20]).prop_map(Expr::Float),
        any::<bool>().prop_map(Expr::Bool),
        select(VARS.to_vec()).prop_map(Expr::var),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (select(BinOp::ALL.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| Expr::binary(op, a, b)),
            inner
                .clone()
                .prop_map(|a| Expr::Unary(UnOp::Not, Box::new(a))),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| Expr::select(c, a, b)),
            (
                select(vec![ScalarType::Int, ScalarType::F32, ScalarType::Bool]),
                inner.clone()
            )
                .prop_map(|(t, a)| Expr::cast(t, a)),
            (
                select(BUFS.to_vec()),
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(b, idx)| Expr::load(b, idx)),
            (
                select(Intrinsic::ALL.to_vec()),
                prop::collection::vec(inner, 0..3)
            )
                .prop_map(|(f, args)| Expr::Call(f, args)),
        ]
    })
}

fn arb_stmt() -> impl Strategy<Value = Stmt> {
    let leaf = prop_oneof![
        (
            select(BUFS.to_vec()),
            prop::collection::vec(arb_expr(), 0..3),
            arb_expr()
        )
            .prop_map(|(b, idx, value)| Stmt::store(b, idx, value)),
        (
            select(BUFS.to_vec()),
            prop::collection::vec(arb_expr(), 0..3)
        )
            .prop_map(|(b, indices)| Stmt::Prefetch {
                buffer: b.into(),
                indices
            }),
        Just(Stmt::Seq(vec![])),
    ];
    leaf.prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (
                select(VARS.to_vec()),
                arb_expr(),
                arb_expr(),
                select(ForKind::ALL.to_vec()),
                inner.clone()
            )
                .prop_map(|(v, min, ext, kind, body)| Stmt::for_(v, min, ext, kind, body)),
            prop::collection::vec(inner.clone(), 0..3).prop_map(Stmt::Seq),
            (select(VARS.to_vec()), arb_expr(), inner.clone())
                .prop_map(|(v, value, body)| Stmt::let_(v, value, body)),
            (arb_expr(), inner.clone(), prop::option::of(inner.clone())).prop_map(
                |(cond, then, otherwise)| Stmt::If {
                    cond,
                    then: Box::new(then),
                    otherwise: otherwise.map(Box::new),
                }
            ),
            (
                select(vec!["T", "U", "X"]),
                select(vec![DType::F32, DType::I32]),
                prop_oneof![
                    prop::collection::vec(0usize..4, 0..3),
                    Just(vec![usize::MAX, 2]),
                    Just(vec![1 << 20]),
                ],
                inner
            )
                .prop_map(|(name, dtype, shape, body)| Stmt::Allocate {
                    name: name.into(),
                    dtype,
                    shape,
                    scope: MemScope::Local,
                    body: Box::new(body),
                }),
        ]
    })
}

fn arbitrary_function(body: Stmt) -> (Function, BTreeMap<String, Tensor>) {
    let fun = Function {
        name: "arb".into(),
        params: vec![
            Param::new("X", ParamKind::Input, DType::F32, vec![3, 4]),
            Param::new("I", ParamKind::Weight, DType::I32, vec![5]),
            Param::new("Y", ParamKind::Output, DType::F32, vec![2, 3]),
            Param::new("N", ParamKind::Output, DType::I32, vec![2]),
        ],
        body,
    };
    let args = [
        (
            "X",
            Tensor::f32(vec![3, 4], (0..12).map(|v| v as f32 - 4.5).collect()).unwrap(),
        ),
        ("I", Tensor::i32(vec![5], vec![0, 3, -1, 7, 2]).unwrap()),
        ("Y", Tensor::zeros(DType::F32, vec![2, 3])),
        ("N", Tensor::i32(vec![2], vec![1, -2]).unwrap()),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    (fun, args)
}

/// The arguments' contents, bit for bit (so that NaN equals NaN).
fn bits(args: &BTreeMap<String, Tensor>) -> Vec<(String, Vec<u32>)> {
    args.iter()
        .map(|(n, t)| {
            let b = match (t.as_f32(), t.as_i32()) {
                (Some(v), _) => v.iter().map(|x| x.to_bits()).collect(),
                (_, Some(v)) => v.iter().map(|&x| x as u32).collect(),
                _ => vec![],
            };
            (n.clone(), b)
        })
        .collect()
}

fn is_static(e: &InterpError) -> bool {
    matches!(
        e,
        InterpError::Type { .. }
            | InterpError::UnboundVar { .. }
            | InterpError::MissingBuffer { .. }
            | InterpError::Malformed { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_functions_never_panic_and_checks_agree(body in arb_stmt()) {
        let (fun, args) = arbitrary_function(body);
        let limits = Interpreter {
            max_steps: 20_000,
            max_alloc_elems: 1_000,
            skip_verify: false,
        };
        let unverified = Interpreter { skip_verify: true, ..limits.clone() };

        let mut a1 = args.clone();
        let r1 = unverified.run(&fun, &mut a1);
        let mut a2 = args.clone();
        let r2 = limits.run(&fun, &mut a2);

        match tir::verify(&fun) {
            Err(v) => {
                // The interpreter's own checks reject it too, before running anything.
                prop_assert!(
                    matches!(&r1, Err(e) if is_static(e)),
                    "verify: {}; unverified run: {:?}", v, r1
                );
                prop_assert_eq!(r2.map(|_| ()), Err(InterpError::Verify(v)));
                prop_assert_eq!(bits(&a1), bits(&args));
            }
            Ok(()) => {
                prop_assert!(!matches!(&r1, Err(e) if is_static(e)), "{:?}", r1);
                // Both runs do the same thing (compare errors by message: NaN != NaN).
                prop_assert_eq!(
                    r1.map_err(|e| e.to_string()),
                    r2.map_err(|e| e.to_string())
                );
                prop_assert_eq!(bits(&a1), bits(&a2));
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Well-typed random functions (so that they get past the checks and run).
//
// Variables: `i`, `j` are `Int` (bound by an outer loop nest and rebound by inner
// loops), `x` is `F32` (bound by an outer `let` and rebound by inner ones).

fn int_e(d: u32) -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        (-3i64..5).prop_map(Expr::Int),
        select(vec!["i", "j"]).prop_map(Expr::var),
    ];
    if d == 0 {
        return leaf.boxed();
    }
    let arith = select(vec![
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Mod,
        BinOp::Min,
        BinOp::Max,
    ]);
    prop_oneof![
        3 => leaf,
        2 => (arith, int_e(d - 1), int_e(d - 1)).prop_map(|(op, a, b)| Expr::binary(op, a, b)),
        1 => int_e(d - 1).prop_map(|k| Expr::load("I", vec![k])),
        1 => int_e(d - 1).prop_map(|k| Expr::load("N", vec![k])),
        1 => (bool_e(d - 1), int_e(d - 1), int_e(d - 1)).prop_map(|(c, a, b)| Expr::select(c, a, b)),
        1 => float_e(d - 1).prop_map(|a| Expr::cast(ScalarType::Int, a)),
        1 => bool_e(d - 1).prop_map(|a| Expr::cast(ScalarType::Int, a)),
    ]
    .boxed()
}

fn float_e(d: u32) -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        select(vec![0.0f32, 1.5, -2.5, 1e30, f32::NAN]).prop_map(Expr::Float),
        Just(Expr::var("x")),
    ];
    if d == 0 {
        return leaf.boxed();
    }
    let arith = select(vec![
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Min,
        BinOp::Max,
    ]);
    prop_oneof![
        3 => leaf,
        2 => (arith, float_e(d - 1), float_e(d - 1)).prop_map(|(op, a, b)| Expr::binary(op, a, b)),
        2 => (int_e(d - 1), int_e(d - 1)).prop_map(|(a, b)| Expr::load("X", vec![a, b])),
        1 => (int_e(d - 1), int_e(d - 1)).prop_map(|(a, b)| Expr::load("Y", vec![a, b])),
        1 => (bool_e(d - 1), float_e(d - 1), float_e(d - 1)).prop_map(|(c, a, b)| Expr::select(c, a, b)),
        1 => int_e(d - 1).prop_map(|a| Expr::cast(ScalarType::F32, a)),
        1 => (select(Intrinsic::ALL.to_vec()), float_e(d - 1)).prop_map(|(f, a)| Expr::call(f, a)),
    ]
    .boxed()
}

fn bool_e(d: u32) -> BoxedStrategy<Expr> {
    let leaf = any::<bool>().prop_map(Expr::Bool);
    if d == 0 {
        return leaf.boxed();
    }
    let cmp = || {
        select(vec![
            BinOp::Eq,
            BinOp::Ne,
            BinOp::Lt,
            BinOp::Le,
            BinOp::Gt,
            BinOp::Ge,
        ])
    };
    prop_oneof![
        1 => leaf,
        2 => (cmp(), int_e(d - 1), int_e(d - 1)).prop_map(|(op, a, b)| Expr::binary(op, a, b)),
        1 => (cmp(), float_e(d - 1), float_e(d - 1)).prop_map(|(op, a, b)| Expr::binary(op, a, b)),
        1 => (select(vec![BinOp::And, BinOp::Or]), bool_e(d - 1), bool_e(d - 1))
            .prop_map(|(op, a, b)| Expr::binary(op, a, b)),
        1 => bool_e(d - 1).prop_map(|a| Expr::Unary(UnOp::Not, Box::new(a))),
    ]
    .boxed()
}

fn typed_stmt(d: u32) -> BoxedStrategy<Stmt> {
    let leaf = prop_oneof![
        (int_e(2), int_e(2), float_e(2)).prop_map(|(a, b, v)| Stmt::store("Y", vec![a, b], v)),
        (int_e(2), int_e(2)).prop_map(|(k, v)| Stmt::store("N", vec![k], v)),
    ];
    if d == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        2 => leaf,
        2 => (
            select(vec!["i", "j"]),
            int_e(1),
            int_e(1),
            select(ForKind::ALL.to_vec()),
            typed_stmt(d - 1)
        )
            .prop_map(|(v, min, ext, kind, body)| Stmt::for_(v, min, ext, kind, body)),
        1 => prop::collection::vec(typed_stmt(d - 1), 0..3).prop_map(Stmt::Seq),
        1 => (float_e(2), typed_stmt(d - 1)).prop_map(|(v, body)| Stmt::let_("x", v, body)),
        1 => (bool_e(2), typed_stmt(d - 1), prop::option::of(typed_stmt(d - 1))).prop_map(
            |(cond, then, otherwise)| Stmt::If {
                cond,
                then: Box::new(then),
                otherwise: otherwise.map(Box::new),
            }
        ),
        1 => (typed_stmt(d - 1), int_e(1), float_e(1), int_e(1), int_e(1), int_e(1)).prop_map(
            move |(body, k, v, a, b, k2)| Stmt::Allocate {
                // Nested allocations may not share a name.
                name: format!("T{d}"),
                dtype: DType::F32,
                shape: vec![3],
                scope: MemScope::Shared,
                body: Box::new(Stmt::Seq(vec![
                    body,
                    Stmt::store(format!("T{d}"), vec![k], v),
                    Stmt::store("Y", vec![a, b], Expr::load(format!("T{d}"), vec![k2])),
                ])),
            }
        ),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn well_typed_functions_verify_and_run_without_panicking(
        body in typed_stmt(3),
        ext_i in 1i64..4,
        ext_j in 1i64..3,
    ) {
        // for i in [-1, -1 + ext_i): for j in [0, ext_j): let x = 0.5 { body }
        let body = Stmt::for_(
            "i",
            Expr::Int(-1),
            Expr::Int(ext_i),
            ForKind::Serial,
            Stmt::serial("j", Expr::Int(ext_j), Stmt::let_("x", Expr::Float(0.5), body)),
        );
        let (fun, args) = arbitrary_function(body);
        prop_assert_eq!(tir::verify(&fun), Ok(()));
        let limits = Interpreter {
            max_steps: 50_000,
            ..Interpreter::default()
        };
        let mut a1 = args.clone();
        let r1 = limits.run(&fun, &mut a1);
        let mut a2 = args.clone();
        let r2 = Interpreter { skip_verify: true, ..limits.clone() }.run(&fun, &mut a2);
        prop_assert!(!matches!(&r1, Err(e) if is_static(e)), "{:?}", r1);
        let failed = r1.is_err();
        prop_assert_eq!(r1.map_err(|e| e.to_string()), r2.map_err(|e| e.to_string()));
        prop_assert_eq!(bits(&a1), bits(&a2));
        if failed {
            // Failed runs leave the arguments alone.
            prop_assert_eq!(bits(&a1), bits(&args));
        }
    }
}
