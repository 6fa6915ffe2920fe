//! Tests of the semantic verifier.

use std::ops::Rem;
use tir::verify::{binary_result, cast_allowed, type_of, BufferInfo, TypeEnv};
use tir::{
    verify, BinOp, DType, Expr, ForKind, Function, Intrinsic, MemScope, Param, ParamKind,
    ScalarType, Stmt, UnOp, VerifyError,
};

fn param(name: &str, kind: ParamKind, dtype: DType, shape: &[usize]) -> Param {
    Param::new(name, kind, dtype, shape.to_vec())
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

fn b(x: bool) -> Expr {
    Expr::Bool(x)
}

fn ld(buffer: &str, idx: Vec<Expr>) -> Expr {
    Expr::load(buffer, idx)
}

fn alloc(name: &str, dtype: DType, shape: &[usize], body: Stmt) -> Stmt {
    Stmt::Allocate {
        name: name.into(),
        dtype,
        shape: shape.to_vec(),
        scope: MemScope::Shared,
        body: Box::new(body),
    }
}

/// Parameters: X (in, f32 [4, 3]), W (weight, f32 [3]), idx (weight, i32 [5]),
/// Y (out, f32 [4]), N (out, i32 [2]).
fn func(body: Stmt) -> Function {
    Function {
        name: "t".into(),
        params: vec![
            param("X", ParamKind::Input, DType::F32, &[4, 3]),
            param("W", ParamKind::Weight, DType::F32, &[3]),
            param("idx", ParamKind::Weight, DType::I32, &[5]),
            param("Y", ParamKind::Output, DType::F32, &[4]),
            param("N", ParamKind::Output, DType::I32, &[2]),
        ],
        body,
    }
}

/// Verifies `Y[0] = e`.
fn check_f32(e: Expr) -> Result<(), VerifyError> {
    verify(&func(Stmt::store("Y", vec![i(0)], e)))
}

/// Verifies `N[0] = e`.
fn check_int(e: Expr) -> Result<(), VerifyError> {
    verify(&func(Stmt::store("N", vec![i(0)], e)))
}

/// Asserts a type error whose message contains `text`.
fn assert_type_err(r: Result<(), VerifyError>, text: &str) {
    match r {
        Err(e @ VerifyError::Type { .. }) => {
            assert!(e.to_string().contains(text), "`{e}` lacks `{text}`")
        }
        other => panic!("expected a type error containing `{text}`, got {other:?}"),
    }
}

fn y_row_sum() -> Stmt {
    // for r in 0..4: for c in 0..3: Y[r] = Y[r] + X[r, c] * W[c]
    Stmt::serial(
        "r",
        i(4),
        Stmt::for_(
            "c",
            i(0),
            i(3),
            ForKind::Unrolled,
            Stmt::store(
                "Y",
                vec![v("r")],
                ld("Y", vec![v("r")]) + ld("X", vec![v("r"), v("c")]) * ld("W", vec![v("c")]),
            ),
        ),
    )
}

#[test]
fn well_formed_functions_pass() {
    verify(&func(y_row_sum())).unwrap();
    verify(&func(Stmt::Seq(vec![]))).unwrap();
    // Indirect loads, data-dependent extents, lets, ifs, selects, intrinsics, casts,
    // allocations of every scope.
    let body = Stmt::serial(
        "k",
        ld("idx", vec![i(0)]),
        Stmt::let_(
            "col",
            ld("idx", vec![v("k") + i(1)]),
            alloc(
                "T",
                DType::F32,
                &[2, 2],
                Stmt::Seq(vec![
                    Stmt::store(
                        "T",
                        vec![i(0), i(1)],
                        Expr::call(Intrinsic::Tanh, ld("W", vec![v("col")])),
                    ),
                    Stmt::If {
                        cond: v("col")
                            .lt(i(3))
                            .and(Expr::Unary(UnOp::Not, Box::new(b(false)))),
                        then: Box::new(Stmt::store(
                            "Y",
                            vec![v("k")],
                            Expr::select(
                                v("k").eq_(i(0)),
                                ld("T", vec![i(0), i(1)]),
                                Expr::cast(ScalarType::F32, v("col")),
                            ),
                        )),
                        otherwise: Some(Box::new(Stmt::store(
                            "N",
                            vec![i(1)],
                            Expr::cast(ScalarType::Int, ld("X", vec![i(0), i(0)]))
                                + Expr::cast(ScalarType::Int, b(true)),
                        ))),
                    },
                ]),
            ),
        ),
    );
    verify(&func(body)).unwrap();
}

#[test]
fn duplicate_parameters() {
    let mut fun = func(Stmt::Seq(vec![]));
    fun.params
        .push(param("W", ParamKind::Output, DType::F32, &[1]));
    let err = verify(&fun).unwrap_err();
    assert_eq!(err, VerifyError::DuplicateParam { name: "W".into() });
    assert_eq!(err.to_string(), "duplicate parameter `W`");
}

#[test]
fn unbound_variables_and_paths() {
    let body = Stmt::serial(
        "b",
        i(4),
        Stmt::store("Y", vec![v("b")], ld("X", vec![v("b"), v("k")])),
    );
    let err = verify(&func(body)).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnboundVar { ref name, .. } if name == "k"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "unbound variable `k` (in function `t` > for loop `b` > store to `Y` > value > load from `X` > index 1)"
    );

    // A loop variable is not in scope in its own bounds.
    let err = verify(&func(Stmt::serial("i", v("i"), Stmt::Seq(vec![])))).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnboundVar {
            name: "i".into(),
            at: "function `t` > for loop `i` > extent".into()
        }
    );
    // Nor a let variable in its own value.
    let err = verify(&func(Stmt::let_("x", v("x") + i(1), Stmt::Seq(vec![])))).unwrap_err();
    assert!(
        err.to_string()
            .contains("unbound variable `x` (in function `t` > let `x` > value)"),
        "{err}"
    );
    // Nor anything after its scope ends.
    let body = Stmt::Seq(vec![
        Stmt::serial("i", i(2), Stmt::Seq(vec![])),
        Stmt::store("N", vec![v("i")], i(0)),
    ]);
    let err = verify(&func(body)).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnboundVar { ref name, .. } if name == "i"),
        "{err}"
    );
    // In an if's branches.
    let body = Stmt::If {
        cond: b(true),
        then: Box::new(Stmt::Seq(vec![])),
        otherwise: Some(Box::new(Stmt::store("N", vec![i(0)], v("q")))),
    };
    let err = verify(&func(body)).unwrap_err();
    assert!(
        err.to_string()
            .contains("(in function `t` > if > else > store to `N` > value)"),
        "{err}"
    );
}

#[test]
fn shadowing_is_allowed() {
    // for i { for i { Y[i] = 0 } }, and a let of another type shadowing a loop variable.
    let body = Stmt::serial(
        "i",
        i(2),
        Stmt::Seq(vec![
            Stmt::serial("i", i(4), Stmt::store("Y", vec![v("i")], f(0.0))),
            Stmt::let_("i", f(1.5), Stmt::store("Y", vec![i(0)], v("i"))),
            Stmt::store("N", vec![v("i")], v("i")),
        ]),
    );
    verify(&func(body)).unwrap();
    // But the shadowing binding's type is the one that counts.
    let body = Stmt::serial(
        "i",
        i(2),
        Stmt::let_("i", f(1.5), Stmt::store("N", vec![v("i")], i(0))),
    );
    assert_type_err(verify(&func(body)), "an index must be int, got f32");
}

#[test]
fn unknown_buffers() {
    let err = check_f32(ld("Z", vec![i(0)])).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnknownBuffer {
            name: "Z".into(),
            at: "function `t` > store to `Y` > value > load from `Z`".into()
        }
    );
    let err = verify(&func(Stmt::store("Z", vec![], f(0.0)))).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnknownBuffer { ref name, .. } if name == "Z"),
        "{err}"
    );
    assert!(err.to_string().contains("unknown buffer `Z`"), "{err}");
    // An allocation is only visible in its body.
    let body = Stmt::Seq(vec![
        alloc("T", DType::F32, &[1], Stmt::store("T", vec![i(0)], f(1.0))),
        Stmt::store("Y", vec![i(0)], ld("T", vec![i(0)])),
    ]);
    let err = verify(&func(body)).unwrap_err();
    assert!(
        matches!(err, VerifyError::UnknownBuffer { ref name, .. } if name == "T"),
        "{err}"
    );
}

#[test]
fn rank_mismatches() {
    let err = check_f32(ld("X", vec![i(0)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "buffer `X` has rank 2 but is accessed with 1 indices (in function `t` > store to `Y` > value > load from `X`)"
    );
    let err = verify(&func(Stmt::store("Y", vec![i(0), i(0)], f(0.0)))).unwrap_err();
    assert!(
        matches!(err, VerifyError::RankMismatch { ref buffer, expected: 1, actual: 2, .. } if buffer == "Y"),
        "{err}"
    );
}

#[test]
fn arithmetic_and_comparison_types() {
    check_f32(f(1.0) + f(2.0)).unwrap();
    check_int(i(1) * i(2) - i(3).rem(i(2))).unwrap();
    check_int(i(1).min(i(2)).max(ld("idx", vec![i(0)]))).unwrap();
    assert_type_err(
        check_f32(f(1.0) + i(2)),
        "operator `+` does not apply to f32 and int",
    );
    assert_type_err(
        check_f32(f(1.0).rem(f(2.0))),
        "operator `%` does not apply to f32 and f32",
    );
    assert_type_err(
        check_int(Expr::cast(ScalarType::Int, b(true).eq_(b(true)))),
        "operator `==` does not apply to bool and bool",
    );
    assert_type_err(
        check_int(Expr::binary(BinOp::Add, b(true), b(false))),
        "operator `+` does not apply to bool and bool",
    );
    assert_type_err(
        check_int(Expr::binary(BinOp::And, i(1), i(0))),
        "operator `&&` does not apply to int and int",
    );
    assert_type_err(
        check_int(Expr::Unary(UnOp::Not, Box::new(i(1)))),
        "the operand of `!` must be bool, got int",
    );
    // A comparison is Bool, not Int.
    assert_type_err(
        check_int(i(1).lt(i(2))),
        "stored value must be int (buffer element type i32), got bool",
    );
    // A load from an i32 buffer is Int.
    assert_type_err(
        check_f32(ld("idx", vec![i(0)])),
        "stored value must be f32 (buffer element type f32), got int",
    );
}

#[test]
fn binary_rules_table() {
    use ScalarType::*;
    for op in BinOp::ALL {
        for a in [Int, F32, Bool] {
            for c in [Int, F32, Bool] {
                let want = if a != c {
                    None
                } else if op.is_logic() {
                    (a == Bool).then_some(Bool)
                } else if op == BinOp::Mod {
                    (a == Int).then_some(Int)
                } else if op.is_comparison() {
                    (a != Bool).then_some(Bool)
                } else {
                    (a != Bool).then_some(a)
                };
                assert_eq!(binary_result(op, a, c), want, "{op:?} {a} {c}");
            }
        }
    }
}

#[test]
fn select_types() {
    check_f32(Expr::select(b(true), f(1.0), f(2.0))).unwrap();
    assert_type_err(
        check_f32(Expr::select(i(1), f(1.0), f(2.0))),
        "the condition of select must be bool, got int",
    );
    assert_type_err(
        check_f32(Expr::select(b(true), f(1.0), i(2))),
        "select branches have types f32 and int",
    );
    let err = check_f32(Expr::select(b(true), f(1.0), i(2))).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("(in function `t` > store to `Y` > value > select)"),
        "{err}"
    );
}

#[test]
fn cast_rules() {
    use ScalarType::*;
    let allowed = [
        (Int, F32),
        (F32, Int),
        (Bool, Int),
        (Int, Int),
        (F32, F32),
        (Bool, Bool),
    ];
    for from in [Int, F32, Bool] {
        for to in [Int, F32, Bool] {
            assert_eq!(
                cast_allowed(from, to),
                allowed.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
    check_int(Expr::cast(Int, f(1.5))).unwrap();
    check_int(Expr::cast(Int, b(true))).unwrap();
    check_f32(Expr::cast(F32, i(1))).unwrap();
    assert_type_err(
        check_f32(Expr::cast(F32, b(true))),
        "cannot cast bool to f32",
    );
    assert_type_err(
        check_int(Expr::cast(Int, Expr::cast(Bool, i(1)))),
        "cannot cast int to bool",
    );
    assert_type_err(
        check_int(Expr::cast(Int, Expr::cast(Bool, f(1.0)))),
        "cannot cast f32 to bool",
    );
}

#[test]
fn intrinsic_types_and_arity() {
    for intr in Intrinsic::ALL {
        check_f32(Expr::call(intr, f(0.5))).unwrap();
        assert_type_err(
            check_f32(Expr::call(intr, i(1))),
            "the argument must be f32, got int",
        );
    }
    let err = check_f32(Expr::Call(Intrinsic::Exp, vec![])).unwrap_err();
    assert_eq!(
        err,
        VerifyError::BadArity {
            intrinsic: "exp",
            actual: 0,
            at: "function `t` > store to `Y` > value > call to `exp`".into()
        }
    );
    let err = check_f32(Expr::Call(Intrinsic::Sqrt, vec![f(1.0), f(2.0)])).unwrap_err();
    assert!(
        err.to_string()
            .contains("intrinsic `sqrt` takes 1 argument, got 2"),
        "{err}"
    );
}

#[test]
fn index_bound_and_condition_types() {
    assert_type_err(
        check_f32(ld("W", vec![f(0.0)])),
        "an index must be int, got f32",
    );
    assert_type_err(
        verify(&func(Stmt::store("Y", vec![b(true)], f(0.0)))),
        "an index must be int, got bool",
    );
    let err = verify(&func(Stmt::for_(
        "i",
        f(0.0),
        i(2),
        ForKind::Parallel,
        Stmt::Seq(vec![]),
    )))
    .unwrap_err();
    assert!(matches!(err, VerifyError::Type { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("a loop bound must be int, got f32 (in function `t` > for loop `i` > min)"),
        "{err}"
    );
    assert_type_err(
        verify(&func(Stmt::serial("i", b(true), Stmt::Seq(vec![])))),
        "a loop extent must be int, got bool",
    );
    assert_type_err(
        verify(&func(Stmt::if_(i(1), Stmt::Seq(vec![])))),
        "an if condition must be bool, got int",
    );
    // Store value vs element type.
    assert_type_err(
        verify(&func(Stmt::store("N", vec![i(0)], f(1.0)))),
        "stored value must be int",
    );
    assert_type_err(
        verify(&func(Stmt::store("Y", vec![i(0)], i(1)))),
        "stored value must be f32",
    );
}

#[test]
fn read_only_stores() {
    let err = verify(&func(Stmt::store("X", vec![i(0), i(0)], f(1.0)))).unwrap_err();
    assert_eq!(
        err,
        VerifyError::ReadOnlyStore {
            buffer: "X".into(),
            kind: "in",
            at: "function `t` > store to `X`".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "store to read-only in parameter `X` (in function `t` > store to `X`)"
    );
    let err = verify(&func(Stmt::store("idx", vec![i(0)], i(1)))).unwrap_err();
    assert!(
        matches!(err, VerifyError::ReadOnlyStore { kind: "weight", .. }),
        "{err}"
    );
    // Outputs and allocations are writable.
    verify(&func(Stmt::store("N", vec![i(0)], i(1)))).unwrap();
    verify(&func(alloc(
        "T",
        DType::I32,
        &[1],
        Stmt::store("T", vec![i(0)], i(1)),
    )))
    .unwrap();
}

#[test]
fn allocation_names_and_sizes() {
    let err = verify(&func(alloc("W", DType::F32, &[1], Stmt::Seq(vec![])))).unwrap_err();
    assert!(
        matches!(err, VerifyError::DuplicateBuffer { ref name, shadowed: "a parameter", .. } if name == "W"),
        "{err}"
    );
    let nested = alloc(
        "T",
        DType::F32,
        &[1],
        alloc("T", DType::I32, &[2], Stmt::Seq(vec![])),
    );
    let err = verify(&func(nested)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "allocation `T` shadows an enclosing allocation of the same name (in function `t` > alloc `T` > alloc `T`)"
    );
    // Sibling allocations may share a name.
    let siblings = Stmt::Seq(vec![
        alloc("T", DType::F32, &[1], Stmt::store("T", vec![i(0)], f(1.0))),
        alloc(
            "T",
            DType::I32,
            &[2, 2],
            Stmt::store("T", vec![i(0), i(1)], i(1)),
        ),
    ]);
    verify(&func(siblings)).unwrap();
    let err = verify(&func(alloc(
        "T",
        DType::F32,
        &[usize::MAX, 3],
        Stmt::Seq(vec![]),
    )))
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::AllocTooLarge { ref name, .. } if name == "T"),
        "{err}"
    );
    assert!(err.to_string().contains("is too large"), "{err}");
    // Empty allocations are fine.
    verify(&func(alloc("T", DType::F32, &[0, 7], Stmt::Seq(vec![])))).unwrap();
}

#[test]
fn type_of_in_an_environment() {
    let fun = func(Stmt::Seq(vec![]));
    let mut env = TypeEnv::for_function(&fun);
    assert_eq!(type_of(&ld("idx", vec![i(1)]), &env), Ok(ScalarType::Int));
    assert_eq!(
        type_of(&ld("X", vec![i(1), i(2)]), &env),
        Ok(ScalarType::F32)
    );
    assert_eq!(type_of(&i(1).lt(i(2)), &env), Ok(ScalarType::Bool));
    let err = type_of(&v("n"), &env).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnboundVar {
            name: "n".into(),
            at: "expression".into()
        }
    );
    env.push_var("n", ScalarType::Int);
    env.push_var("x", ScalarType::F32);
    assert_eq!(type_of(&(v("n") * i(2)), &env), Ok(ScalarType::Int));
    env.push_var("n", ScalarType::F32);
    assert_eq!(env.var("n"), Some(ScalarType::F32));
    assert_eq!(type_of(&(v("n") * v("x")), &env), Ok(ScalarType::F32));
    env.pop_var();
    assert_eq!(env.var("n"), Some(ScalarType::Int));
    let err = type_of(&ld("X", vec![v("x"), i(0)]), &env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "type error: an index must be int, got f32 (in expression > load from `X` > index 0)"
    );
    env.push_buffer(BufferInfo {
        name: "T".into(),
        dtype: DType::I32,
        rank: 0,
        param_kind: None,
    });
    assert!(env.buffer("T").unwrap().writable());
    assert!(!env.buffer("W").unwrap().writable());
    assert_eq!(type_of(&ld("T", vec![]), &env), Ok(ScalarType::Int));
    env.pop_buffer();
    assert!(env.buffer("T").is_none());
    assert!(matches!(
        type_of(&ld("T", vec![]), &TypeEnv::new()),
        Err(VerifyError::UnknownBuffer { .. })
    ));
}

#[test]
fn nesting_limit() {
    use tir::verify::MAX_NESTING;
    let chain = |n: usize| (0..n).fold(f(0.0), |e, _| e + f(1.0));
    // store > n additions > leaf.
    check_f32(chain(MAX_NESTING - 2)).unwrap();
    let err = check_f32(chain(MAX_NESTING - 1)).unwrap_err();
    assert!(
        matches!(err, VerifyError::TooDeep { limit: 512, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("nesting deeper than 512 expressions and statements (in function `t` > store to `Y` > value"), "{err}");
    // Statements count too; far too deep is rejected without exhausting the stack.
    let deep = (0..10_000).fold(Stmt::Seq(vec![]), |s, _| Stmt::let_("x", i(1), s));
    assert!(matches!(
        verify(&func(deep)),
        Err(VerifyError::TooDeep { .. })
    ));
}
