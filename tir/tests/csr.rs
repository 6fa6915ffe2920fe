//! Tests of the CSR baseline: round trips, spmm against a naive dense product, statistics
//! and validation (one test per kind of corruption).

mod bcr_util;

use bcr_util::{dense_matmul, random_matrix, Rng};
use proptest::prelude::*;
use tir::{CsrError, CsrMatrix, Matrix};

/// The 3x4 matrix
/// ```text
/// [1 0 2 0]
/// [0 0 0 0]
/// [0 3 0 4]
/// ```
fn sample_parts() -> (Vec<usize>, Vec<u32>, Vec<f32>) {
    (vec![0, 2, 2, 4], vec![0, 2, 1, 3], vec![1.0, 2.0, 3.0, 4.0])
}

fn build(row_ptr: Vec<usize>, col_idx: Vec<u32>, values: Vec<f32>) -> Result<CsrMatrix, CsrError> {
    CsrMatrix::new(3, 4, row_ptr, col_idx, values)
}

#[test]
fn sample_by_hand() {
    let (p, c, v) = sample_parts();
    let m = build(p.clone(), c.clone(), v.clone()).unwrap();
    let d = Matrix::new(
        3,
        4,
        vec![1.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 4.0],
    )
    .unwrap();
    assert_eq!(m.to_dense(), d);
    assert_eq!(CsrMatrix::from_dense(&d).unwrap(), m);
    assert_eq!((m.rows(), m.cols(), m.nnz()), (3, 4, 4));
    assert_eq!(
        (m.row_ptr(), m.col_idx(), m.values()),
        (&p[..], &c[..], &v[..])
    );
    // 4 values + 4 column indices + 4 row offsets, 4 bytes each.
    assert_eq!(m.storage_bytes(), 4 * (4 + 4 + 4));
    // Y = A X with X = 4x2.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    assert_eq!(
        m.spmm(&x, 2).unwrap(),
        vec![11.0, 14.0, 0.0, 0.0, 37.0, 44.0]
    );
}

#[test]
fn empty_shapes() {
    for (r, c) in [(0, 0), (0, 5), (3, 0)] {
        let d = Matrix::zeros(r, c);
        let m = CsrMatrix::from_dense(&d).unwrap();
        assert_eq!(m.validate(), Ok(()));
        assert_eq!(m.row_ptr().len(), r + 1);
        assert_eq!(m.to_dense(), d);
        assert_eq!(m.spmm(&vec![0.0; c * 2], 2).unwrap(), vec![0.0; r * 2]);
    }
}

#[test]
fn spmm_rejects_wrong_operand_length() {
    let (p, c, v) = sample_parts();
    let m = build(p, c, v).unwrap();
    assert_eq!(
        m.spmm(&[1.0; 7], 2),
        Err(CsrError::OperandLength {
            k: 4,
            n: 2,
            actual: 7
        })
    );
    assert!(m.spmm(&[1.0; 4], usize::MAX).is_err());
    assert_eq!(m.spmm(&[], 0).unwrap(), Vec::<f32>::new());
}

#[test]
fn serde_round_trip_and_rejects_corrupt_json() {
    let (p, c, v) = sample_parts();
    let m = build(p, c, v).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<CsrMatrix>(&json).unwrap(), m);
    let bad = json.replace("\"col_idx\":[0,2,1,3]", "\"col_idx\":[2,0,1,3]");
    assert_ne!(bad, json);
    assert!(serde_json::from_str::<CsrMatrix>(&bad).is_err());
}

// ---- validation: one test per kind of corruption -------------------------------------

#[test]
fn rejects_row_ptr_length() {
    let (_, c, v) = sample_parts();
    assert_eq!(
        build(vec![0, 2, 4], c, v),
        Err(CsrError::RowPtrLength {
            expected: 4,
            actual: 3
        })
    );
}

#[test]
fn rejects_row_ptr_start() {
    let (_, c, v) = sample_parts();
    assert_eq!(
        build(vec![1, 2, 2, 4], c, v),
        Err(CsrError::RowPtrStart { value: 1 })
    );
}

#[test]
fn rejects_decreasing_row_ptr() {
    let (_, c, v) = sample_parts();
    assert_eq!(
        build(vec![0, 3, 2, 4], c, v),
        Err(CsrError::RowPtrDecreasing {
            row: 1,
            start: 3,
            end: 2
        })
    );
}

#[test]
fn rejects_row_ptr_end() {
    let (_, c, v) = sample_parts();
    assert_eq!(
        build(vec![0, 2, 2, 5], c, v),
        Err(CsrError::RowPtrEnd { last: 5, nnz: 4 })
    );
}

#[test]
fn rejects_values_length() {
    let (p, c, _) = sample_parts();
    assert_eq!(
        build(p, c, vec![1.0; 3]),
        Err(CsrError::ValuesLength {
            col_idx: 4,
            values: 3
        })
    );
}

#[test]
fn rejects_column_out_of_range() {
    let (p, _, v) = sample_parts();
    assert_eq!(
        build(p, vec![0, 2, 1, 4], v),
        Err(CsrError::ColumnOutOfRange {
            row: 2,
            col: 4,
            cols: 4
        })
    );
}

#[test]
fn rejects_duplicate_column() {
    let (p, _, v) = sample_parts();
    assert_eq!(
        build(p, vec![0, 0, 1, 3], v),
        Err(CsrError::DuplicateColumn { row: 0, col: 0 })
    );
}

#[test]
fn rejects_unsorted_columns() {
    let (p, _, v) = sample_parts();
    assert_eq!(
        build(p, vec![0, 2, 3, 1], v),
        Err(CsrError::UnsortedColumns {
            row: 2,
            col: 1,
            previous: 3
        })
    );
    // Decreasing across a row boundary is fine.
    assert!(build(vec![0, 2, 2, 4], vec![2, 3, 0, 1], vec![1.0; 4]).is_ok());
}

#[test]
fn rejects_dimensions_beyond_u32() {
    let big = u32::MAX as usize + 1;
    assert_eq!(
        CsrMatrix::new(1, big, vec![0, 0], vec![], vec![]),
        Err(CsrError::TooLarge { rows: 1, cols: big })
    );
}

// ---- properties on random matrices ------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn dense_csr_dense_round_trip(m in 0usize..=20, k in 0usize..=20, seed in any::<u64>(), z in 0.0f64..1.0) {
        let d = random_matrix(m, k, seed, z, false);
        let csr = CsrMatrix::from_dense(&d).unwrap();
        prop_assert_eq!(csr.validate(), Ok(()));
        prop_assert_eq!(csr.nnz(), d.count_nonzero());
        prop_assert!(csr.values().iter().all(|v| *v != 0.0));
        prop_assert_eq!(csr.to_dense(), d);
    }

    #[test]
    fn spmm_matches_dense_matmul(
        m in 1usize..=20, k in 1usize..=20, n in 0usize..=9, seed in any::<u64>(), z in 0.0f64..1.0
    ) {
        let a = random_matrix(m, k, seed, z, false);
        let mut rng = Rng::new(seed.wrapping_add(1));
        let x: Vec<f32> = (0..k * n).map(|_| (rng.unit() * 2.0 - 1.0) as f32).collect();
        let csr = CsrMatrix::from_dense(&a).unwrap();
        let y = csr.spmm(&x, n).unwrap();
        let want = dense_matmul(&a, &x, n);
        prop_assert_eq!(y.len(), m * n);
        for (got, want) in y.iter().zip(&want) {
            prop_assert!((got - want).abs() <= 1e-5 * (1.0 + want.abs()), "{} vs {}", got, want);
        }
    }
}
