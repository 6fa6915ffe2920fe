//! Traces: the list of primitive applications, with their sampled decisions, that
//! turns a function into a scheduled one. Serializable to JSON and replayable.

use crate::error::ScheduleError;
use crate::primitive::bcr::{ColumnOrder, RowOrder};
use crate::primitive::loop_transformation::Remainder;
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tir::{ForKind, Function, MemScope, Tensor};

/// For `skip_serializing_if`: a `false` flag is left out of the JSON.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Version of the trace JSON format.
pub const TRACE_FORMAT: u32 = 1;

/// An integer argument of an instruction: a constant, a value sampled by an earlier
/// instruction of the trace, or (for `split`) inferred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Factor {
    /// A constant.
    Const(i64),
    /// Output `index` of the sampling instruction at position `sample` of the trace.
    Sampled {
        /// Position of the sampling instruction.
        sample: usize,
        /// Which of its outputs.
        index: usize,
    },
    /// Inferred from the loop extent (`null` in JSON).
    Infer,
}

/// One step of a trace. The JSON form is an object with an `"op"` field naming the
/// primitive, e.g. `{"op":"split","loop_name":"i","factors":[null,4],"remainder":"tail"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Instruction {
    /// [`crate::primitive::bcr::reorder_rows`].
    ReorderRows {
        /// The BCR weight (`W`, `W_ih`, ...).
        weight: String,
        /// The order of the groups.
        order: RowOrder,
    },
    /// [`crate::primitive::bcr::reorder_columns`].
    ReorderColumns {
        /// The BCR weight.
        weight: String,
        /// How the permutation is chosen.
        order: ColumnOrder,
    },
    /// [`crate::primitive::bcr::eliminate_redundant_loads`].
    EliminateRedundantLoads {
        /// The BCR weight.
        weight: String,
    },
    /// [`crate::primitive::bcr::tile_blocks`].
    TileBlocks {
        /// The BCR weight.
        weight: String,
        /// Kept rows per inner kernel (may refer to a sample).
        rows: Factor,
        /// Output columns per inner kernel (`null`: the output-column loop is not split).
        cols: Option<Factor>,
        /// Remainder strategy (`guard` or `tail`).
        remainder: Remainder,
    },
    /// [`crate::primitive::bcr::vectorize_rows`].
    VectorizeRows {
        /// The BCR weight.
        weight: String,
        /// Rows per vector.
        lanes: i64,
        /// Unpadded values and masked loads ([`crate::primitive::bcr::vectorize_rows_masked`]);
        /// absent in JSON when false, so older traces read and hash as before.
        #[serde(default, skip_serializing_if = "is_false")]
        masked: bool,
    },
    /// [`crate::primitive::bcr::window_block_rows`].
    WindowBlockRows {
        /// The BCR weight.
        weight: String,
    },
    /// [`crate::primitive::bcr::register_tile`].
    RegisterTile {
        /// The BCR weight.
        weight: String,
        /// Kept rows per tile.
        rows: i64,
        /// Output positions per vector piece of the tile.
        lanes: i64,
    },
    /// [`crate::primitive::bcr::tabulate_column_decoding`].
    TabulateColumnDecoding {
        /// The BCR weight.
        weight: String,
    },
    /// [`crate::primitive::bcr::prefetch_values`].
    PrefetchValues {
        /// The BCR weight.
        weight: String,
        /// How far ahead, in bytes of values.
        bytes_ahead: i64,
    },
    /// [`crate::primitive::bcr::partition_output_rows`].
    PartitionOutputRows {
        /// The BCR weight.
        weight: String,
        /// Parts asked for.
        parts: i64,
    },
    /// [`crate::primitive::bcr::specialize_offsets`].
    SpecializeOffsets {
        /// The BCR weight.
        weight: String,
    },
    /// [`crate::primitive::bcr::version_column_counts`].
    VersionColumnCounts {
        /// The BCR weight.
        weight: String,
    },
    /// [`crate::primitive::bcr::partition_block_rows`].
    PartitionBlockRows {
        /// The BCR weight.
        weight: String,
    },
    /// Samples `n` factors whose product is the (constant) extent of `loop_name`, the
    /// innermost at most `max_innermost`. `decision` holds the factors.
    SamplePerfectTile {
        /// The loop whose extent is tiled.
        loop_name: String,
        /// Number of factors.
        n: usize,
        /// Largest innermost factor.
        max_innermost: i64,
        /// The sampled factors (outermost first).
        decision: Vec<i64>,
    },
    /// Samples one of `candidates` with probabilities `probs`; `decision` is the index.
    SampleCategorical {
        /// The values to choose from.
        candidates: Vec<i64>,
        /// Their probabilities (non-negative, not all zero).
        probs: Vec<f64>,
        /// Index of the chosen candidate.
        decision: usize,
    },
    /// [`crate::primitive::loop_transformation::split`].
    Split {
        /// The loop.
        loop_name: String,
        /// The factors, outermost first.
        factors: Vec<Factor>,
        /// Remainder strategy.
        remainder: Remainder,
    },
    /// [`crate::primitive::loop_transformation::fuse`].
    Fuse {
        /// Outer loop.
        outer: String,
        /// Inner loop (the whole body of `outer`).
        inner: String,
    },
    /// [`crate::primitive::loop_transformation::reorder`].
    Reorder {
        /// The new order, outermost first.
        order: Vec<String>,
    },
    /// [`crate::primitive::for_kind::unroll`].
    Unroll {
        /// The loop.
        loop_name: String,
    },
    /// [`crate::primitive::for_kind::vectorize`].
    Vectorize {
        /// The loop.
        loop_name: String,
    },
    /// [`crate::primitive::reduction_vectorize::vectorize_reduction`].
    VectorizeReduction {
        /// The reduction loop.
        loop_name: String,
        /// Partial sums side by side.
        lanes: i64,
    },
    /// [`crate::primitive::for_kind::parallel`].
    Parallel {
        /// The loop.
        loop_name: String,
    },
    /// [`crate::primitive::for_kind::bind`].
    Bind {
        /// The loop.
        loop_name: String,
        /// The GPU axis.
        axis: ForKind,
    },
    /// [`crate::primitive::cache::cache_read`].
    CacheRead {
        /// The loop at the top of whose body the copy is made.
        loop_name: String,
        /// The buffer read.
        buffer: String,
        /// Memory scope of the copy.
        scope: MemScope,
    },
    /// [`crate::primitive::accumulate::accumulate_at`].
    AccumulateAt {
        /// The loop across which partial sums are kept.
        loop_name: String,
        /// The buffer reduced into.
        buffer: String,
    },
    /// [`crate::primitive::cache::cache_write`].
    CacheWrite {
        /// The loop whose body's writes are staged.
        loop_name: String,
        /// The buffer written.
        buffer: String,
        /// Memory scope of the staging buffer.
        scope: MemScope,
    },
    /// [`crate::primitive::compute_location::compute_at`].
    ComputeAt {
        /// Outermost loop of the producer stage.
        stage_loop: String,
        /// Loop of the consumer at the top of whose body the producer goes.
        at_loop: String,
    },
    /// [`crate::primitive::compute_location::compute_inline`].
    ComputeInline {
        /// Outermost loop of the stage to inline.
        stage_loop: String,
    },
    /// [`crate::primitive::compute_location::decompose_reduction`].
    DecomposeReduction {
        /// The loop whose body starts with the init.
        loop_name: String,
        /// The loop before which the init nest is placed.
        at_loop: String,
    },
}

impl Instruction {
    /// The primitive's name as in the JSON `"op"` field.
    pub fn op(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_string))
            .unwrap_or_else(|| "?".to_string())
    }

    /// True for sampling instructions, whose decisions a tuner mutates.
    pub fn is_sample(&self) -> bool {
        matches!(
            self,
            Instruction::SamplePerfectTile { .. } | Instruction::SampleCategorical { .. }
        )
    }
}

/// A trace: what was applied, in order, with every decision.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Trace {
    /// Format version ([`TRACE_FORMAT`]).
    pub format: u32,
    /// The instructions.
    pub instructions: Vec<Instruction>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Trace {
        Trace {
            format: TRACE_FORMAT,
            instructions: Vec::new(),
        }
    }

    /// The trace as compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a trace from JSON; a newer format version is refused.
    pub fn from_json(text: &str) -> Result<Trace, ScheduleError> {
        let t: Trace = serde_json::from_str(text).map_err(|e| {
            ScheduleError::TraceFormat(format!("line {} column {}: {e}", e.line(), e.column()))
        })?;
        if t.format != TRACE_FORMAT {
            return Err(ScheduleError::TraceFormat(format!(
                "format version {} is not supported (this grim reads version {TRACE_FORMAT})",
                t.format
            )));
        }
        Ok(t)
    }

    /// Replays the trace on `func` with `weights`, giving the scheduled function.
    /// Sampling instructions use their recorded decisions (validated). A failing
    /// instruction is reported with its position.
    pub fn replay(
        &self,
        func: &Function,
        weights: &BTreeMap<String, Tensor>,
    ) -> Result<Schedule, ScheduleError> {
        let mut s = Schedule::new(func.clone(), weights.clone())?;
        for (index, inst) in self.instructions.iter().enumerate() {
            s.apply(inst.clone()).map_err(|e| ScheduleError::Replay {
                index,
                op: inst.op(),
                source: Box::new(e),
            })?;
        }
        Ok(s)
    }
}
