//! Integer division and remainder: C's `/` and `%` where the dividend is known
//! non-negative (loop variables from a non-negative start, BCR row/column indices,
//! one-byte loads, sums and products of those) and the divisor a positive literal, the
//! floor forms (`grim_floordiv`/`grim_floormod`) everywhere else; both computed like
//! the interpreter, negative dividends included.

mod native;

use codegen::harness::{measurement_source, Candidate};
use codegen::Target;
use std::collections::BTreeMap;
use tir::Tensor;

const TEXT: &str = "fn f(W_row_ptr: weight i32[2], W_cols: weight i32[6], Q: weight i32[6], \
S: weight u8[6], Y: out f32[6, 7]) {
  for (j, 0, 6) {
    let col = W_cols[j];
    let q = Q[j];
    let s = S[j];
    Y[j, 0] = f32(col / 9 + col % 3);
    Y[j, 1] = f32((s + j) / 4);
    Y[j, 2] = f32(q / 4 + q % 3);
    Y[j, 3] = f32((col - 5) / 3);
    Y[j, 4] = f32(col / (0 - 2));
  }
  for (i, 0 - 3, 6) {
    Y[i + 3, 5] = f32(i / 2);
    Y[i + 3, 6] = f32(i % 4);
  }
}
";

#[test]
fn plain_division_only_where_the_dividend_is_non_negative() {
    let f = tir::parse_function(TEXT).unwrap_or_else(|e| panic!("{e}"));
    let src = measurement_source(&[Candidate { func: &f }], &Target::Host).unwrap();
    // BCR column indices and one-byte loads: plain.
    assert!(src.contains("(v_col / 9LL)"), "{src}");
    assert!(src.contains("(v_col % 3LL)"), "{src}");
    assert!(src.contains("((v_s + v_j) / 4LL)"), "{src}");
    // Another i32 weight, a difference, a negative divisor, a loop from -3: floor forms.
    assert!(src.contains("grim_floordiv(v_q, 4LL)"), "{src}");
    assert!(src.contains("grim_floormod(v_q, 3LL)"), "{src}");
    assert!(src.contains("grim_floordiv((v_col - 5LL), 3LL)"), "{src}");
    assert!(src.contains("grim_floordiv(v_col, (0LL - 2LL))"), "{src}");
    assert!(src.contains("grim_floordiv(v_i, 2LL)"), "{src}");
    assert!(src.contains("grim_floormod(v_i, 4LL)"), "{src}");

    let mut args: BTreeMap<String, Tensor> = BTreeMap::new();
    args.insert(
        "W_row_ptr".into(),
        Tensor::i32(vec![2], vec![0, 6]).unwrap(),
    );
    args.insert(
        "W_cols".into(),
        Tensor::i32(vec![6], vec![0, 4, 8, 9, 17, 35]).unwrap(),
    );
    args.insert(
        "Q".into(),
        Tensor::i32(vec![6], vec![-9, -7, -1, 0, 5, 11]).unwrap(),
    );
    args.insert(
        "S".into(),
        Tensor::u8(vec![6], vec![0, 3, 7, 200, 255, 1]).unwrap(),
    );
    let (outputs, want) = native::run_and_interpret(&f, &src, &args);
    let got = outputs["Y"].as_f32().unwrap();
    let exp = want["Y"].as_f32().unwrap();
    assert_eq!(got, exp);
    // Spot checks of the floor semantics: -7 / 4 = -2, -7 % 3 = 2, -3 / 2 = -2.
    assert_eq!(exp[7 + 2], (-2 + 2) as f32);
    assert_eq!(exp[5], -2.0);
}
