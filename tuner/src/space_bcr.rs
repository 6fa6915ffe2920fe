//! BCR knobs of the search space (row/column reordering, load-redundancy
//! elimination, block-row partitioning, rows per inner kernel).

use crate::space::Knob;

/// The knobs for BCR weight `weight`. (Filled in once the BCR schedule primitives are
/// available.)
pub fn bcr_knobs(_weight: &str) -> Vec<Knob> {
    Vec::new()
}
