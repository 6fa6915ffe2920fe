//! The search space of a workload: a list of knobs, each with a few choices. A
//! candidate is one choice per knob; applying the knobs in order to the lowered
//! function gives the candidate's schedule and its [`Trace`], which is what the
//! database stores and what replays on a phone.
//!
//! Knobs are derived from the lowered function:
//! - every innermost loop gets a **tile** knob: no split, or split by 2, 4, 8 or 16
//!   (tail strategy) with the inner loop left serial, **vectorized** or **unrolled**;
//!   data-dependent BCR loops (kept rows and columns) get unroll-only tiles; a
//!   reduction loop (dense matmul `k`) may instead be **summed in 4, 8 or 16 vector
//!   lanes** on CPU targets;
//! - the outermost loop of every stage (or, when it runs once, the first loop of its
//!   perfect nest that runs more than once) gets a **parallel** knob (on/off);
//! - a perfect nest of three or more constant loops (a dense matmul) gets a
//!   **loop order** knob over the permutations of its innermost three loops;
//! - every BCR weight gets **row reordering**, **column reordering**,
//!   **load-redundancy elimination** and **block-row partitioning** (parallel) knobs
//!   and a rows-per-kernel **block tiling** knob (see [`crate::space::Knob`]).
//!
//! A knob whose primitive the schedule refuses for this function (say, vectorizing a
//! reduction) is skipped; since application is deterministic, the same choices always
//! give the same trace.

use schedule::primitive::reduction_vectorize::reduction_of;
use schedule::{Factor, Instruction, Remainder, Schedule, Trace};
use tir::rng::SplitMix64;
use tir::visit::for_each_stmt;
use tir::workload::Workload;
use tir::{Expr, Stmt};

/// What a tile knob does with the inner loop of its split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InnerAction {
    /// Leave it serial.
    Serial,
    /// Vectorize it.
    Vectorize,
    /// Unroll it.
    Unroll,
}

/// One choice of one knob: the instructions it applies (empty: do nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// A short description (`split n by 4, vectorize`).
    pub label: String,
    /// The instructions, applied in order; if any fails, none is kept.
    pub instructions: Vec<Instruction>,
}

/// A decision point of the search space.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    /// What it decides (`tile n`, `parallel init_m`, ...).
    pub name: String,
    /// Its choices; choice 0 is always "leave as is".
    pub choices: Vec<Choice>,
}

/// The search space of one workload.
#[derive(Debug, Clone)]
pub struct SearchSpace {
    /// The knobs, in the order they are applied.
    pub knobs: Vec<Knob>,
}

/// A point of the space: one choice index per knob.
pub type Decisions = Vec<usize>;

fn none() -> Choice {
    Choice {
        label: "as is".into(),
        instructions: Vec::new(),
    }
}

fn const_extent(e: &Expr) -> Option<i64> {
    match e {
        Expr::Int(v) => Some(*v),
        _ => None,
    }
}

/// The lane counts of the reduction choices of a tile knob: 4 (one NEON register of
/// f32), 8 and 16 (one AVX or AVX-512 register on hosts).
pub const REDUCTION_LANES: [i64; 3] = [4, 8, 16];

struct LoopInfo {
    name: String,
    extent: Option<i64>,
    innermost: bool,
    /// Directly inside the stage's top (no enclosing loop).
    outermost: bool,
    /// Names of the directly nested perfect chain below this loop (itself first).
    chain: Vec<(String, Option<i64>)>,
    /// Its body is one update of an element the loop does not index (a reduction,
    /// see [`schedule::primitive::reduction_vectorize::reduction_of`]).
    reduction: bool,
}

fn loops(body: &Stmt) -> Vec<LoopInfo> {
    fn chain_of(s: &Stmt) -> Vec<(String, Option<i64>)> {
        let mut out = Vec::new();
        let mut cur = s;
        while let Stmt::For {
            var, extent, body, ..
        } = cur
        {
            out.push((var.clone(), const_extent(extent)));
            cur = body;
        }
        out
    }
    fn walk(s: &Stmt, depth: usize, out: &mut Vec<LoopInfo>) {
        match s {
            Stmt::For {
                var, extent, body, ..
            } => {
                let mut inner = false;
                for_each_stmt(body, &mut |t| inner |= matches!(t, Stmt::For { .. }));
                out.push(LoopInfo {
                    name: var.clone(),
                    extent: const_extent(extent),
                    innermost: !inner,
                    outermost: depth == 0,
                    chain: chain_of(s),
                    reduction: reduction_of(s).is_ok(),
                });
                walk(body, depth + 1, out);
            }
            Stmt::Seq(items) => items.iter().for_each(|i| walk(i, depth, out)),
            Stmt::Let { body, .. } | Stmt::Allocate { body, .. } => walk(body, depth, out),
            Stmt::If {
                then, otherwise, ..
            } => {
                walk(then, depth, out);
                if let Some(o) = otherwise {
                    walk(o, depth, out);
                }
            }
            Stmt::Store { .. } | Stmt::Prefetch { .. } => {}
        }
    }
    let mut out = Vec::new();
    walk(body, 0, &mut out);
    out
}

fn split(loop_name: &str, f: i64) -> Instruction {
    Instruction::Split {
        loop_name: loop_name.to_string(),
        factors: vec![Factor::Infer, Factor::Const(f)],
        remainder: Remainder::Tail,
    }
}

/// True for a knob whose choices other than "as is" only make loops parallel.
fn only_parallelism(k: &Knob) -> bool {
    k.choices.len() > 1
        && k.choices[1..].iter().all(|c| {
            !c.instructions.is_empty()
                && c.instructions.iter().all(|i| {
                    matches!(
                        i,
                        Instruction::Parallel { .. }
                            | Instruction::PartitionBlockRows { .. }
                            | Instruction::PartitionOutputRows { .. }
                    )
                })
        })
}

/// True for the output-row partition knob (its choices partition a conv's output
/// rows).
fn partitions_output_rows(k: &Knob) -> bool {
    k.choices.iter().any(|c| {
        c.instructions
            .iter()
            .any(|i| matches!(i, Instruction::PartitionOutputRows { .. }))
    })
}

/// The BCR weights of a workload (names whose `_row_ptr` array is a parameter).
pub fn bcr_weights(w: &Workload) -> Vec<String> {
    w.func
        .params
        .iter()
        .filter_map(|p| p.name.strip_suffix("_row_ptr").map(str::to_string))
        .collect()
}

impl SearchSpace {
    /// Derives the space of `w` for CPU targets (see the module docs).
    pub fn new(w: &Workload) -> SearchSpace {
        SearchSpace::for_target(w, false)
    }

    /// Derives the space of `w`; with `gpu`, the outermost loops get thread-binding
    /// knobs (split into work-groups of 8, 32 or 64 work-items, guarded) instead of
    /// parallel knobs.
    pub fn for_target(w: &Workload, gpu: bool) -> SearchSpace {
        let mut knobs = Vec::new();
        // Only convs have output rows to partition (`oh` loops); elsewhere the knob
        // would be refused at every point.
        let mut output_rows = false;
        tir::visit::for_each_stmt(&w.func.body, &mut |s| {
            output_rows |= matches!(s, Stmt::For { var, .. }
                if var == schedule::primitive::bcr::OUTPUT_ROWS);
        });
        for weight in bcr_weights(w) {
            knobs.extend(
                crate::space_bcr::bcr_knobs(&weight, gpu, uniform_entries(w, &weight))
                    .into_iter()
                    .filter(|k| output_rows || !partitions_output_rows(k)),
            );
        }
        let info = loops(&w.func.body);
        // Loop order of dense matmul-like nests.
        for l in &info {
            if l.outermost && l.chain.len() >= 3 && l.chain.iter().all(|(_, e)| e.is_some()) {
                let tail: Vec<String> = l.chain[l.chain.len() - 3..]
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect();
                let perms = [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
                let mut choices = vec![none()];
                for p in perms {
                    let order: Vec<String> = p.iter().map(|i| tail[*i].clone()).collect();
                    choices.push(Choice {
                        label: format!("order {}", order.join(",")),
                        instructions: vec![Instruction::Reorder { order }],
                    });
                }
                knobs.push(Knob {
                    name: format!("loop order {}", tail.join(",")),
                    choices,
                });
            }
        }
        for l in &info {
            if l.innermost {
                let mut choices = vec![none()];
                match l.extent {
                    Some(e) => {
                        for f in [2i64, 4, 8, 16] {
                            if f > e {
                                continue;
                            }
                            let inner = format!("{}_1", l.name);
                            for (action, label) in [
                                (InnerAction::Serial, ""),
                                (InnerAction::Vectorize, ", vectorize"),
                                (InnerAction::Unroll, ", unroll"),
                            ] {
                                let mut ins = vec![split(&l.name, f)];
                                match action {
                                    InnerAction::Serial => {}
                                    InnerAction::Vectorize => ins.push(Instruction::Vectorize {
                                        loop_name: inner.clone(),
                                    }),
                                    InnerAction::Unroll => ins.push(Instruction::Unroll {
                                        loop_name: inner.clone(),
                                    }),
                                }
                                choices.push(Choice {
                                    label: format!("split {} by {f}{label}", l.name),
                                    instructions: ins,
                                });
                            }
                        }
                        // A reduction sums in vector lanes instead (CPU targets; a
                        // GPU work-item's loop stays serial).
                        if l.reduction && !gpu {
                            for lanes in REDUCTION_LANES.into_iter().filter(|f| *f <= e) {
                                choices.push(Choice {
                                    label: format!("sum {} in {lanes} lanes", l.name),
                                    instructions: vec![Instruction::VectorizeReduction {
                                        loop_name: l.name.clone(),
                                        lanes,
                                    }],
                                });
                            }
                        }
                        if e <= 16 {
                            choices.push(Choice {
                                label: format!("vectorize {}", l.name),
                                instructions: vec![Instruction::Vectorize {
                                    loop_name: l.name.clone(),
                                }],
                            });
                            choices.push(Choice {
                                label: format!("unroll {}", l.name),
                                instructions: vec![Instruction::Unroll {
                                    loop_name: l.name.clone(),
                                }],
                            });
                        }
                    }
                    None => {
                        for f in [2i64, 4] {
                            choices.push(Choice {
                                label: format!("split {} by {f}, unroll", l.name),
                                instructions: vec![
                                    split(&l.name, f),
                                    Instruction::Unroll {
                                        loop_name: format!("{}_1", l.name),
                                    },
                                ],
                            });
                        }
                    }
                }
                if choices.len() > 1 {
                    knobs.push(Knob {
                        name: format!("tile {}", l.name),
                        choices,
                    });
                }
            }
        }
        for l in &info {
            if gpu && l.outermost && l.extent.is_some_and(|e| e > 1) {
                let mut choices = vec![none()];
                for t in [8i64, 32, 64] {
                    choices.push(Choice {
                        label: format!("bind {} to {t}-item work-groups", l.name),
                        instructions: vec![
                            Instruction::Split {
                                loop_name: l.name.clone(),
                                factors: vec![Factor::Infer, Factor::Const(t)],
                                remainder: Remainder::Guard,
                            },
                            Instruction::Bind {
                                loop_name: format!("{}_0", l.name),
                                axis: tir::ForKind::BlockX,
                            },
                            Instruction::Bind {
                                loop_name: format!("{}_1", l.name),
                                axis: tir::ForKind::ThreadX,
                            },
                        ],
                    });
                }
                knobs.push(Knob {
                    name: format!("bind {}", l.name),
                    choices,
                });
                continue;
            }
            // The first loop of the stage's perfect nest with more than one iteration
            // (a batch-1 conv's stages start with the image loop, of one).
            let first_wide = l
                .chain
                .iter()
                .find(|(_, e)| e.is_some_and(|e| e > 1))
                .map(|(n, _)| n.clone());
            if let (true, Some(name)) = (l.outermost, first_wide) {
                knobs.push(Knob {
                    name: format!("parallel {name}"),
                    choices: vec![
                        none(),
                        Choice {
                            label: format!("parallel {name}"),
                            instructions: vec![Instruction::Parallel { loop_name: name }],
                        },
                    ],
                });
            }
        }
        SearchSpace { knobs }
    }

    /// The space for candidates that run with `threads` OpenMP threads: with one
    /// thread the knobs whose only effect is parallelism (`parallel LOOP`, block-row
    /// partitioning) are left out (they add fork/join overhead and nothing else); any
    /// other count, or none, keeps the space as it is.
    pub fn for_threads(self, threads: Option<u32>) -> SearchSpace {
        if threads != Some(1) {
            return self;
        }
        SearchSpace {
            knobs: self
                .knobs
                .into_iter()
                .filter(|k| !only_parallelism(k))
                .collect(),
        }
    }

    /// `base` with every parallelism-only knob (see [`SearchSpace::for_threads`]) set
    /// to its parallel choice, the output-row partition left as it is (it excludes the
    /// block-row partition; see [`SearchSpace::output_rows_point`]): the
    /// multi-threaded form of a starting point. `None` when the space has no such knob.
    pub fn parallel_point(&self, base: &Decisions) -> Option<Decisions> {
        let mut d = base.clone();
        let mut any = false;
        for (k, knob) in self.knobs.iter().enumerate() {
            if only_parallelism(knob) && !partitions_output_rows(knob) {
                if let (Some(slot), true) = (d.get_mut(k), knob.choices.len() > 1) {
                    *slot = 1;
                    any = true;
                }
            }
        }
        any.then_some(d)
    }

    /// `base` (a register-tiled point) in parallel by output rows: each conv weight's
    /// output rows in [`crate::space_bcr::OUTPUT_ROW_PARTS`]`[1]` parallel parts, the
    /// other parallelism-only knobs (loops outside the BCR nest) parallel, block rows
    /// not partitioned. For convs with few block rows, whose block-row partition has
    /// little or nothing to share out. `None` when no weight of `w` takes the
    /// partition (no output-row loop: FC, GRU, LSTM) or `base` already has it.
    pub fn output_rows_point(&self, w: &Workload, base: &Decisions) -> Option<Decisions> {
        let mut d = base.clone();
        for (k, knob) in self.knobs.iter().enumerate() {
            if only_parallelism(knob) && !partitions_output_rows(knob) {
                let block_rows = knob.choices[1]
                    .instructions
                    .iter()
                    .any(|i| matches!(i, Instruction::PartitionBlockRows { .. }));
                d[k] = usize::from(!block_rows);
            }
        }
        let mut any = false;
        for weight in bcr_weights(w) {
            let Some(k) = self.knob_index(&crate::space_bcr::output_row_partition_knob(&weight))
            else {
                continue;
            };
            if d[k] != 0 {
                continue;
            }
            // Choice 1 + k makes OUTPUT_ROW_PARTS[k] parts: 4.
            let four_parts = 1 + 1;
            let mut trial = d.clone();
            trial[k] = four_parts;
            if let Ok((_, eff)) = self.apply(w, &trial) {
                if eff[k] == four_parts {
                    d = trial;
                    any = true;
                }
            }
        }
        any.then_some(d)
    }

    /// The decisions whose schedule of `w` has exactly `trace` (a trace made in a
    /// space of the same workload, e.g. the best record at another thread count), or
    /// `None` when no point of this space makes it (a knob it does not have, a
    /// choice refused here). Each knob takes the longest of its choices that the
    /// rest of the trace starts with; the result is checked by applying it.
    pub fn decisions_of(&self, w: &Workload, trace: &schedule::Trace) -> Option<Decisions> {
        let ins = &trace.instructions;
        let mut pos = 0;
        let mut d = Vec::with_capacity(self.knobs.len());
        for knob in &self.knobs {
            let taken = knob
                .choices
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(_, c)| {
                    !c.instructions.is_empty() && ins[pos..].starts_with(&c.instructions)
                })
                .max_by_key(|(_, c)| c.instructions.len());
            match taken {
                Some((i, c)) => {
                    d.push(i);
                    pos += c.instructions.len();
                }
                None => d.push(0),
            }
        }
        if pos != ins.len() {
            return None;
        }
        let (s, _) = self.apply(w, &d).ok()?;
        (s.trace() == trace).then_some(d)
    }

    /// Number of points (saturating).
    pub fn size(&self) -> u128 {
        self.knobs
            .iter()
            .fold(1u128, |a, k| a.saturating_mul(k.choices.len() as u128))
    }

    /// A uniformly random point.
    pub fn random(&self, rng: &mut SplitMix64) -> Decisions {
        self.knobs
            .iter()
            .map(|k| (rng.next_u64() % k.choices.len() as u64) as usize)
            .collect()
    }

    /// The default point (every knob "as is"): the lowered function unchanged.
    pub fn default_point(&self) -> Decisions {
        vec![0; self.knobs.len()]
    }

    /// The point the e-graph pass chooses: the default point with the BCR knobs set
    /// from `choices` (see [`crate::space_bcr::egraph_decisions`]). Knobs this space
    /// does not have are ignored.
    ///
    /// Every dense reduction loop with a "sum in lanes" choice is summed in the most
    /// lanes offered (16 where the loop is that long): without it a dense matrix-vector
    /// product stays a scalar chain of additions (FC 2048x2048 on this 2-core x86 host,
    /// 1 thread: 3.43 ms as lowered, 0.37 ms in 16 lanes).
    pub fn egraph_point(&self, choices: &[tir::egraph::bcr_choice::BcrChoice]) -> Decisions {
        let mut d = self.default_point();
        for (k, knob) in self.knobs.iter().enumerate() {
            let widest = knob
                .choices
                .iter()
                .enumerate()
                .filter_map(|(i, c)| match c.instructions.as_slice() {
                    [Instruction::VectorizeReduction { lanes, .. }] => Some((*lanes, i)),
                    _ => None,
                })
                .max();
            if let Some((_, i)) = widest {
                d[k] = i;
            }
        }
        for c in choices {
            for (name, choice) in crate::space_bcr::egraph_decisions(c) {
                if let Some(k) = self.knob_index(&name) {
                    if let (Some(slot), true) = (d.get_mut(k), choice < self.knobs[k].choices.len())
                    {
                        *slot = choice;
                    }
                }
            }
        }
        d
    }

    /// `base` with every BCR weight of `w` in its windowed form (see
    /// [`crate::space_bcr::window_decisions`]): rows vectorized by the fewest masked
    /// lanes (with `padded`, padded lanes) holding an entry's rows, block rows kept in
    /// register windows. `None` when no weight can take it (entries of more rows than
    /// the lanes, a GPU space without the knobs) or nothing changes.
    pub fn window_point(&self, w: &Workload, base: &Decisions, padded: bool) -> Option<Decisions> {
        let mut d = base.clone();
        for weight in bcr_weights(w) {
            let Some(max_rows) = max_kept_rows(w, &weight) else {
                continue;
            };
            for (name, choice) in
                crate::space_bcr::window_decisions(&weight, max_rows, padded).unwrap_or_default()
            {
                if let Some(k) = self.knob_index(&name) {
                    if choice < self.knobs[k].choices.len() {
                        d[k] = choice;
                    }
                }
            }
        }
        (d != *base).then_some(d)
    }

    /// `base` with every BCR weight of `w` register-tiled (see
    /// [`crate::space_bcr::register_tile_knob`]): the first piece width of
    /// [`crate::space_bcr::tile_lane_preference`] (by the output width or `N`) and row
    /// count of [`crate::space_bcr::tile_row_preference`] the schedule accepts, with offsets
    /// specialized where the entries allow it, without the knobs that conflict with it
    /// or that it makes redundant (row vectorization, windows, accumulation, block
    /// tiling, load-redundancy elimination). `None` when no
    /// weight takes a tile (one output position per row, a GPU space) or `base` already
    /// has them.
    pub fn tile_point(&self, w: &Workload, base: &Decisions) -> Option<Decisions> {
        self.tile_point_with_rows(w, base, None)
    }

    /// [`SearchSpace::tile_point`] with tiles of one kept row: for narrow outputs the
    /// compiler keeps a one-row tile in registers where it left a taller tile's
    /// accumulators on the stack (14-wide conv 3x3 32->64 at 75%, 16x16 blocks, 8-lane
    /// pieces: 8 rows 77 us, 1 row 45 us; 7-wide conv 64->128, 4-lane pieces: 8 rows
    /// 122 us, 1 row 87 us; the 56-wide benchmark conv is faster with 5 rows). `None`
    /// where no weight takes it. (Where it is the tile point itself, the tuner measures
    /// the trace once.)
    pub fn one_row_tile_point(&self, w: &Workload, base: &Decisions) -> Option<Decisions> {
        self.tile_point_with_rows(w, base, Some(1))
    }

    /// `d` with every weight's entries versioned by kept-column count (the
    /// [`crate::space_bcr::offset_specialization_knob`]'s choice
    /// [`crate::space_bcr::VERSION_CHOICE`]) where `d` specializes their offsets:
    /// the same entries with their kept-columns loops unrolled (a 7-wide conv
    /// 64->128, one-row tiles, 16x16 blocks at 75%: 91 us specialized, 66 us
    /// versioned; the 56-wide benchmark conv with 5-row tiles ran about 5% slower).
    /// `None` where nothing changes.
    pub fn versioned_point(&self, d: &Decisions) -> Option<Decisions> {
        let mut out = d.clone();
        for (k, knob) in self.knobs.iter().enumerate() {
            let versions = knob
                .choices
                .get(crate::space_bcr::VERSION_CHOICE)
                .is_some_and(|c| {
                    matches!(
                        c.instructions.as_slice(),
                        [Instruction::VersionColumnCounts { .. }]
                    )
                });
            if versions && out.get(k) == Some(&1) {
                out[k] = crate::space_bcr::VERSION_CHOICE;
            }
        }
        (out != *d).then_some(out)
    }

    /// The tile point with `rows` kept rows per tile, or (`None`) the first row count
    /// of the preference the schedule accepts.
    fn tile_point_with_rows(
        &self,
        w: &Workload,
        base: &Decisions,
        rows: Option<i64>,
    ) -> Option<Decisions> {
        let mut d = base.clone();
        for weight in bcr_weights(w) {
            let Some(k) = self.knob_index(&crate::space_bcr::register_tile_knob(&weight)) else {
                continue;
            };
            if d.get(k).is_some_and(|c| *c != 0) {
                continue;
            }
            // The tile replaces the other forms of an entry's rows loop (row
            // vectorization, which the e-graph's point may hold, windows, block
            // tiling, accumulation), and it loads each kept input row once per column
            // for all its rows already, so load-redundancy elimination's gather would
            // only copy (FC 1024 N=64 90% 32x32, 5-row tiles: 128 us without it, 356
            // us with it): all of them are left out.
            let mut others_off = d.clone();
            for name in [
                crate::space_bcr::lre_knob(&weight),
                crate::space_bcr::row_vectorization_knob(&weight),
                crate::space_bcr::block_row_window_knob(&weight),
                format!("accumulate rows {weight}"),
                format!("rows per kernel {weight}"),
            ] {
                if let Some(l) = self.knob_index(&name) {
                    others_off[l] = 0;
                }
            }
            // Turned on where the schedule takes them (a refusal reads as 0 below):
            // offsets are specialized where the entries allow it (uniform kept
            // counts): the tile's loops then have constant extents (conv 3x3 90%
            // 32x32, 5-row tiles, fastest of two runs each: 394 us without, 374 us
            // with), and a 16-trial search does not always find it (the eighth
            // session's benchmark run kept the tile without it); a conv's kept columns
            // are decoded (channel and taps, by division) once per entry into a table
            // rather than once per row of output positions (conv 3x3 64->64 56x56 90%
            // 32x32, 5-row tiles: 312-317 us -> 273-285 us).
            let also_on: Vec<usize> = [
                crate::space_bcr::offset_specialization_knob(&weight),
                crate::space_bcr::column_decoding_knob(&weight),
            ]
            .iter()
            .filter_map(|name| self.knob_index(name))
            .collect();
            for &l in &also_on {
                others_off[l] = 1;
            }
            let Some(max_rows) = max_kept_rows(w, &weight) else {
                continue;
            };
            let lanes = crate::space_bcr::tile_lane_preference(innermost_positions(w));
            let row_counts = match rows {
                Some(r) => vec![r],
                None => crate::space_bcr::tile_row_preference(max_rows),
            };
            let tries = lanes
                .iter()
                .flat_map(|l| row_counts.iter().map(move |r| (*r, *l)));
            for (r, l) in tries {
                let Some(c) = crate::space_bcr::tile_choice(r, l) else {
                    continue;
                };
                let mut trial = others_off.clone();
                trial[k] = c;
                if let Ok((_, eff)) = self.apply(w, &trial) {
                    if eff.get(k) == Some(&c) {
                        // A refused specialization or decoding table reads as 0 in
                        // the effective choices.
                        for &l in &also_on {
                            trial[l] = eff[l];
                        }
                        d = trial;
                        break;
                    }
                }
            }
        }
        (d != *base).then_some(d)
    }

    /// The position of the knob named `name` in this space, if it has one.
    fn knob_index(&self, name: &str) -> Option<usize> {
        self.knobs.iter().position(|k| k.name == name)
    }

    /// Applies the choices to a fresh schedule of `w`. Choices the schedule refuses
    /// are skipped (all of a choice's instructions or none). Returns the schedule and
    /// the effective decisions (refused knobs read as 0).
    pub fn apply(
        &self,
        w: &Workload,
        d: &Decisions,
    ) -> Result<(Schedule, Decisions), schedule::ScheduleError> {
        let mut s = Schedule::from_workload(w)?;
        let mut effective = Vec::with_capacity(self.knobs.len());
        for (k, knob) in self.knobs.iter().enumerate() {
            let c = d.get(k).copied().unwrap_or(0).min(knob.choices.len() - 1);
            let before = s.clone();
            let mut ok = true;
            for ins in &knob.choices[c].instructions {
                if s.apply(ins.clone()).is_err() {
                    ok = false;
                    break;
                }
            }
            if ok {
                effective.push(c);
            } else {
                s = before;
                effective.push(0);
            }
        }
        Ok((s, effective))
    }

    /// Mutates one random knob of `d` to another choice.
    pub fn mutate(&self, d: &Decisions, rng: &mut SplitMix64) -> Decisions {
        let mut out = d.clone();
        let movable: Vec<usize> = (0..self.knobs.len())
            .filter(|k| self.knobs[*k].choices.len() > 1)
            .collect();
        if movable.is_empty() {
            return out;
        }
        let k = movable[(rng.next_u64() % movable.len() as u64) as usize];
        let n = self.knobs[k].choices.len() as u64;
        let cur = out[k] as u64;
        out[k] = ((cur + 1 + rng.next_u64() % (n - 1)) % n) as usize;
        out
    }

    /// Uniform crossover of two points.
    pub fn crossover(&self, a: &Decisions, b: &Decisions, rng: &mut SplitMix64) -> Decisions {
        a.iter()
            .zip(b)
            .map(|(x, y)| if rng.next_u64() & 1 == 0 { *x } else { *y })
            .collect()
    }

    /// Human-readable description of a point's non-default choices.
    pub fn describe(&self, d: &Decisions) -> String {
        let parts: Vec<&str> = self
            .knobs
            .iter()
            .zip(d)
            .filter(|(_, c)| **c != 0)
            .map(|(k, c)| k.choices[*c].label.as_str())
            .collect();
        if parts.is_empty() {
            "default".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The trace of a point.
pub fn trace_of(
    space: &SearchSpace,
    w: &Workload,
    d: &Decisions,
) -> Result<Trace, schedule::ScheduleError> {
    Ok(space.apply(w, d)?.0.trace().clone())
}

/// The extent of the innermost loop over output positions a register tile cuts into
/// pieces: a conv's output width, an FC's columns `N`; `None` for other workloads.
fn innermost_positions(w: &Workload) -> Option<usize> {
    match &w.spec {
        tir::spec::WorkloadSpec::Conv2d(c) => c.out_w(),
        tir::spec::WorkloadSpec::Fc(f) => Some(f.n),
        _ => None,
    }
}

/// The most rows an entry of `weight` keeps in `w` (the largest difference of
/// consecutive entries of its `row_ptr` array); `None` when it has no BCR arrays.
/// True when every entry of BCR weight `weight` of `w` keeps the same numbers of rows
/// and columns (so its offsets can be specialized), or its arrays are missing.
fn uniform_entries(w: &Workload, weight: &str) -> bool {
    let strides_equal = |name: &str| {
        w.weights
            .get(&format!("{weight}_{name}"))
            .and_then(|t| t.as_i32())
            .is_none_or(|p| p.windows(2).all(|s| s[1] - s[0] == p[1] - p[0]))
    };
    strides_equal("row_ptr") && strides_equal("col_ptr")
}

fn max_kept_rows(w: &Workload, weight: &str) -> Option<i64> {
    let row_ptr = w
        .weights
        .get(&format!("{weight}_row_ptr"))
        .and_then(|t| t.as_i32())?;
    Some(
        row_ptr
            .windows(2)
            .map(|p| i64::from(p[1] - p[0]))
            .max()
            .unwrap_or(0),
    )
}
