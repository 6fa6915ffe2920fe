//! The primitives, one file per family (as TVM's schedule), and the dispatch of trace
//! instructions to them.

pub mod accumulate;
pub mod bcr;
pub mod cache;
pub mod compute_location;
pub mod for_kind;
pub mod loop_transformation;
pub mod reduction_vectorize;
pub mod sampling;

use crate::error::ScheduleError;
use crate::trace::{Factor, Instruction};
use std::collections::BTreeMap;
use tir::{Function, Tensor};

/// What a primitive transforms: the function and the weight data bound to it (BCR
/// primitives rewrite index arrays and values).
#[derive(Debug, Clone)]
pub struct State {
    /// The function.
    pub func: Function,
    /// Data of the function's weight parameters.
    pub weights: BTreeMap<String, Tensor>,
}

/// Resolves a factor against the earlier instructions of the trace.
pub fn resolve(
    f: &Factor,
    earlier: &[Instruction],
    op: &'static str,
    at: &str,
) -> Result<Option<i64>, ScheduleError> {
    match f {
        Factor::Const(v) => Ok(Some(*v)),
        Factor::Infer => Ok(None),
        Factor::Sampled { sample, index } => match earlier.get(*sample) {
            Some(Instruction::SamplePerfectTile { decision, .. }) => decision
                .get(*index)
                .copied()
                .map(Some)
                .ok_or_else(|| ScheduleError::illegal(op, at, format!("sample {sample} has no output {index}"))),
            Some(Instruction::SampleCategorical {
                candidates,
                decision,
                ..
            }) if *index == 0 => candidates
                .get(*decision)
                .copied()
                .map(Some)
                .ok_or_else(|| ScheduleError::illegal(op, at, format!("sample {sample} decision out of range"))),
            _ => Err(ScheduleError::illegal(
                op,
                at,
                format!("factor refers to instruction {sample}, which is not an earlier sample with output {index}"),
            )),
        },
    }
}

/// Applies one instruction to `state`; returns the names of loops it created (for
/// `cache_read` and `cache_write`: the name of the new buffer).
pub fn apply(
    state: &mut State,
    inst: &Instruction,
    earlier: &[Instruction],
) -> Result<Vec<String>, ScheduleError> {
    match inst {
        Instruction::ReorderRows { weight, order } => bcr::reorder_rows(state, weight, *order),
        Instruction::ReorderColumns { weight, order } => {
            bcr::reorder_columns(state, weight, *order)
        }
        Instruction::EliminateRedundantLoads { weight } => {
            bcr::eliminate_redundant_loads(state, weight)
        }
        Instruction::TileBlocks {
            weight,
            rows,
            cols,
            remainder,
        } => {
            let positive = |f: &Factor| -> Result<i64, ScheduleError> {
                resolve(f, earlier, "tile_blocks", weight)?.ok_or_else(|| {
                    ScheduleError::illegal(
                        "tile_blocks",
                        weight,
                        "a tile size cannot be inferred (null)",
                    )
                })
            };
            let r = positive(rows)?;
            let c = cols.as_ref().map(positive).transpose()?;
            bcr::tile_blocks(state, weight, r, c, *remainder)
        }
        Instruction::PartitionBlockRows { weight } => bcr::partition_block_rows(state, weight),
        Instruction::VectorizeRows {
            weight,
            lanes,
            masked: false,
        } => bcr::vectorize_rows(state, weight, *lanes),
        Instruction::VectorizeRows {
            weight,
            lanes,
            masked: true,
        } => bcr::vectorize_rows_masked(state, weight, *lanes),
        Instruction::WindowBlockRows { weight } => bcr::window_block_rows(state, weight),
        Instruction::RegisterTile {
            weight,
            rows,
            lanes,
        } => bcr::register_tile(state, weight, *rows, *lanes),
        Instruction::TabulateColumnDecoding { weight } => {
            bcr::tabulate_column_decoding(state, weight)
        }
        Instruction::PrefetchValues {
            weight,
            bytes_ahead,
        } => bcr::prefetch_values(state, weight, *bytes_ahead),
        Instruction::PartitionOutputRows { weight, parts } => {
            bcr::partition_output_rows(state, weight, *parts)
        }
        Instruction::SpecializeOffsets { weight } => bcr::specialize_offsets(state, weight),
        Instruction::VersionColumnCounts { weight } => bcr::version_column_counts(state, weight),
        Instruction::SamplePerfectTile {
            loop_name,
            n,
            max_innermost,
            decision,
        } => {
            sampling::validate_perfect_tile(&state.func, loop_name, *n, *max_innermost, decision)?;
            Ok(Vec::new())
        }
        Instruction::SampleCategorical {
            candidates,
            probs,
            decision,
        } => {
            sampling::validate_categorical(candidates, probs, *decision)?;
            Ok(Vec::new())
        }
        Instruction::Split {
            loop_name,
            factors,
            remainder,
        } => {
            let fs = factors
                .iter()
                .map(|f| resolve(f, earlier, "split", loop_name))
                .collect::<Result<Vec<_>, _>>()?;
            loop_transformation::split(&mut state.func, loop_name, &fs, *remainder)
        }
        Instruction::Fuse { outer, inner } => {
            loop_transformation::fuse(&mut state.func, outer, inner).map(|n| vec![n])
        }
        Instruction::Reorder { order } => {
            loop_transformation::reorder(&mut state.func, order).map(|_| Vec::new())
        }
        Instruction::Unroll { loop_name } => {
            for_kind::unroll(&mut state.func, loop_name).map(|_| Vec::new())
        }
        Instruction::Vectorize { loop_name } => {
            for_kind::vectorize(&mut state.func, loop_name).map(|_| Vec::new())
        }
        Instruction::VectorizeReduction { loop_name, lanes } => {
            reduction_vectorize::vectorize_reduction(&mut state.func, loop_name, *lanes)
        }
        Instruction::Parallel { loop_name } => {
            for_kind::parallel(&mut state.func, loop_name).map(|_| Vec::new())
        }
        Instruction::Bind { loop_name, axis } => {
            for_kind::bind(&mut state.func, loop_name, *axis).map(|_| Vec::new())
        }
        Instruction::AccumulateAt { loop_name, buffer } => {
            accumulate::accumulate_at(&mut state.func, loop_name, buffer).map(|b| vec![b])
        }
        Instruction::CacheRead {
            loop_name,
            buffer,
            scope,
        } => cache::cache_read(&mut state.func, loop_name, buffer, *scope).map(|b| vec![b]),
        Instruction::CacheWrite {
            loop_name,
            buffer,
            scope,
        } => cache::cache_write(&mut state.func, loop_name, buffer, *scope).map(|b| vec![b]),
        Instruction::ComputeAt {
            stage_loop,
            at_loop,
        } => compute_location::compute_at(&mut state.func, stage_loop, at_loop).map(|_| Vec::new()),
        Instruction::ComputeInline { stage_loop } => {
            compute_location::compute_inline(&mut state.func, stage_loop).map(|_| Vec::new())
        }
        Instruction::DecomposeReduction { loop_name, at_loop } => {
            compute_location::decompose_reduction(&mut state.func, loop_name, at_loop)
        }
    }
}
