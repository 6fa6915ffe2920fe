//! Tests of the reference interpreter: the semantics of every expression and statement,
//! whole kernels against plain Rust loops, and every error kind.

use std::collections::BTreeMap;
use std::ops::{Div, Rem};
use tir::interp::{run_with_limit, RunStats};
use tir::{
    run, BinOp, DType, Expr, ForKind, Function, InterpError, Interpreter, Intrinsic, MemScope,
    Param, ParamKind, ScalarType, Stmt, Tensor, UnOp, VerifyError,
};

// ---------------------------------------------------------------------------------
// Helpers.

fn param(name: &str, kind: ParamKind, dtype: DType, shape: &[usize]) -> Param {
    Param::new(name, kind, dtype, shape.to_vec())
}

fn func(params: Vec<Param>, body: Stmt) -> Function {
    Function {
        name: "t".into(),
        params,
        body,
    }
}

fn v(name: &str) -> Expr {
    Expr::var(name)
}

fn i(x: i64) -> Expr {
    Expr::Int(x)
}

fn f(x: f32) -> Expr {
    Expr::Float(x)
}

fn ld(buffer: &str, idx: Vec<Expr>) -> Expr {
    Expr::load(buffer, idx)
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::binary(op, a, b)
}

fn seq(items: Vec<Stmt>) -> Stmt {
    Stmt::Seq(items)
}

fn alloc(name: &str, dtype: DType, shape: &[usize], body: Stmt) -> Stmt {
    Stmt::Allocate {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        scope: MemScope::Local,
        body: Box::new(body),
    }
}

fn args(list: Vec<(&str, Tensor)>) -> BTreeMap<String, Tensor> {
    list.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
}

fn f32s(shape: &[usize], data: Vec<f32>) -> Tensor {
    Tensor::f32(shape.to_vec(), data).unwrap()
}

fn i32s(shape: &[usize], data: Vec<i32>) -> Tensor {
    Tensor::i32(shape.to_vec(), data).unwrap()
}

/// Runs a body that writes the `i32` output `O` of shape `shape`; returns `O`.
fn run_i32_out(shape: &[usize], body: Stmt) -> Result<Vec<i32>, InterpError> {
    let fun = func(vec![param("O", ParamKind::Output, DType::I32, shape)], body);
    let mut a = args(vec![("O", Tensor::zeros(DType::I32, shape.to_vec()))]);
    run(&fun, &mut a)?;
    Ok(a["O"].as_i32().unwrap().to_vec())
}

/// Runs a body that writes the `f32` output `O` of shape `shape`; returns `O`.
fn run_f32_out(shape: &[usize], body: Stmt) -> Result<Vec<f32>, InterpError> {
    let fun = func(vec![param("O", ParamKind::Output, DType::F32, shape)], body);
    let mut a = args(vec![("O", Tensor::zeros(DType::F32, shape.to_vec()))]);
    run(&fun, &mut a)?;
    Ok(a["O"].as_f32().unwrap().to_vec())
}

/// The value of an `Int` expression (stored to an `i32` buffer, so it must fit).
fn eval_int(e: Expr) -> Result<i64, InterpError> {
    run_i32_out(&[1], Stmt::store("O", vec![i(0)], e)).map(|o| i64::from(o[0]))
}

/// The value of an `F32` expression.
fn eval_f32(e: Expr) -> Result<f32, InterpError> {
    run_f32_out(&[1], Stmt::store("O", vec![i(0)], e)).map(|o| o[0])
}

/// The value of a `Bool` expression.
fn eval_bool(e: Expr) -> Result<bool, InterpError> {
    eval_int(Expr::cast(ScalarType::Int, e)).map(|x| x != 0)
}

/// A deterministic pseudo-random sequence in [-1, 1).
fn lcg(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Int expressions.

#[test]
fn int_arithmetic() {
    assert_eq!(eval_int(i(7) + i(5)).unwrap(), 12);
    assert_eq!(eval_int(i(7) - i(15)).unwrap(), -8);
    assert_eq!(eval_int(i(-7) * i(6)).unwrap(), -42);
    assert_eq!(eval_int(i(-7).min(i(3))).unwrap(), -7);
    assert_eq!(eval_int(i(-7).max(i(3))).unwrap(), 3);
    // Large intermediate values are fine as long as nothing overflows i64.
    assert_eq!(
        eval_int((i(i64::MAX) - i(5)) - (i(i64::MAX) - i(10))).unwrap(),
        5
    );
}

#[test]
fn floor_div_and_mod_hand_picked() {
    let cases = [
        (7, 2, 3, 1),
        (-7, 2, -4, 1),
        (7, -2, -4, -1),
        (-7, -2, 3, -1),
        (6, -3, -2, 0),
        (-6, 3, -2, 0),
        (0, 5, 0, 0),
        (-1, 4, -1, 3),
    ];
    for (a, b, q, r) in cases {
        assert_eq!(eval_int(i(a).div(i(b))).unwrap(), q, "{a} / {b}");
        assert_eq!(eval_int(i(a).rem(i(b))).unwrap(), r, "{a} % {b}");
    }
    // i64::MIN % -1 is representable (0); i64::MIN / -1 is not.
    assert_eq!(eval_int(i(i64::MIN).rem(i(-1))).unwrap(), 0);
    assert_eq!(eval_int(i(i64::MIN).rem(i(3))).unwrap(), 1);
    let e = eval_int(i(i64::MIN).div(i(-1))).unwrap_err();
    assert!(matches!(e, InterpError::IntOverflow { .. }), "{e}");
    assert_eq!(
        eval_int(i(i64::MIN).div(i(1 << 62))).unwrap(),
        -2,
        "exact negative quotient"
    );
}

#[test]
fn floor_div_and_mod_grid_against_reference() {
    // for a in [-20, 20): for b in [-7, 8): if b != 0 { Q[a+20, b+7] = a / b; R[..] = a % b }
    let (na, nb) = (40usize, 15usize);
    let idx = vec![v("a") + i(20), v("b") + i(7)];
    let body = Stmt::for_(
        "a",
        i(-20),
        i(na as i64),
        ForKind::Serial,
        Stmt::for_(
            "b",
            i(-7),
            i(nb as i64),
            ForKind::Serial,
            Stmt::if_(
                bin(BinOp::Ne, v("b"), i(0)),
                seq(vec![
                    Stmt::store("Q", idx.clone(), v("a").div(v("b"))),
                    Stmt::store("R", idx, v("a").rem(v("b"))),
                ]),
            ),
        ),
    );
    let fun = func(
        vec![
            param("Q", ParamKind::Output, DType::I32, &[na, nb]),
            param("R", ParamKind::Output, DType::I32, &[na, nb]),
        ],
        body,
    );
    let mut a = args(vec![
        ("Q", Tensor::zeros(DType::I32, vec![na, nb])),
        ("R", Tensor::zeros(DType::I32, vec![na, nb])),
    ]);
    run(&fun, &mut a).unwrap();
    let (q, r) = (a["Q"].as_i32().unwrap(), a["R"].as_i32().unwrap());
    let mut checked = 0;
    for x in -20i32..20 {
        for y in -7i32..8 {
            if y == 0 {
                continue;
            }
            let k = ((x + 20) as usize) * nb + (y + 7) as usize;
            let fq = (x as f64 / y as f64).floor() as i32;
            assert_eq!(q[k], fq, "{x} / {y}");
            assert_eq!(r[k], x - y * fq, "{x} % {y}");
            assert!(r[k] == 0 || (r[k] < 0) == (y < 0), "sign of {x} % {y}");
            checked += 1;
        }
    }
    assert_eq!(checked, 40 * 14);
}

#[test]
fn int_overflow_is_an_error() {
    let cases = [
        (i(i64::MAX) + i(1), "9223372036854775807 + 1"),
        (i(i64::MIN) - i(1), "-9223372036854775808 - 1"),
        (i(i64::MAX) * i(2), "9223372036854775807 * 2"),
        (i(i64::MIN).div(i(-1)), "-9223372036854775808 / -1"),
    ];
    for (e, text) in cases {
        let err = eval_int(e).unwrap_err();
        assert!(matches!(err, InterpError::IntOverflow { .. }), "{err}");
        assert!(err.to_string().contains(text), "{err}");
        assert!(err.to_string().contains("integer overflow"), "{err}");
    }
}

#[test]
fn division_by_zero_is_an_error() {
    for (e, text) in [(i(7).div(i(0)), "7 / 0"), (i(-3).rem(i(0)), "-3 % 0")] {
        let err = eval_int(e).unwrap_err();
        assert!(matches!(err, InterpError::DivByZero { .. }), "{err}");
        assert!(err.to_string().contains(text), "{err}");
    }
    // Float division by zero is IEEE, not an error.
    assert_eq!(eval_f32(f(1.0).div(f(0.0))).unwrap(), f32::INFINITY);
}

// ---------------------------------------------------------------------------------
// F32, Bool, casts, intrinsics, select.

#[test]
fn f32_arithmetic_is_ieee() {
    assert_eq!(eval_f32(f(1.5) + f(2.25)).unwrap(), 3.75);
    assert_eq!(eval_f32(f(1.5) - f(2.25)).unwrap(), -0.75);
    assert_eq!(eval_f32(f(1.5) * f(-2.0)).unwrap(), -3.0);
    assert_eq!(eval_f32(f(1.0).div(f(3.0))).unwrap(), 1.0f32 / 3.0);
    assert_eq!(eval_f32(f(0.1) + f(0.2)).unwrap(), 0.1f32 + 0.2f32);
    assert_eq!(eval_f32(f(1.0).min(f(-2.0))).unwrap(), -2.0);
    assert_eq!(eval_f32(f(1.0).max(f(-2.0))).unwrap(), 1.0);
    // min/max with NaN give the other operand (fminf/fmaxf).
    assert_eq!(eval_f32(f(f32::NAN).min(f(3.0))).unwrap(), 3.0);
    assert_eq!(eval_f32(f(3.0).max(f(f32::NAN))).unwrap(), 3.0);
    assert!(eval_f32(f(0.0).div(f(0.0))).unwrap().is_nan());
}

#[test]
fn comparisons() {
    let table = [
        (BinOp::Eq, [false, true, false]),
        (BinOp::Ne, [true, false, true]),
        (BinOp::Lt, [true, false, false]),
        (BinOp::Le, [true, true, false]),
        (BinOp::Gt, [false, false, true]),
        (BinOp::Ge, [false, true, true]),
    ];
    for (op, want) in table {
        for (k, (a, b)) in [(1, 2), (2, 2), (3, 2)].into_iter().enumerate() {
            assert_eq!(
                eval_bool(bin(op, i(a), i(b))).unwrap(),
                want[k],
                "{a} {op:?} {b}"
            );
            let (x, y) = (a as f32 - 0.5, b as f32 - 0.5);
            assert_eq!(
                eval_bool(bin(op, f(x), f(y))).unwrap(),
                want[k],
                "{x} {op:?} {y}"
            );
        }
        // Every comparison with NaN is false, except !=.
        let nan = eval_bool(bin(op, f(f32::NAN), f(1.0))).unwrap();
        assert_eq!(nan, op == BinOp::Ne, "NaN {op:?} 1");
    }
}

#[test]
fn logic() {
    for a in [false, true] {
        assert_eq!(
            eval_bool(Expr::Unary(UnOp::Not, Box::new(Expr::Bool(a)))).unwrap(),
            !a
        );
        for b in [false, true] {
            let (x, y) = (Expr::Bool(a), Expr::Bool(b));
            assert_eq!(eval_bool(x.clone().and(y.clone())).unwrap(), a && b);
            assert_eq!(eval_bool(bin(BinOp::Or, x, y)).unwrap(), a || b);
        }
    }
}

#[test]
fn and_or_evaluate_both_operands() {
    // `false && X[5] > 0` still loads X[5]: out of bounds.
    let fun = func(
        vec![
            param("X", ParamKind::Input, DType::F32, &[2]),
            param("O", ParamKind::Output, DType::I32, &[1]),
        ],
        Stmt::store(
            "O",
            vec![i(0)],
            Expr::cast(
                ScalarType::Int,
                Expr::Bool(false).and(bin(BinOp::Gt, ld("X", vec![i(5)]), f(0.0))),
            ),
        ),
    );
    let mut a = args(vec![
        ("X", f32s(&[2], vec![1.0, 2.0])),
        ("O", Tensor::zeros(DType::I32, vec![1])),
    ]);
    let err = run(&fun, &mut a).unwrap_err();
    assert!(matches!(err, InterpError::OutOfBounds { .. }), "{err}");
}

#[test]
fn casts() {
    use ScalarType::*;
    assert_eq!(eval_int(Expr::cast(Int, f(2.7))).unwrap(), 2);
    assert_eq!(eval_int(Expr::cast(Int, f(-2.7))).unwrap(), -2);
    assert_eq!(eval_int(Expr::cast(Int, f(-0.5))).unwrap(), 0);
    assert_eq!(eval_int(Expr::cast(Int, Expr::Bool(true))).unwrap(), 1);
    assert_eq!(eval_int(Expr::cast(Int, Expr::Bool(false))).unwrap(), 0);
    assert_eq!(eval_f32(Expr::cast(F32, i(-3))).unwrap(), -3.0);
    // Int -> F32 rounds like `as f32`.
    assert_eq!(
        eval_f32(Expr::cast(F32, i(16_777_217))).unwrap(),
        16_777_216.0
    );
    // Casts to the operand's own type do nothing.
    assert_eq!(eval_int(Expr::cast(Int, i(5))).unwrap(), 5);
    assert_eq!(eval_f32(Expr::cast(F32, f(0.25))).unwrap(), 0.25);
    assert!(eval_bool(Expr::cast(Bool, Expr::Bool(true))).unwrap());
    // Round trip through F32 of a large value that f32 represents exactly.
    assert_eq!(
        eval_int(Expr::cast(Int, Expr::cast(F32, i(1 << 40))) - i(1 << 40)).unwrap(),
        0
    );
    for bad in [f32::NAN, f32::INFINITY, -1e19, 9.3e18] {
        let err = eval_int(Expr::cast(Int, f(bad))).unwrap_err();
        assert!(matches!(err, InterpError::CastOutOfRange { .. }), "{err}");
        assert!(err.to_string().contains("cannot cast"), "{err}");
    }
    // -2^63 is the one float at the edge that fits.
    assert_eq!(
        eval_int(Expr::cast(Int, f(-9_223_372_036_854_775_808.0)) - i(i64::MIN)).unwrap(),
        0
    );
}

#[test]
fn intrinsics_match_eval() {
    for intr in Intrinsic::ALL {
        for x in [-2.5f32, -0.3, 0.0, 0.7, 4.0] {
            let got = eval_f32(Expr::call(intr, f(x))).unwrap();
            let want = intr.eval(x);
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{}({x}) = {got}, want {want}",
                intr.name()
            );
        }
    }
    assert_eq!(eval_f32(Expr::call(Intrinsic::Abs, f(-3.0))).unwrap(), 3.0);
    assert_eq!(eval_f32(Expr::call(Intrinsic::Sqrt, f(9.0))).unwrap(), 3.0);
    assert_eq!(
        eval_f32(Expr::call(Intrinsic::Sigmoid, f(0.0))).unwrap(),
        0.5
    );
}

#[test]
fn select_picks_a_branch_and_evaluates_only_it() {
    let cond = |b| Expr::Bool(b);
    assert_eq!(eval_int(Expr::select(cond(true), i(1), i(2))).unwrap(), 1);
    assert_eq!(eval_int(Expr::select(cond(false), i(1), i(2))).unwrap(), 2);
    assert_eq!(
        eval_f32(Expr::select(i(3).lt(i(4)), f(1.5), f(2.5))).unwrap(),
        1.5
    );
    assert!(!eval_bool(Expr::select(cond(true), cond(false), cond(true))).unwrap());
    // As C's `?:`: the branch not taken is not evaluated (its division by zero is no
    // error, as a masked load past an array's end is none), the taken one is.
    assert_eq!(
        eval_int(Expr::select(cond(true), i(1), i(1).div(i(0)))).unwrap(),
        1
    );
    let err = eval_int(Expr::select(cond(false), i(1), i(1).div(i(0)))).unwrap_err();
    assert!(matches!(err, InterpError::DivByZero { .. }), "{err}");
}

// ---------------------------------------------------------------------------------
// Statements.

#[test]
fn let_binds_and_shadows() {
    // let x = 1 { let x = x + 10 { O[0] = x }; O[1] = x }
    let body = Stmt::let_(
        "x",
        i(1),
        seq(vec![
            Stmt::let_("x", v("x") + i(10), Stmt::store("O", vec![i(0)], v("x"))),
            Stmt::store("O", vec![i(1)], v("x")),
        ]),
    );
    assert_eq!(run_i32_out(&[2], body).unwrap(), vec![11, 1]);

    // A let of another type shadowing a loop variable; and a Bool let.
    let body = Stmt::serial(
        "i",
        i(3),
        Stmt::let_(
            "k",
            v("i"),
            Stmt::let_(
                "i",
                Expr::cast(ScalarType::F32, v("i")) * f(0.5),
                Stmt::let_(
                    "big",
                    Expr::cast(ScalarType::Int, v("i")).ge(i(1)),
                    Stmt::store("O", vec![v("k")], Expr::select(v("big"), v("i"), f(-1.0))),
                ),
            ),
        ),
    );
    assert_eq!(run_f32_out(&[3], body).unwrap(), vec![-1.0, -1.0, 1.0]);
}

#[test]
fn if_else() {
    // for i in 0..6: if i % 2 == 0 { O[i] = i } else if i < 4 { O[i] = -1 }
    let body = Stmt::serial(
        "i",
        i(6),
        Stmt::If {
            cond: v("i").rem(i(2)).eq_(i(0)),
            then: Box::new(Stmt::store("O", vec![v("i")], v("i"))),
            otherwise: Some(Box::new(Stmt::if_(
                v("i").lt(i(4)),
                Stmt::store("O", vec![v("i")], i(-1)),
            ))),
        },
    );
    assert_eq!(run_i32_out(&[6], body).unwrap(), vec![0, -1, 2, -1, 4, 0]);
}

#[test]
fn for_with_nonzero_min_and_every_kind() {
    for kind in ForKind::ALL {
        // for i in [3, 3 + 4): O[i - 3] = i * i
        let body = Stmt::for_(
            "i",
            i(3),
            i(4),
            kind,
            Stmt::store("O", vec![v("i") - i(3)], v("i") * v("i")),
        );
        assert_eq!(
            run_i32_out(&[4], body).unwrap(),
            vec![9, 16, 25, 36],
            "{kind:?}"
        );
    }
    // Negative min.
    let body = Stmt::for_(
        "i",
        i(-2),
        i(4),
        ForKind::Serial,
        Stmt::store("O", vec![v("i") + i(2)], v("i")),
    );
    assert_eq!(run_i32_out(&[4], body).unwrap(), vec![-2, -1, 0, 1]);
}

#[test]
fn for_bounds_are_evaluated_once_and_empty_extents_run_nothing() {
    // The body changes the buffer the extent was loaded from; the loop still runs
    // the original count.
    let fun = func(
        vec![param("N", ParamKind::Output, DType::I32, &[2])],
        Stmt::serial(
            "i",
            ld("N", vec![i(0)]),
            seq(vec![
                Stmt::store("N", vec![i(0)], i(100)),
                Stmt::store("N", vec![i(1)], ld("N", vec![i(1)]) + i(1)),
            ]),
        ),
    );
    let mut a = args(vec![("N", i32s(&[2], vec![3, 0]))]);
    run(&fun, &mut a).unwrap();
    assert_eq!(a["N"].as_i32().unwrap(), &[100, 3]);

    for extent in [0, -1, i64::MIN] {
        let body = Stmt::serial("i", i(extent), Stmt::store("O", vec![i(0)], i(7)));
        assert_eq!(run_i32_out(&[1], body).unwrap(), vec![0], "extent {extent}");
    }
    // A loop ending exactly at i64::MAX is fine.
    let body = Stmt::for_(
        "i",
        i(i64::MAX - 1),
        i(2),
        ForKind::Serial,
        Stmt::store("O", vec![i(i64::MAX) - v("i")], i(1)),
    );
    assert_eq!(run_i32_out(&[2], body).unwrap(), vec![1, 1]);
    // One further overflows.
    let body = Stmt::for_(
        "i",
        i(i64::MAX - 1),
        i(3),
        ForKind::Serial,
        Stmt::Seq(vec![]),
    );
    let err = run_i32_out(&[1], body).unwrap_err();
    assert!(matches!(err, InterpError::IntOverflow { .. }), "{err}");
}

#[test]
fn data_dependent_extent_and_indirect_loads() {
    // CSR-like: for r in 0..R: for k in [ptr[r], ptr[r+1]) : O[r] += V[k] * X[col[k]]
    let ptr = vec![0, 2, 2, 5];
    let col = vec![1, 3, 0, 1, 2];
    let vals = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    let x = vec![10.0, 20.0, 30.0, 40.0];
    let body = Stmt::serial(
        "r",
        i(3),
        Stmt::for_(
            "k",
            ld("ptr", vec![v("r")]),
            ld("ptr", vec![v("r") + i(1)]) - ld("ptr", vec![v("r")]),
            ForKind::Serial,
            Stmt::store(
                "O",
                vec![v("r")],
                ld("O", vec![v("r")])
                    + ld("V", vec![v("k")]) * ld("X", vec![ld("col", vec![v("k")])]),
            ),
        ),
    );
    let fun = func(
        vec![
            param("ptr", ParamKind::Weight, DType::I32, &[4]),
            param("col", ParamKind::Weight, DType::I32, &[5]),
            param("V", ParamKind::Weight, DType::F32, &[5]),
            param("X", ParamKind::Input, DType::F32, &[4]),
            param("O", ParamKind::Output, DType::F32, &[3]),
        ],
        body,
    );
    let mut a = args(vec![
        ("ptr", i32s(&[4], ptr.clone())),
        ("col", i32s(&[5], col.clone())),
        ("V", f32s(&[5], vals.clone())),
        ("X", f32s(&[4], x.clone())),
        ("O", Tensor::zeros(DType::F32, vec![3])),
    ]);
    run(&fun, &mut a).unwrap();
    let mut want = vec![0.0f32; 3];
    for r in 0..3 {
        for k in ptr[r] as usize..ptr[r + 1] as usize {
            want[r] += vals[k] * x[col[k] as usize];
        }
    }
    assert_eq!(a["O"].as_f32().unwrap(), want.as_slice());
    assert_eq!(
        want,
        vec![
            1.0 * 20.0 + 2.0 * 40.0,
            0.0,
            3.0 * 10.0 + 4.0 * 20.0 + 5.0 * 30.0
        ]
    );
    // Inputs and weights are untouched.
    assert_eq!(a["X"].as_f32().unwrap(), x.as_slice());
}

#[test]
fn alloc_is_zeroed_on_every_entry_and_scoped() {
    // for r in 0..3: alloc T[4] { for k in 0..=r: T[k] = T[k] + 1; O[r] = T[0]+T[1]+T[2]+T[3] }
    // If T were not zeroed on each entry, the sums would accumulate.
    let sum = (0..4)
        .map(|k| ld("T", vec![i(k)]))
        .reduce(|a, b| a + b)
        .unwrap();
    let body = Stmt::serial(
        "r",
        i(3),
        alloc(
            "T",
            DType::I32,
            &[4],
            seq(vec![
                Stmt::serial(
                    "k",
                    v("r") + i(1),
                    Stmt::store("T", vec![v("k")], ld("T", vec![v("k")]) + i(1)),
                ),
                Stmt::store("O", vec![v("r")], sum),
            ]),
        ),
    );
    assert_eq!(run_i32_out(&[3], body).unwrap(), vec![1, 2, 3]);

    // An f32 allocation, a 2-D one, and two sibling allocations of the same name.
    let body = seq(vec![
        alloc(
            "T",
            DType::F32,
            &[2, 3],
            seq(vec![
                Stmt::store("T", vec![i(1), i(2)], f(2.5)),
                Stmt::store(
                    "O",
                    vec![i(0)],
                    ld("T", vec![i(1), i(2)]) + ld("T", vec![i(0), i(0)]),
                ),
            ]),
        ),
        alloc(
            "T",
            DType::F32,
            &[1],
            Stmt::store("O", vec![i(1)], ld("T", vec![i(0)]) + f(1.0)),
        ),
    ]);
    assert_eq!(run_f32_out(&[2], body).unwrap(), vec![2.5, 1.0]);

    // Outside its alloc, T does not exist.
    let body = seq(vec![
        alloc("T", DType::I32, &[1], Stmt::Seq(vec![])),
        Stmt::store("O", vec![i(0)], ld("T", vec![i(0)])),
    ]);
    let err = run_i32_out(&[1], body).unwrap_err();
    assert!(
        matches!(err, InterpError::Verify(VerifyError::UnknownBuffer { ref name, .. }) if name == "T"),
        "{err}"
    );
}

#[test]
fn rank_zero_buffers() {
    let fun = func(
        vec![
            param("S", ParamKind::Input, DType::F32, &[]),
            param("O", ParamKind::Output, DType::F32, &[]),
        ],
        Stmt::store("O", vec![], ld("S", vec![]) * f(2.0)),
    );
    let mut a = args(vec![
        ("S", f32s(&[], vec![1.5])),
        ("O", f32s(&[], vec![0.0])),
    ]);
    run(&fun, &mut a).unwrap();
    assert_eq!(a["O"].as_f32().unwrap(), &[3.0]);
}

#[test]
fn i32_stores_and_loads() {
    assert_eq!(eval_int(i(i32::MAX as i64)).unwrap(), i32::MAX as i64);
    assert_eq!(eval_int(i(i32::MIN as i64)).unwrap(), i32::MIN as i64);
    for bad in [i32::MAX as i64 + 1, i32::MIN as i64 - 1] {
        let err = eval_int(i(bad)).unwrap_err();
        assert!(
            matches!(err, InterpError::I32Overflow { ref buffer, value } if buffer == "O" && value == bad),
            "{err}"
        );
        assert!(err.to_string().contains("does not fit in i32"), "{err}");
    }
}

#[test]
fn stats_count_steps() {
    // Seq + 10 iterations of a store each: 1 (for) + 10 (stores).
    let fun = func(
        vec![param("O", ParamKind::Output, DType::I32, &[10])],
        Stmt::serial("i", i(10), Stmt::store("O", vec![v("i")], v("i"))),
    );
    let mut a = args(vec![("O", Tensor::zeros(DType::I32, vec![10]))]);
    let RunStats { steps } = Interpreter::new().run(&fun, &mut a).unwrap();
    assert_eq!(steps, 11);
    // An alloc of n elements costs n steps more.
    let fun = func(
        vec![param("O", ParamKind::Output, DType::I32, &[1])],
        alloc("T", DType::I32, &[5, 2], Stmt::Seq(vec![])),
    );
    let mut a = args(vec![("O", Tensor::zeros(DType::I32, vec![1]))]);
    assert_eq!(Interpreter::new().run(&fun, &mut a).unwrap().steps, 2 + 10);
}

// ---------------------------------------------------------------------------------
// Whole kernels against plain Rust.

fn matmul_function(m: usize, n: usize, k: usize) -> Function {
    // for i, j: for kk: C[i, j] = C[i, j] + A[i, kk] * B[kk, j]
    let body = Stmt::for_(
        "i",
        i(0),
        i(m as i64),
        ForKind::Parallel,
        Stmt::serial(
            "j",
            i(n as i64),
            Stmt::serial(
                "kk",
                i(k as i64),
                Stmt::store(
                    "C",
                    vec![v("i"), v("j")],
                    ld("C", vec![v("i"), v("j")])
                        + ld("A", vec![v("i"), v("kk")]) * ld("B", vec![v("kk"), v("j")]),
                ),
            ),
        ),
    );
    func(
        vec![
            param("A", ParamKind::Input, DType::F32, &[m, k]),
            param("B", ParamKind::Weight, DType::F32, &[k, n]),
            param("C", ParamKind::Output, DType::F32, &[m, n]),
        ],
        body,
    )
}

fn matmul_reference(a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; m * n];
    for r in 0..m {
        for col in 0..n {
            let mut acc = 0.0f32;
            for x in 0..k {
                acc += a[r * k + x] * b[x * n + col];
            }
            c[r * n + col] = acc;
        }
    }
    c
}

#[test]
fn dense_matmul_matches_rust() {
    let (m, n, k) = (7, 5, 11);
    let (av, bv) = (lcg(1, m * k), lcg(2, k * n));
    let fun = matmul_function(m, n, k);
    let mut a = args(vec![
        ("A", f32s(&[m, k], av.clone())),
        ("B", f32s(&[k, n], bv.clone())),
        ("C", Tensor::zeros(DType::F32, vec![m, n])),
    ]);
    run(&fun, &mut a).unwrap();
    // Same summation order, so the results are bit-identical.
    assert_eq!(
        a["C"].as_f32().unwrap(),
        matmul_reference(&av, &bv, m, n, k).as_slice()
    );
}

/// A small BCR-style weight: `M x K`, split into row blocks; each block keeps some rows
/// and some columns, and stores the dense `kept rows x kept cols` values.
struct Bcr {
    m: usize,
    k: usize,
    row_ptr: Vec<i32>,
    rows: Vec<i32>,
    col_ptr: Vec<i32>,
    cols: Vec<i32>,
    val_ptr: Vec<i32>,
    vals: Vec<f32>,
}

fn small_bcr() -> Bcr {
    // 6 x 8 weight, 3 row blocks of 2 rows.
    let blocks: [(&[i32], &[i32]); 3] = [(&[0, 1], &[1, 4, 6]), (&[3], &[0, 7]), (&[], &[])];
    let (mut row_ptr, mut rows, mut col_ptr, mut cols, mut val_ptr) =
        (vec![0], vec![], vec![0], vec![], vec![0]);
    let mut nvals = 0;
    for (r, c) in blocks {
        rows.extend_from_slice(r);
        cols.extend_from_slice(c);
        row_ptr.push(rows.len() as i32);
        col_ptr.push(cols.len() as i32);
        nvals += r.len() * c.len();
        val_ptr.push(nvals as i32);
    }
    Bcr {
        m: 6,
        k: 8,
        row_ptr,
        rows,
        col_ptr,
        cols,
        val_ptr,
        vals: lcg(7, nvals),
    }
}

/// Y[M, N] = W * X[K, N] for a BCR weight W, as a gather (X rows by kept column) /
/// scatter (Y rows by kept row) kernel with a local accumulator.
fn bcr_function(w: &Bcr, n: usize) -> Function {
    let nb = (w.row_ptr.len() - 1) as i64;
    let b1 = v("b") + i(1);
    let body = Stmt::serial(
        "b",
        i(nb),
        Stmt::let_(
            "nc",
            ld("col_ptr", vec![b1.clone()]) - ld("col_ptr", vec![v("b")]),
            Stmt::serial(
                "ri",
                ld("row_ptr", vec![b1]) - ld("row_ptr", vec![v("b")]),
                Stmt::let_(
                    "r",
                    ld("rows", vec![ld("row_ptr", vec![v("b")]) + v("ri")]),
                    Stmt::for_(
                        "n",
                        i(0),
                        i(n as i64),
                        ForKind::Vectorized,
                        alloc(
                            "acc",
                            DType::F32,
                            &[1],
                            seq(vec![
                                Stmt::serial(
                                    "j",
                                    v("nc"),
                                    Stmt::store(
                                        "acc",
                                        vec![i(0)],
                                        ld("acc", vec![i(0)])
                                            + ld(
                                                "vals",
                                                vec![
                                                    ld("val_ptr", vec![v("b")])
                                                        + v("ri") * v("nc")
                                                        + v("j"),
                                                ],
                                            ) * ld(
                                                "X",
                                                vec![
                                                    ld(
                                                        "cols",
                                                        vec![ld("col_ptr", vec![v("b")]) + v("j")],
                                                    ),
                                                    v("n"),
                                                ],
                                            ),
                                    ),
                                ),
                                Stmt::store(
                                    "Y",
                                    vec![v("r"), v("n")],
                                    ld("Y", vec![v("r"), v("n")]) + ld("acc", vec![i(0)]),
                                ),
                            ]),
                        ),
                    ),
                ),
            ),
        ),
    );
    let wp = |name: &str, dtype, len: usize| param(name, ParamKind::Weight, dtype, &[len]);
    func(
        vec![
            wp("row_ptr", DType::I32, w.row_ptr.len()),
            wp("rows", DType::I32, w.rows.len()),
            wp("col_ptr", DType::I32, w.col_ptr.len()),
            wp("cols", DType::I32, w.cols.len()),
            wp("val_ptr", DType::I32, w.val_ptr.len()),
            wp("vals", DType::F32, w.vals.len()),
            param("X", ParamKind::Input, DType::F32, &[w.k, n]),
            param("Y", ParamKind::Output, DType::F32, &[w.m, n]),
        ],
        body,
    )
}

#[test]
fn bcr_gather_scatter_matches_rust() {
    let w = small_bcr();
    let n = 3;
    let x = lcg(9, w.k * n);
    let fun = bcr_function(&w, n);
    let mut a = args(vec![
        ("row_ptr", i32s(&[w.row_ptr.len()], w.row_ptr.clone())),
        ("rows", i32s(&[w.rows.len()], w.rows.clone())),
        ("col_ptr", i32s(&[w.col_ptr.len()], w.col_ptr.clone())),
        ("cols", i32s(&[w.cols.len()], w.cols.clone())),
        ("val_ptr", i32s(&[w.val_ptr.len()], w.val_ptr.clone())),
        ("vals", f32s(&[w.vals.len()], w.vals.clone())),
        ("X", f32s(&[w.k, n], x.clone())),
        ("Y", Tensor::zeros(DType::F32, vec![w.m, n])),
    ]);
    run(&fun, &mut a).unwrap();
    let y = a["Y"].as_f32().unwrap();

    // The same algorithm in plain Rust: bit-identical.
    let mut want = vec![0.0f32; w.m * n];
    let mut dense = vec![0.0f32; w.m * w.k];
    for b in 0..w.row_ptr.len() - 1 {
        let rows = &w.rows[w.row_ptr[b] as usize..w.row_ptr[b + 1] as usize];
        let cols = &w.cols[w.col_ptr[b] as usize..w.col_ptr[b + 1] as usize];
        for (ri, &r) in rows.iter().enumerate() {
            for col in 0..n {
                let mut acc = 0.0f32;
                for (j, &c) in cols.iter().enumerate() {
                    let val = w.vals[w.val_ptr[b] as usize + ri * cols.len() + j];
                    acc += val * x[c as usize * n + col];
                    dense[r as usize * w.k + c as usize] = val;
                }
                want[r as usize * n + col] += acc;
            }
        }
    }
    assert_eq!(y, want.as_slice());
    // And the dense product of the reconstructed weight, up to rounding.
    let dense_y = matmul_reference(&dense, &x, w.m, n, w.k);
    for (got, want) in y.iter().zip(&dense_y) {
        assert!((got - want).abs() <= 1e-5, "{got} vs {want}");
    }
    // Rows no block keeps stay zero.
    for r in [2, 4, 5] {
        assert!(y[r * n..(r + 1) * n].iter().all(|&v| v == 0.0), "row {r}");
    }
    assert!(y[..n].iter().any(|&v| v != 0.0));
}

// ---------------------------------------------------------------------------------
// Errors.

#[test]
fn error_verification_failure_is_wrapped() {
    let fun = func(
        vec![param("O", ParamKind::Output, DType::I32, &[1])],
        Stmt::store("O", vec![i(0)], v("k")),
    );
    let mut a = args(vec![("O", Tensor::zeros(DType::I32, vec![1]))]);
    let err = run(&fun, &mut a).unwrap_err();
    assert!(
        matches!(err, InterpError::Verify(VerifyError::UnboundVar { ref name, .. }) if name == "k"),
        "{err}"
    );
    assert!(err.to_string().contains("failed verification"), "{err}");
    assert!(err.to_string().contains("unbound variable `k`"), "{err}");
}

#[test]
fn error_arguments() {
    let fun = matmul_function(2, 2, 2);
    let good = || {
        args(vec![
            ("A", Tensor::zeros(DType::F32, vec![2, 2])),
            ("B", Tensor::zeros(DType::F32, vec![2, 2])),
            ("C", Tensor::zeros(DType::F32, vec![2, 2])),
        ])
    };
    run(&fun, &mut good()).unwrap();

    let mut a = good();
    a.remove("B");
    let err = run(&fun, &mut a).unwrap_err();
    assert!(
        matches!(err, InterpError::MissingArg { ref param, .. } if param == "B"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("missing argument for parameter `B`"),
        "{err}"
    );

    let mut a = good();
    a.insert("Z".into(), Tensor::zeros(DType::F32, vec![1]));
    let err = run(&fun, &mut a).unwrap_err();
    assert!(
        matches!(err, InterpError::UnexpectedArg { ref name } if name == "Z"),
        "{err}"
    );
    assert!(err.to_string().contains("unexpected argument `Z`"), "{err}");

    let mut a = good();
    a.insert("A".into(), Tensor::zeros(DType::F32, vec![2, 3]));
    let err = run(&fun, &mut a).unwrap_err();
    assert!(
        matches!(err, InterpError::ArgMismatch { ref param, .. } if param == "A"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("expected a f32 tensor of shape [2, 2], got a f32 tensor of shape [2, 3]"),
        "{err}"
    );

    let mut a = good();
    a.insert("C".into(), Tensor::zeros(DType::I32, vec![2, 2]));
    let err = run(&fun, &mut a).unwrap_err();
    assert!(
        matches!(
            err,
            InterpError::ArgMismatch {
                actual_dtype: DType::I32,
                expected_dtype: DType::F32,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("got a i32 tensor"), "{err}");
}

#[test]
fn error_out_of_bounds_names_buffer_index_and_shape() {
    let fun = func(
        vec![
            param("X", ParamKind::Input, DType::F32, &[4, 3]),
            param("O", ParamKind::Output, DType::F32, &[2]),
        ],
        Stmt::serial(
            "i",
            i(5),
            Stmt::store("O", vec![i(0)], ld("X", vec![v("i"), i(2)])),
        ),
    );
    let mut a = args(vec![
        ("X", Tensor::zeros(DType::F32, vec![4, 3])),
        ("O", Tensor::zeros(DType::F32, vec![2])),
    ]);
    let err = run(&fun, &mut a).unwrap_err();
    assert_eq!(
        err,
        InterpError::OutOfBounds {
            access: "load from",
            buffer: "X".into(),
            index: vec![4, 2],
            shape: vec![4, 3],
        }
    );
    assert_eq!(
        err.to_string(),
        "load from `X`: index [4, 2] is out of bounds for shape [4, 3]"
    );

    // A store, with a negative index in the last dimension (the flat offset would be
    // in range: each dimension is checked on its own).
    let fun = func(
        vec![param("O", ParamKind::Output, DType::F32, &[2, 3])],
        Stmt::store("O", vec![i(1), i(-1)], f(1.0)),
    );
    let mut a = args(vec![("O", Tensor::zeros(DType::F32, vec![2, 3]))]);
    let err = run(&fun, &mut a).unwrap_err();
    assert!(
        matches!(err, InterpError::OutOfBounds { access: "store to", ref index, .. } if index == &[1, -1]),
        "{err}"
    );
    assert!(
        err.to_string().contains("store to `O`: index [1, -1]"),
        "{err}"
    );
    // On error, outputs are left as they were.
    assert_eq!(a["O"].as_f32().unwrap(), &[0.0; 6]);

    // Through an index buffer holding a bad index; into an alloc.
    let fun = func(
        vec![
            param("idx", ParamKind::Weight, DType::I32, &[2]),
            param("O", ParamKind::Output, DType::F32, &[1]),
        ],
        alloc(
            "T",
            DType::F32,
            &[3],
            Stmt::serial(
                "k",
                i(2),
                Stmt::store("O", vec![i(0)], ld("T", vec![ld("idx", vec![v("k")])])),
            ),
        ),
    );
    let mut a = args(vec![
        ("idx", i32s(&[2], vec![2, 3])),
        ("O", Tensor::zeros(DType::F32, vec![1])),
    ]);
    let err = run(&fun, &mut a).unwrap_err();
    assert_eq!(
        err.to_string(),
        "load from `T`: index [3] is out of bounds for shape [3]"
    );
}

#[test]
fn error_outputs_unchanged_when_a_run_fails_midway() {
    // O[i] = 1 for i in 0..3, then 1 / 0.
    let fun = func(
        vec![param("O", ParamKind::Output, DType::I32, &[3])],
        seq(vec![
            Stmt::serial("i", i(3), Stmt::store("O", vec![v("i")], i(1))),
            Stmt::store("O", vec![i(0)], i(1).div(i(0))),
        ]),
    );
    let mut a = args(vec![("O", i32s(&[3], vec![5, 6, 7]))]);
    assert!(run(&fun, &mut a).is_err());
    assert_eq!(a["O"].as_i32().unwrap(), &[5, 6, 7]);
}

fn unverified() -> Interpreter {
    Interpreter {
        skip_verify: true,
        ..Interpreter::default()
    }
}

#[test]
fn error_static_kinds_without_verification() {
    let o = || args(vec![("O", Tensor::zeros(DType::I32, vec![1]))]);
    let out = || vec![param("O", ParamKind::Output, DType::I32, &[1])];

    let fun = func(out(), Stmt::store("O", vec![i(0)], v("k")));
    let err = unverified().run(&fun, &mut o()).unwrap_err();
    assert_eq!(err, InterpError::UnboundVar { name: "k".into() });
    assert!(err.to_string().contains("unbound variable `k`"), "{err}");

    let fun = func(out(), Stmt::store("O", vec![i(0)], ld("Q", vec![i(0)])));
    let err = unverified().run(&fun, &mut o()).unwrap_err();
    assert_eq!(err, InterpError::MissingBuffer { name: "Q".into() });
    assert!(err.to_string().contains("unknown buffer `Q`"), "{err}");

    let fun = func(out(), Stmt::store("O", vec![i(0)], i(1) + f(1.0)));
    let err = unverified().run(&fun, &mut o()).unwrap_err();
    assert!(matches!(err, InterpError::Type { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("operator `+` does not apply to int and f32"),
        "{err}"
    );

    let fun = func(out(), Stmt::store("O", vec![i(0)], f(1.0)));
    let err = unverified().run(&fun, &mut o()).unwrap_err();
    assert!(
        err.to_string().contains("stored value must be int"),
        "{err}"
    );

    let fun = func(out(), Stmt::store("O", vec![i(0), i(0)], i(1)));
    let err = unverified().run(&fun, &mut o()).unwrap_err();
    assert!(matches!(err, InterpError::Malformed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("rank 1 but is accessed with 2 indices"),
        "{err}"
    );

    let mut params = out();
    params.push(param("W", ParamKind::Weight, DType::I32, &[1]));
    let fun = func(params, Stmt::store("W", vec![i(0)], i(1)));
    let mut a = o();
    a.insert("W".into(), Tensor::zeros(DType::I32, vec![1]));
    let err = unverified().run(&fun, &mut a).unwrap_err();
    assert!(
        err.to_string()
            .contains("store to read-only weight parameter `W`"),
        "{err}"
    );
}

#[test]
fn error_step_limit_stops_a_runaway_loop() {
    let fun = func(
        vec![param("O", ParamKind::Output, DType::I32, &[1])],
        Stmt::serial(
            "i",
            i(i64::MAX),
            Stmt::store("O", vec![i(0)], ld("O", vec![i(0)]) + i(1)),
        ),
    );
    let mut a = args(vec![("O", Tensor::zeros(DType::I32, vec![1]))]);
    let err = run_with_limit(&fun, &mut a, 1000).unwrap_err();
    assert_eq!(err, InterpError::StepLimit { limit: 1000 });
    assert!(
        err.to_string().contains("step limit of 1000 exceeded"),
        "{err}"
    );
    // Exactly at the limit is fine: 1 (for) + 999 stores.
    let fun = func(
        vec![param("O", ParamKind::Output, DType::I32, &[1])],
        Stmt::serial("i", i(999), Stmt::store("O", vec![i(0)], v("i"))),
    );
    let mut a = args(vec![("O", Tensor::zeros(DType::I32, vec![1]))]);
    run_with_limit(&fun, &mut a, 1000).unwrap();
    assert_eq!(a["O"].as_i32().unwrap(), &[998]);
    let err = run_with_limit(&fun, &mut a, 999).unwrap_err();
    assert!(
        matches!(err, InterpError::StepLimit { limit: 999 }),
        "{err}"
    );
    // Empty loop bodies count too.
    let fun = func(vec![], Stmt::serial("i", i(i64::MAX), Stmt::Seq(vec![])));
    let err = Interpreter::new()
        .with_max_steps(10_000)
        .run(&fun, &mut BTreeMap::new())
        .unwrap_err();
    assert!(matches!(err, InterpError::StepLimit { .. }), "{err}");
}

#[test]
fn error_alloc_limit() {
    let fun = func(
        vec![],
        alloc("Huge", DType::F32, &[1 << 20, 1 << 20], Stmt::Seq(vec![])),
    );
    let err = Interpreter::new()
        .run(&fun, &mut BTreeMap::new())
        .unwrap_err();
    assert!(
        matches!(err, InterpError::AllocLimit { ref name, elems, .. } if name == "Huge" && elems == 1 << 40),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("allocation `Huge` of 1099511627776 elements exceeds"),
        "{err}"
    );
    // An allocation that overflows usize is rejected by the verifier.
    let fun = func(
        vec![],
        alloc("Huge", DType::F32, &[usize::MAX, 2], Stmt::Seq(vec![])),
    );
    let err = Interpreter::new()
        .run(&fun, &mut BTreeMap::new())
        .unwrap_err();
    assert!(
        matches!(err, InterpError::Verify(VerifyError::AllocTooLarge { .. })),
        "{err}"
    );
    // A small limit.
    let fun = func(vec![], alloc("T", DType::I32, &[10], Stmt::Seq(vec![])));
    let interp = Interpreter {
        max_alloc_elems: 9,
        ..Interpreter::default()
    };
    let err = interp.run(&fun, &mut BTreeMap::new()).unwrap_err();
    assert!(
        matches!(err, InterpError::AllocLimit { limit: 9, .. }),
        "{err}"
    );
}

#[test]
fn error_nesting_too_deep() {
    let chain = |n: usize| (0..n).fold(f(0.0), |e, _| e + f(1.0));
    // store (1 level) > 510 additions > leaf: exactly MAX_NESTING = 512 levels.
    assert_eq!(tir::verify::MAX_NESTING, 512);
    assert_eq!(
        run_f32_out(&[1], Stmt::store("O", vec![i(0)], chain(510))).unwrap(),
        vec![510.0]
    );
    let err = run_f32_out(&[1], Stmt::store("O", vec![i(0)], chain(511))).unwrap_err();
    assert!(
        matches!(
            err,
            InterpError::Verify(VerifyError::TooDeep { limit: 512, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nesting deeper than 512"), "{err}");
    // The interpreter's own check, and far deeper nesting (statements this time).
    let deep = (0..5000).fold(Stmt::Seq(vec![]), |s, _| Stmt::let_("x", i(1), s));
    let fun = func(vec![], deep);
    let err = unverified().run(&fun, &mut BTreeMap::new()).unwrap_err();
    assert!(matches!(err, InterpError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("nesting deeper than 512"), "{err}");
}

#[test]
fn error_cast_and_i32_kinds_have_messages() {
    let err = eval_int(Expr::cast(ScalarType::Int, f(f32::NAN))).unwrap_err();
    assert!(
        matches!(err, InterpError::CastOutOfRange { value } if value.is_nan()),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "cannot cast NaN to int: NaN or out of range"
    );
    let err = eval_int(i(1 << 40)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "store to `O`: value 1099511627776 does not fit in i32"
    );
}

// ---------------------------------------------------------------------------------
// Speed.

/// Measures interpreter throughput on a dense matmul (one multiply-add per innermost
/// iteration). Run with
/// `cargo test -p tir --release --test interp -- --ignored --nocapture interp_speed`.
#[test]
#[ignore]
fn interp_speed() {
    let (m, n, k) = (256, 256, 256);
    let fun = matmul_function(m, n, k);
    let (av, bv) = (lcg(1, m * k), lcg(2, k * n));
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let mut a = args(vec![
            ("A", f32s(&[m, k], av.clone())),
            ("B", f32s(&[k, n], bv.clone())),
            ("C", Tensor::zeros(DType::F32, vec![m, n])),
        ]);
        let t = std::time::Instant::now();
        run(&fun, &mut a).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
    }
    let iters = (m * n * k) as f64;
    println!(
        "interp_speed: {} multiply-add iterations in {:.3} s = {:.1} M iterations/s",
        m * n * k,
        best,
        iters / best / 1e6
    );
}

/// `u8` buffers: loads give integers, stores keep the value modulo 256 (as C's
/// `uint8_t`), `u8` outputs come back as bytes, an `i32` tensor for a `u8` parameter
/// is refused, and the type survives the text format.
#[test]
fn u8_buffers_load_store_and_bind() {
    let fun = func(
        vec![
            param("S", ParamKind::Weight, DType::U8, &[4]),
            param("X", ParamKind::Input, DType::F32, &[4]),
            param("Y", ParamKind::Output, DType::F32, &[4]),
            param("B", ParamKind::Output, DType::U8, &[4]),
        ],
        Stmt::serial(
            "k",
            i(4),
            seq(vec![
                // Y[k] = X[S[k]] + S[k]
                Stmt::store(
                    "Y",
                    vec![v("k")],
                    bin(
                        BinOp::Add,
                        ld("X", vec![ld("S", vec![v("k")])]),
                        Expr::cast(ScalarType::F32, ld("S", vec![v("k")])),
                    ),
                ),
                // B[k] = S[k] * 100 - 150: wraps modulo 256.
                Stmt::store(
                    "B",
                    vec![v("k")],
                    bin(
                        BinOp::Sub,
                        bin(BinOp::Mul, ld("S", vec![v("k")]), i(100)),
                        i(150),
                    ),
                ),
            ]),
        ),
    );
    let mut a = args(vec![
        ("S", Tensor::u8(vec![4], vec![3, 0, 2, 1]).unwrap()),
        (
            "X",
            Tensor::f32(vec![4], vec![10.0, 20.0, 30.0, 40.0]).unwrap(),
        ),
        ("Y", Tensor::zeros(DType::F32, vec![4])),
        ("B", Tensor::zeros(DType::U8, vec![4])),
    ]);
    run(&fun, &mut a).unwrap();
    assert_eq!(a["Y"].as_f32().unwrap(), &[43.0, 10.0, 32.0, 21.0]);
    // 150, -150, 50, -50 modulo 256.
    assert_eq!(a["B"].as_u8().unwrap(), &[150, 106, 50, 206]);
    assert_eq!(a["S"].to_le_bytes(), vec![3, 0, 2, 1]);
    assert_eq!(DType::U8.size_bytes(), 1);
    // Bytes back to tensors, every element type; a length that is not the shape's is
    // refused.
    for t in [
        &a["S"],
        &a["Y"],
        &Tensor::i32(vec![2], vec![-7, 1 << 20]).unwrap(),
    ] {
        let back = Tensor::from_le_bytes(t.dtype(), t.shape().to_vec(), &t.to_le_bytes());
        assert_eq!(back.as_ref(), Ok(t));
        // The raw address handed to generated code is the first element's, and the
        // bytes there are the little-endian ones above (this is a little-endian host).
        let n = t.len() * t.dtype().size_bytes();
        // SAFETY: the tensor holds `len()` elements of `size_bytes()` each.
        let raw = unsafe { std::slice::from_raw_parts(t.as_raw_ptr().cast::<u8>(), n) };
        assert_eq!(raw, t.to_le_bytes().as_slice());
    }
    assert!(Tensor::from_le_bytes(DType::F32, vec![2], &[0; 7]).is_err());
    assert!(Tensor::from_le_bytes(DType::U8, vec![2], &[0; 3]).is_err());

    a.insert("S".into(), Tensor::zeros(DType::I32, vec![4]));
    let err = run(&fun, &mut a).unwrap_err();
    assert!(err.to_string().contains("expected a u8 tensor"), "{err}");

    let text = tir::print_function(&fun);
    assert!(text.contains("S: weight u8[4]"), "{text}");
    assert_eq!(tir::parse_function(&text).unwrap(), fun);
}

/// A prefetch reads and writes nothing, but its index is checked like a load's: in
/// bounds it leaves every output as without it, out of bounds it is an error naming
/// the access; it verifies, prints and parses back.
#[test]
fn prefetch_changes_nothing_and_is_bounds_checked() {
    let text = |at: &str| {
        format!(
            "fn f(X: in f32[4], Y: out f32[4]) {{\n  for (i, 0, 4) {{\n    prefetch X[{at}];\n    Y[i] = X[i] * 2.0;\n  }}\n}}\n"
        )
    };
    let fun = tir::parse_function(&text("min(i + 2, 3)")).unwrap();
    tir::verify(&fun).unwrap();
    assert_eq!(
        tir::parse_function(&tir::print_function(&fun)).unwrap(),
        fun
    );
    let mut a = args(vec![
        ("X", Tensor::f32(vec![4], vec![1.0, 2.0, 3.0, 4.0]).unwrap()),
        ("Y", Tensor::zeros(DType::F32, vec![4])),
    ]);
    run(&fun, &mut a).unwrap();
    assert_eq!(a["Y"].as_f32().unwrap(), &[2.0, 4.0, 6.0, 8.0]);
    let past = tir::parse_function(&text("i + 2")).unwrap();
    let err = run(&past, &mut a).unwrap_err().to_string();
    assert!(err.contains("prefetch of") && err.contains('X'), "{err}");
    let unknown = tir::parse_function(&text("i").replace("prefetch X", "prefetch Z")).unwrap();
    assert!(tir::verify(&unknown).is_err());
}
