//! The `Schedule`: a function being transformed, the weights bound to it, and the
//! trace of what was applied.

use crate::error::ScheduleError;
use crate::primitive::bcr::{self, ColumnOrder, RowOrder};
use crate::primitive::loop_transformation::Remainder;
use crate::primitive::{self, sampling, State};
use crate::trace::{Factor, Instruction, Trace};
use std::collections::BTreeMap;
use tir::rng::SplitMix64;
use tir::visit::bound_names;
use tir::workload::Workload;
use tir::{ForKind, Function, MemScope, Tensor};

/// What [`Schedule::reorder_rows`] did: entries (blocks or groups) before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCounts {
    /// Entries before.
    pub before: usize,
    /// Entries after.
    pub after: usize,
}

/// What [`Schedule::partition_block_rows`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The new outer loop over the partitions.
    pub loop_name: String,
    /// Number of partitions (disjoint row ranges).
    pub partitions: usize,
    /// Whether the loop was proven parallel and marked so.
    pub parallel: bool,
}

/// A function under scheduling. Every primitive checks its preconditions; a failed
/// primitive returns a [`ScheduleError`] and leaves the schedule unchanged. Every
/// successful one is appended to the [`Trace`].
#[derive(Debug, Clone)]
pub struct Schedule {
    state: State,
    trace: Trace,
    rng: SplitMix64,
}

impl Schedule {
    /// Starts scheduling `func` with its weight data. The function must be well formed
    /// and bind every loop name once (loops are addressed by name).
    pub fn new(
        func: Function,
        weights: BTreeMap<String, Tensor>,
    ) -> Result<Schedule, ScheduleError> {
        tir::verify(&func)?;
        let loops = tir::visit::loop_names(&func.body);
        let all = bound_names(&func.body);
        for (i, n) in loops.iter().enumerate() {
            if loops[..i].contains(n) || all.iter().filter(|m| *m == n).count() > 1 {
                return Err(ScheduleError::DuplicateLoopName(n.clone()));
            }
        }
        Ok(Schedule {
            state: State { func, weights },
            trace: Trace::new(),
            rng: SplitMix64::new(0),
        })
    }

    /// Starts scheduling a workload's lowered function.
    pub fn from_workload(w: &Workload) -> Result<Schedule, ScheduleError> {
        Schedule::new(w.func.clone(), w.weights.clone())
    }

    /// Seeds the generator used by the sampling primitives.
    pub fn seed(&mut self, seed: u64) {
        self.rng = SplitMix64::new(seed);
    }

    /// The scheduled function.
    pub fn func(&self) -> &Function {
        &self.state.func
    }

    /// The weight data of the scheduled function (BCR primitives change it).
    pub fn weights(&self) -> &BTreeMap<String, Tensor> {
        &self.state.weights
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Row reordering of BCR weight `weight` (see
    /// [`crate::primitive::bcr::reorder_rows`]); returns the number of entries
    /// (blocks or groups) before and after.
    pub fn reorder_rows(
        &mut self,
        weight: &str,
        order: RowOrder,
    ) -> Result<GroupCounts, ScheduleError> {
        let before = bcr::group_count(self.weights(), weight).unwrap_or(0);
        self.apply(Instruction::ReorderRows {
            weight: weight.to_string(),
            order,
        })?;
        let after = bcr::group_count(self.weights(), weight).unwrap_or(0);
        Ok(GroupCounts { before, after })
    }

    /// Column reordering of BCR weight `weight` (see
    /// [`crate::primitive::bcr::reorder_columns`]); returns the gather loops created.
    pub fn reorder_columns(
        &mut self,
        weight: &str,
        order: ColumnOrder,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::ReorderColumns {
            weight: weight.to_string(),
            order,
        })
    }

    /// Load-redundancy elimination for BCR weight `weight` (see
    /// [`crate::primitive::bcr::eliminate_redundant_loads`]); returns the loops of the
    /// fill stage.
    pub fn eliminate_redundant_loads(
        &mut self,
        weight: &str,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::EliminateRedundantLoads {
            weight: weight.to_string(),
        })
    }

    /// Block tiling of BCR weight `weight` (see
    /// [`crate::primitive::bcr::tile_blocks`]); returns the loops created.
    pub fn tile_blocks(
        &mut self,
        weight: &str,
        rows: i64,
        cols: Option<i64>,
        remainder: Remainder,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::TileBlocks {
            weight: weight.to_string(),
            rows: Factor::Const(rows),
            cols: cols.map(Factor::Const),
            remainder,
        })
    }

    /// Row vectorization of BCR weight `weight`, `lanes` rows per vector (see
    /// [`crate::primitive::bcr::vectorize_rows`]); returns the chunk, lane and scatter
    /// loops.
    pub fn vectorize_rows(
        &mut self,
        weight: &str,
        lanes: i64,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::VectorizeRows {
            weight: weight.to_string(),
            lanes,
            masked: false,
        })
    }

    /// Row vectorization without padding, lanes past an entry's rows masked (see
    /// [`crate::primitive::bcr::vectorize_rows_masked`]); returns the chunk, lane and
    /// scatter loops.
    pub fn vectorize_rows_masked(
        &mut self,
        weight: &str,
        lanes: i64,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::VectorizeRows {
            weight: weight.to_string(),
            lanes,
            masked: true,
        })
    }

    /// Sums `rows` kept rows of `weight` times a row of output positions in registers,
    /// in vector pieces of `lanes` (see [`crate::primitive::bcr::register_tile`]);
    /// returns the loops created.
    pub fn register_tile(
        &mut self,
        weight: &str,
        rows: i64,
        lanes: i64,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::RegisterTile {
            weight: weight.into(),
            rows,
            lanes,
        })
    }

    /// Keeps each block row's outputs in a window of registers, every entry's row sums
    /// added into it by a lane permutation (see
    /// [`crate::primitive::bcr::window_block_rows`]); returns the window loops.
    pub fn window_block_rows(&mut self, weight: &str) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::WindowBlockRows {
            weight: weight.to_string(),
        })
    }

    /// Column-decoding tables for BCR weight `weight`: each kept column's decoding (a
    /// conv's channel and taps) is computed once per entry (see
    /// [`crate::primitive::bcr::tabulate_column_decoding`]); returns the fill loop.
    pub fn tabulate_column_decoding(&mut self, weight: &str) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::TabulateColumnDecoding {
            weight: weight.to_string(),
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }

    /// Software prefetch of BCR weight `weight`'s values about `bytes_ahead` bytes
    /// ahead (see [`crate::primitive::bcr::prefetch_values`]); returns the prefetch
    /// loop.
    pub fn prefetch_values(
        &mut self,
        weight: &str,
        bytes_ahead: i64,
    ) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::PrefetchValues {
            weight: weight.to_string(),
            bytes_ahead,
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }

    /// A parallel loop over `parts` parts of the output rows of the conv whose BCR
    /// weight is `weight`, around its block loop (see
    /// [`crate::primitive::bcr::partition_output_rows`]); returns the new loop.
    pub fn partition_output_rows(
        &mut self,
        weight: &str,
        parts: i64,
    ) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::PartitionOutputRows {
            weight: weight.to_string(),
            parts,
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }

    /// Offset specialization of BCR weight `weight`: its entry offsets and counts
    /// become constants (see [`crate::primitive::bcr::specialize_offsets`]).
    pub fn specialize_offsets(&mut self, weight: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::SpecializeOffsets {
            weight: weight.to_string(),
        })
        .map(|_| ())
    }

    /// Versioning of BCR weight `weight`'s entry body by kept-column count (see
    /// [`crate::primitive::bcr::version_column_counts`]).
    pub fn version_column_counts(&mut self, weight: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::VersionColumnCounts {
            weight: weight.to_string(),
        })
        .map(|_| ())
    }

    /// Partitions the entries of BCR weight `weight` into disjoint row ranges under a
    /// new outer loop (see [`crate::primitive::bcr::partition_block_rows`]); reports
    /// the loop, the number of partitions and whether the loop was proven parallel.
    pub fn partition_block_rows(&mut self, weight: &str) -> Result<Partition, ScheduleError> {
        let names = self.apply(Instruction::PartitionBlockRows {
            weight: weight.to_string(),
        })?;
        let loop_name = names.into_iter().next().unwrap_or_default();
        let parallel = crate::loops::find_loop(&self.state.func.body, &loop_name)
            .and_then(crate::loops::parts)
            .is_some_and(|l| l.kind == ForKind::Parallel);
        let partitions = self
            .weights()
            .get(&format!("{weight}_brow_ptr"))
            .map(|t| t.len().saturating_sub(1))
            .unwrap_or(0);
        Ok(Partition {
            loop_name,
            partitions,
            parallel,
        })
    }

    /// Applies one instruction; returns the names of the loops it created. On error
    /// nothing changes.
    pub fn apply(&mut self, inst: Instruction) -> Result<Vec<String>, ScheduleError> {
        let mut next = self.state.clone();
        let out = primitive::apply(&mut next, &inst, &self.trace.instructions)?;
        tir::verify(&next.func)?;
        self.state = next;
        self.trace.instructions.push(inst);
        Ok(out)
    }

    /// Splits a loop by constant factors (`None`: inferred). See
    /// [`crate::primitive::loop_transformation::split`].
    pub fn split(
        &mut self,
        loop_name: &str,
        factors: &[Option<i64>],
        remainder: Remainder,
    ) -> Result<Vec<String>, ScheduleError> {
        let factors = factors
            .iter()
            .map(|f| match f {
                Some(v) => Factor::Const(*v),
                None => Factor::Infer,
            })
            .collect();
        self.apply(Instruction::Split {
            loop_name: loop_name.to_string(),
            factors,
            remainder,
        })
    }

    /// Splits a loop by factors that may refer to samples. See
    /// [`crate::primitive::loop_transformation::split`].
    pub fn split_by(
        &mut self,
        loop_name: &str,
        factors: Vec<Factor>,
        remainder: Remainder,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::Split {
            loop_name: loop_name.to_string(),
            factors,
            remainder,
        })
    }

    /// Fuses `outer` with its only child `inner`. See
    /// [`crate::primitive::loop_transformation::fuse`].
    pub fn fuse(&mut self, outer: &str, inner: &str) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::Fuse {
            outer: outer.to_string(),
            inner: inner.to_string(),
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }

    /// Reorders loops of a perfect nest. See
    /// [`crate::primitive::loop_transformation::reorder`].
    pub fn reorder(&mut self, order: &[&str]) -> Result<(), ScheduleError> {
        self.apply(Instruction::Reorder {
            order: order.iter().map(|s| s.to_string()).collect(),
        })
        .map(|_| ())
    }

    /// Marks a loop unrolled. See [`crate::primitive::for_kind::unroll`].
    pub fn unroll(&mut self, loop_name: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::Unroll {
            loop_name: loop_name.to_string(),
        })
        .map(|_| ())
    }

    /// Marks a loop vectorized. See [`crate::primitive::for_kind::vectorize`].
    pub fn vectorize(&mut self, loop_name: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::Vectorize {
            loop_name: loop_name.to_string(),
        })
        .map(|_| ())
    }

    /// Sums reduction loop `loop_name` in `lanes` vector lanes; returns the vector,
    /// tail (when there is one) and final-sum loops. See
    /// [`crate::primitive::reduction_vectorize::vectorize_reduction`].
    pub fn vectorize_reduction(
        &mut self,
        loop_name: &str,
        lanes: i64,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::VectorizeReduction {
            loop_name: loop_name.to_string(),
            lanes,
        })
    }

    /// Marks a loop parallel. See [`crate::primitive::for_kind::parallel`].
    pub fn parallel(&mut self, loop_name: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::Parallel {
            loop_name: loop_name.to_string(),
        })
        .map(|_| ())
    }

    /// Binds a loop to a GPU axis. See [`crate::primitive::for_kind::bind`].
    pub fn bind(&mut self, loop_name: &str, axis: ForKind) -> Result<(), ScheduleError> {
        self.apply(Instruction::Bind {
            loop_name: loop_name.to_string(),
            axis,
        })
        .map(|_| ())
    }

    /// Samples `n` factors of loop `loop_name`'s constant extent (innermost at most
    /// `max_innermost`) and returns references to them for [`Schedule::split_by`].
    pub fn sample_perfect_tile(
        &mut self,
        loop_name: &str,
        n: usize,
        max_innermost: i64,
    ) -> Result<Vec<Factor>, ScheduleError> {
        let mut rng = self.rng.clone();
        let decision =
            sampling::sample_perfect_tile(&self.state.func, loop_name, n, max_innermost, &mut rng)?;
        let at = self.trace.instructions.len();
        self.apply(Instruction::SamplePerfectTile {
            loop_name: loop_name.to_string(),
            n,
            max_innermost,
            decision,
        })?;
        self.rng = rng;
        Ok((0..n)
            .map(|index| Factor::Sampled { sample: at, index })
            .collect())
    }

    /// Samples one of `candidates` with probabilities `probs`; returns a reference to
    /// the chosen value.
    pub fn sample_categorical(
        &mut self,
        candidates: &[i64],
        probs: &[f64],
    ) -> Result<Factor, ScheduleError> {
        let mut rng = self.rng.clone();
        let decision = sampling::sample_categorical(candidates, probs, &mut rng)?;
        let at = self.trace.instructions.len();
        self.apply(Instruction::SampleCategorical {
            candidates: candidates.to_vec(),
            probs: probs.to_vec(),
            decision,
        })?;
        self.rng = rng;
        Ok(Factor::Sampled {
            sample: at,
            index: 0,
        })
    }

    /// The value a factor resolves to in this schedule's trace (`None` for inferred).
    pub fn resolve(&self, f: &Factor) -> Result<Option<i64>, ScheduleError> {
        primitive::resolve(f, &self.trace.instructions, "resolve", "-")
    }

    /// Stages the region of `buffer` that one iteration of `loop_name` reads in a new
    /// buffer; returns its name. See [`crate::primitive::cache::cache_read`].
    pub fn cache_read(
        &mut self,
        loop_name: &str,
        buffer: &str,
        scope: MemScope,
    ) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::CacheRead {
            loop_name: loop_name.to_string(),
            buffer: buffer.to_string(),
            scope,
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }

    /// Stages the writes of `buffer` in loop `loop_name` in a new buffer written back
    /// at the end of each iteration; returns its name. See
    /// [`crate::primitive::cache::cache_write`].
    pub fn cache_write(
        &mut self,
        loop_name: &str,
        buffer: &str,
        scope: MemScope,
    ) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::CacheWrite {
            loop_name: loop_name.to_string(),
            buffer: buffer.to_string(),
            scope,
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }

    /// Moves the producer stage `stage_loop` into loop `at_loop` of its consumer. See
    /// [`crate::primitive::compute_location::compute_at`].
    pub fn compute_at(&mut self, stage_loop: &str, at_loop: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::ComputeAt {
            stage_loop: stage_loop.to_string(),
            at_loop: at_loop.to_string(),
        })
        .map(|_| ())
    }

    /// Inlines the stage `stage_loop` into its consumers. See
    /// [`crate::primitive::compute_location::compute_inline`].
    pub fn compute_inline(&mut self, stage_loop: &str) -> Result<(), ScheduleError> {
        self.apply(Instruction::ComputeInline {
            stage_loop: stage_loop.to_string(),
        })
        .map(|_| ())
    }

    /// Moves the init at the top of `loop_name`'s body into its own nest before
    /// `at_loop`; returns the new loops' names. See
    /// [`crate::primitive::compute_location::decompose_reduction`].
    pub fn decompose_reduction(
        &mut self,
        loop_name: &str,
        at_loop: &str,
    ) -> Result<Vec<String>, ScheduleError> {
        self.apply(Instruction::DecomposeReduction {
            loop_name: loop_name.to_string(),
            at_loop: at_loop.to_string(),
        })
    }

    /// Keeps the partial sums of `buffer`'s updates in a local accumulator across loop
    /// `loop_name` and adds them once after it; returns the accumulator's name. See
    /// [`crate::primitive::accumulate::accumulate_at`].
    pub fn accumulate_at(
        &mut self,
        loop_name: &str,
        buffer: &str,
    ) -> Result<String, ScheduleError> {
        let names = self.apply(Instruction::AccumulateAt {
            loop_name: loop_name.to_string(),
            buffer: buffer.to_string(),
        })?;
        Ok(names.into_iter().next().unwrap_or_default())
    }
}
