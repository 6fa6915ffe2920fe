//! Tests of the BCR format: dense round trips, statistics, CSR conversion, serde and
//! validation (one test per kind of corruption).

mod bcr_util;

use bcr_util::random_matrix;
use proptest::prelude::*;
use tir::bcr::Axis;
use tir::{BcrBlock, BcrError, BcrMatrix, BlockShape, CsrMatrix, Matrix};

fn bs(rows: usize, cols: usize) -> BlockShape {
    BlockShape::new(rows, cols)
}

fn blk(rows: &[u32], cols: &[u32], values: &[f32]) -> BcrBlock {
    BcrBlock {
        kept_rows: rows.to_vec(),
        kept_cols: cols.to_vec(),
        values: values.to_vec(),
    }
}

/// A valid 5x7 matrix with 3x4 blocks: a 2x2 grid whose edge blocks are partial
/// (block (0,0) is 3x4, (0,1) 3x3, (1,0) 2x4, (1,1) 2x3).
fn sample_blocks() -> Vec<BcrBlock> {
    vec![
        blk(&[0, 2], &[1, 3], &[1.0, 2.0, 3.0, 4.0]),
        blk(&[1], &[0, 2], &[5.0, 6.0]),
        BcrBlock::empty(),
        blk(&[0, 1], &[2], &[7.0, 8.0]),
    ]
}

fn sample() -> BcrMatrix {
    BcrMatrix::new(5, 7, bs(3, 4), sample_blocks()).expect("sample is valid")
}

/// `sample()` with block `k` replaced.
fn corrupt(k: usize, b: BcrBlock) -> Result<BcrMatrix, BcrError> {
    let mut blocks = sample_blocks();
    blocks[k] = b;
    BcrMatrix::new(5, 7, bs(3, 4), blocks)
}

#[test]
fn block_shape_display_and_parse() {
    assert_eq!(bs(16, 32).to_string(), "16x32");
    assert_eq!("16x32".parse::<BlockShape>(), Ok(bs(16, 32)));
    assert_eq!("1x1".parse::<BlockShape>(), Ok(bs(1, 1)));
    for bad in [
        "", "16", "16x", "x32", "16x32x1", "-1x2", "a x b", " 4x4", "4X4", "+4x4",
    ] {
        assert!(bad.parse::<BlockShape>().is_err(), "{bad:?} parsed");
    }
}

#[test]
fn sample_geometry_and_dense() {
    let m = sample();
    assert_eq!((m.rows(), m.cols(), m.block()), (5, 7, bs(3, 4)));
    assert_eq!(m.grid(), (2, 2));
    assert_eq!(m.block_extent(0, 0), (0, 0, 3, 4));
    assert_eq!(m.block_extent(0, 1), (0, 4, 3, 3));
    assert_eq!(m.block_extent(1, 0), (3, 0, 2, 4));
    assert_eq!(m.block_extent(1, 1), (3, 4, 2, 3));
    assert_eq!(m.block_at(1, 1), &sample_blocks()[3]);
    assert_eq!(m.blocks(), &sample_blocks()[..]);
    #[rustfmt::skip]
    let expect = Matrix::new(5, 7, vec![
        0.0, 1.0, 0.0, 2.0,   0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,   5.0, 0.0, 6.0,
        0.0, 3.0, 0.0, 4.0,   0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,   0.0, 0.0, 7.0,
        0.0, 0.0, 0.0, 0.0,   0.0, 0.0, 8.0,
    ]).unwrap();
    assert_eq!(m.to_dense(), expect);
    assert_eq!(BcrMatrix::from_dense(&expect, bs(3, 4)).unwrap(), m);
}

#[test]
#[should_panic(expected = "outside the 2x2 grid")]
fn block_at_outside_grid_panics() {
    let _ = sample().block_at(2, 0);
}

#[test]
fn statistics_by_hand() {
    let m = sample();
    // values: 4 + 2 + 0 + 2; indices: (2+2) + (1+2) + 0 + (2+1) = 10; 4 blocks.
    assert_eq!(m.nnz(), 8);
    assert_eq!(m.nonempty_blocks(), 3);
    assert_eq!(m.storage_bytes(), 4 * 8 + 4 * 10 + 12 * 4);
    assert!((m.sparsity() - (1.0 - 8.0 / 35.0)).abs() < 1e-12);
    assert!((m.compression_ratio() - 140.0 / 120.0).abs() < 1e-12);
}

#[test]
fn from_dense_keeps_stored_zeros_inside_the_kept_submatrix() {
    // One 2x2 block with non-zeros on the anti-diagonal keeps both rows and columns.
    let d = Matrix::new(2, 2, vec![0.0, 1.0, 2.0, 0.0]).unwrap();
    let b = BcrMatrix::from_dense(&d, bs(2, 2)).unwrap();
    assert_eq!(b.blocks(), &[blk(&[0, 1], &[0, 1], &[0.0, 1.0, 2.0, 0.0])]);
    assert_eq!(b.nnz(), 4);
    assert_eq!(b.to_csr().nnz(), 2);
    // An all-zero matrix gives canonical empty blocks.
    let z = BcrMatrix::from_dense(&Matrix::zeros(3, 3), bs(2, 2)).unwrap();
    assert!(z.blocks().iter().all(|b| *b == BcrBlock::empty()));
    assert_eq!(z.nnz(), 0);
    assert_eq!(z.sparsity(), 1.0);
    assert_eq!(z.nonempty_blocks(), 0);
    assert_eq!(z.to_dense(), Matrix::zeros(3, 3));
}

#[test]
fn from_dense_rejects_bad_shapes() {
    let m = Matrix::zeros(4, 6);
    assert_eq!(
        BcrMatrix::from_dense(&m, bs(0, 2)),
        Err(BcrError::ZeroBlock { block: bs(0, 2) })
    );
    assert_eq!(
        BcrMatrix::from_dense(&m, bs(2, 7)),
        Err(BcrError::BlockLargerThanMatrix {
            block: bs(2, 7),
            rows: 4,
            cols: 6
        })
    );
    assert_eq!(
        BcrMatrix::from_dense(&Matrix::zeros(0, 3), bs(1, 1)),
        Err(BcrError::EmptyMatrix { rows: 0, cols: 3 })
    );
}

#[test]
fn serde_round_trip_and_rejects_corrupt_json() {
    let m = sample();
    let json = serde_json::to_string(&m).unwrap();
    let back: BcrMatrix = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    // Make block (0,0)'s kept rows unsorted: deserialization must fail validation.
    let bad = json.replacen("\"kept_rows\":[0,2]", "\"kept_rows\":[2,0]", 1);
    assert_ne!(bad, json);
    let err = serde_json::from_str::<BcrMatrix>(&bad).unwrap_err();
    assert!(err.to_string().contains("block (0, 0)"), "{err}");
}

// ---- validation: one test per kind of corruption -------------------------------------

#[test]
fn rejects_unsorted_indices() {
    assert_eq!(
        corrupt(0, blk(&[2, 0], &[1, 3], &[1.0; 4])),
        Err(BcrError::UnsortedIndices {
            br: 0,
            bc: 0,
            axis: Axis::Row,
            position: 1,
            index: 0,
            previous: 2
        })
    );
    assert_eq!(
        corrupt(3, blk(&[0, 1], &[2, 1], &[1.0; 4])),
        Err(BcrError::UnsortedIndices {
            br: 1,
            bc: 1,
            axis: Axis::Col,
            position: 1,
            index: 1,
            previous: 2
        })
    );
}

#[test]
fn rejects_duplicate_indices() {
    assert_eq!(
        corrupt(1, blk(&[1, 1], &[0], &[1.0; 2])),
        Err(BcrError::DuplicateIndex {
            br: 0,
            bc: 1,
            axis: Axis::Row,
            position: 1,
            index: 1
        })
    );
    assert_eq!(
        corrupt(0, blk(&[0], &[0, 3, 3], &[1.0; 3])),
        Err(BcrError::DuplicateIndex {
            br: 0,
            bc: 0,
            axis: Axis::Col,
            position: 2,
            index: 3
        })
    );
}

#[test]
fn rejects_out_of_range_indices() {
    // Row 3 is outside the 3-row block (0,0).
    assert_eq!(
        corrupt(0, blk(&[0, 3], &[1], &[1.0; 2])),
        Err(BcrError::IndexOutOfRange {
            br: 0,
            bc: 0,
            axis: Axis::Row,
            position: 1,
            index: 3,
            extent: 3
        })
    );
    // Partial edge blocks: row 2 fits the 3x4 block shape but not the 2-row block (1,0),
    // and column 3 not the 3-column block (0,1).
    assert_eq!(
        corrupt(2, blk(&[2], &[0], &[1.0])),
        Err(BcrError::IndexOutOfRange {
            br: 1,
            bc: 0,
            axis: Axis::Row,
            position: 0,
            index: 2,
            extent: 2
        })
    );
    assert_eq!(
        corrupt(1, blk(&[0], &[0, 3], &[1.0; 2])),
        Err(BcrError::IndexOutOfRange {
            br: 0,
            bc: 1,
            axis: Axis::Col,
            position: 1,
            index: 3,
            extent: 3
        })
    );
    // A huge index is reported, not overflowed.
    assert!(matches!(
        corrupt(0, blk(&[u32::MAX], &[0], &[1.0])),
        Err(BcrError::IndexOutOfRange {
            index: u32::MAX,
            ..
        })
    ));
}

#[test]
fn rejects_wrong_values_length() {
    assert_eq!(
        corrupt(0, blk(&[0, 2], &[1, 3], &[1.0; 3])),
        Err(BcrError::ValuesLength {
            br: 0,
            bc: 0,
            expected: 4,
            actual: 3
        })
    );
    assert_eq!(
        corrupt(3, blk(&[0], &[2], &[1.0; 2])),
        Err(BcrError::ValuesLength {
            br: 1,
            bc: 1,
            expected: 1,
            actual: 2
        })
    );
}

#[test]
fn rejects_non_canonical_empty_blocks() {
    let cases = [
        (blk(&[0, 1], &[], &[]), (2, 0, 0)),
        (blk(&[], &[1], &[]), (0, 1, 0)),
        (blk(&[], &[], &[1.0]), (0, 0, 1)),
        (blk(&[0], &[], &[1.0]), (1, 0, 1)),
    ];
    for (b, (kept_rows, kept_cols, values)) in cases {
        assert_eq!(
            corrupt(2, b),
            Err(BcrError::NonCanonicalEmpty {
                br: 1,
                bc: 0,
                kept_rows,
                kept_cols,
                values
            })
        );
    }
}

#[test]
fn rejects_wrong_block_count() {
    let mut blocks = sample_blocks();
    blocks.pop();
    assert_eq!(
        BcrMatrix::new(5, 7, bs(3, 4), blocks),
        Err(BcrError::BlockCount {
            grid_rows: 2,
            grid_cols: 2,
            expected: 4,
            actual: 3
        })
    );
    let mut blocks = sample_blocks();
    blocks.push(BcrBlock::empty());
    assert!(matches!(
        BcrMatrix::new(5, 7, bs(3, 4), blocks),
        Err(BcrError::BlockCount {
            expected: 4,
            actual: 5,
            ..
        })
    ));
}

#[test]
fn rejects_zero_block() {
    for block in [bs(0, 4), bs(3, 0), bs(0, 0)] {
        assert_eq!(
            BcrMatrix::new(5, 7, block, vec![]),
            Err(BcrError::ZeroBlock { block })
        );
    }
}

#[test]
fn rejects_block_larger_than_matrix() {
    for block in [bs(6, 4), bs(3, 8)] {
        assert_eq!(
            BcrMatrix::new(5, 7, block, vec![BcrBlock::empty()]),
            Err(BcrError::BlockLargerThanMatrix {
                block,
                rows: 5,
                cols: 7
            })
        );
    }
    // Exactly the matrix size is fine: a 1x1 grid.
    assert!(BcrMatrix::new(5, 7, bs(5, 7), vec![BcrBlock::empty()]).is_ok());
}

#[test]
fn rejects_empty_matrix() {
    assert_eq!(
        BcrMatrix::new(0, 7, bs(1, 1), vec![]),
        Err(BcrError::EmptyMatrix { rows: 0, cols: 7 })
    );
    assert_eq!(
        BcrMatrix::new(5, 0, bs(1, 1), vec![]),
        Err(BcrError::EmptyMatrix { rows: 5, cols: 0 })
    );
}

#[test]
fn rejects_dimensions_beyond_u32() {
    let big = u32::MAX as usize + 1;
    assert_eq!(
        BcrMatrix::new(big, 1, bs(big, 1), vec![BcrBlock::empty()]),
        Err(BcrError::TooLarge { rows: big, cols: 1 })
    );
}

#[test]
fn error_messages_name_the_block() {
    let e = corrupt(3, blk(&[0, 1], &[2, 1], &[1.0; 4])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "block (1, 1): kept_cols is not sorted: kept_cols[1] = 1 follows 2"
    );
    let e = corrupt(2, blk(&[2], &[0], &[1.0])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "block (1, 0): kept_rows[0] = 2 is out of range 0..2"
    );
}

// ---- properties on random matrices ------------------------------------------------------

/// Shape, block shape (edge blocks often partial), seed and zero fraction.
fn dense_case() -> impl Strategy<Value = (Matrix, BlockShape)> {
    (1usize..=24, 1usize..=24)
        .prop_flat_map(|(m, k)| (Just(m), Just(k), 1..=m, 1..=k, any::<u64>(), 0.0f64..1.0))
        .prop_map(|(m, k, r, c, seed, z)| (random_matrix(m, k, seed, z, false), bs(r, c)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn dense_bcr_dense_round_trip((d, block) in dense_case()) {
        let b = BcrMatrix::from_dense(&d, block).unwrap();
        prop_assert_eq!(b.validate(), Ok(()));
        prop_assert_eq!(b.to_dense(), d.clone());
        // Lossless and minimal: a row/column is kept exactly when it has a non-zero in
        // the block.
        let (gr, gc) = b.grid();
        for br in 0..gr {
            for bc in 0..gc {
                let (r0, c0, h, w) = b.block_extent(br, bc);
                prop_assert!(h >= 1 && h <= block.rows && w >= 1 && w <= block.cols);
                let blk = b.block_at(br, bc);
                let rows: Vec<u32> = (0..h)
                    .filter(|&i| (0..w).any(|j| d.get(r0 + i, c0 + j) != 0.0))
                    .map(|i| i as u32)
                    .collect();
                let cols: Vec<u32> = (0..w)
                    .filter(|&j| (0..h).any(|i| d.get(r0 + i, c0 + j) != 0.0))
                    .map(|j| j as u32)
                    .collect();
                prop_assert_eq!(&blk.kept_rows, &rows);
                prop_assert_eq!(&blk.kept_cols, &cols);
            }
        }
        // Statistics agree with their definitions.
        let nnz: usize = b.blocks().iter().map(|x| x.values.len()).sum();
        prop_assert_eq!(b.nnz(), nnz);
        prop_assert!(b.nnz() >= d.count_nonzero());
        prop_assert_eq!(b.nonempty_blocks(), b.blocks().iter().filter(|x| !x.values.is_empty()).count());
        prop_assert_eq!(b.blocks().len(), gr * gc);
    }

    #[test]
    fn to_csr_matches_csr_of_dense((d, block) in dense_case()) {
        let b = BcrMatrix::from_dense(&d, block).unwrap();
        let csr = b.to_csr();
        prop_assert_eq!(csr.validate(), Ok(()));
        prop_assert_eq!(&csr, &CsrMatrix::from_dense(&d).unwrap());
        prop_assert_eq!(csr.nnz(), d.count_nonzero());
        prop_assert_eq!(csr.to_dense(), d);
    }

    #[test]
    fn serde_round_trip((d, block) in dense_case()) {
        let b = BcrMatrix::from_dense(&d, block).unwrap();
        let back: BcrMatrix = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        prop_assert_eq!(back, b);
    }
}

/// Arbitrary, mostly invalid, parts: small shapes (zero included), small index lists
/// with arbitrary order and range, arbitrary values lengths.
fn arbitrary_parts() -> impl Strategy<Value = (usize, usize, BlockShape, Vec<BcrBlock>)> {
    let block = (
        prop::collection::vec(0u32..6, 0..4),
        prop::collection::vec(0u32..6, 0..4),
        prop::collection::vec(-2.0f32..2.0, 0..10),
    )
        .prop_map(|(kept_rows, kept_cols, values)| BcrBlock {
            kept_rows,
            kept_cols,
            values,
        });
    (
        0usize..8,
        0usize..8,
        0usize..6,
        0usize..6,
        prop::collection::vec(block, 0..8),
    )
        .prop_map(|(m, k, r, c, blocks)| (m, k, bs(r, c), blocks))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// `new` never panics, and whatever it accepts is usable without panicking and
    /// converts consistently.
    #[test]
    fn new_never_panics_and_accepted_parts_are_consistent((m, k, block, blocks) in arbitrary_parts()) {
        if let Ok(b) = BcrMatrix::new(m, k, block, blocks) {
            let d = b.to_dense();
            prop_assert_eq!(b.to_csr().to_dense(), d.clone());
            prop_assert!(b.storage_bytes() > 0 && b.compression_ratio() > 0.0);
            prop_assert!((0.0..=1.0).contains(&b.sparsity()));
            let again = BcrMatrix::from_dense(&d, block).unwrap();
            prop_assert_eq!(again.to_dense(), d);
        }
    }
}
