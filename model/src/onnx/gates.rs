//! Gate order of recurrent weights: ONNX stacks GRU gates as `z, r, h` and LSTM
//! gates as `i, o, f, c`; `tir` (like PyTorch) stacks them as `r, z, n` and
//! `i, f, g, o`. The gate equations are the same (GRU with `linear_before_reset = 1`).

use tir::spec::RnnCell;

/// For each `tir` gate, the ONNX gate it comes from.
fn onnx_of_tir(cell: RnnCell) -> &'static [usize] {
    match cell {
        RnnCell::Gru => &[1, 0, 2],
        RnnCell::Lstm => &[0, 2, 3, 1],
    }
}

/// For each ONNX gate, the `tir` gate it comes from.
fn tir_of_onnx(cell: RnnCell) -> &'static [usize] {
    match cell {
        RnnCell::Gru => &[1, 0, 2],
        RnnCell::Lstm => &[0, 3, 1, 2],
    }
}

/// Rebuilds `data` (gate blocks of `block` values each) with block `g` taken from
/// block `from[g]`.
fn permute(data: &[f32], block: usize, from: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len());
    for &g in from {
        out.extend_from_slice(&data[g * block..(g + 1) * block]);
    }
    out
}

/// Gate rows (each `block` values: `hidden x cols` for weights, `hidden` for biases)
/// from ONNX order to `tir` order. `data` must hold `cell.gates() * block` values.
pub fn to_tir(cell: RnnCell, data: &[f32], block: usize) -> Vec<f32> {
    permute(data, block, onnx_of_tir(cell))
}

/// Gate rows from `tir` order to ONNX order.
pub fn to_onnx(cell: RnnCell, data: &[f32], block: usize) -> Vec<f32> {
    permute(data, block, tir_of_onnx(cell))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_invert_each_other() {
        for cell in [RnnCell::Gru, RnnCell::Lstm] {
            let g = cell.gates();
            let data: Vec<f32> = (0..g * 6).map(|v| v as f32).collect();
            assert_eq!(to_onnx(cell, &to_tir(cell, &data, 6), 6), data);
        }
        // ONNX LSTM i, o, f, c -> tir i, f, g(=c), o.
        let onnx = [0.0, 1.0, 2.0, 3.0];
        assert_eq!(to_tir(RnnCell::Lstm, &onnx, 1), vec![0.0, 2.0, 3.0, 1.0]);
        // ONNX GRU z, r, h -> tir r, z, n.
        assert_eq!(to_tir(RnnCell::Gru, &onnx[..3], 1), vec![1.0, 0.0, 2.0]);
    }
}
