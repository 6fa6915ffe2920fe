//! BCR knobs of the search space: the GRIM optimizations as choices. They come first
//! in the knob list, in the order the BCR primitives compose (row reordering, column
//! reordering, load-redundancy elimination, row vectorization (CPU targets, padded or
//! masked), accumulation of each row's partial sums in registers, block-row
//! partitioning, block-row windows, block tiling, offset specialization).
//!
//! The e-graph pass decides two of them for the pipeline's default schedule and the
//! search's starting point ([`egraph_decisions`]): load-redundancy elimination and row
//! reordering, read off the extracted BCR compute form
//! ([`tir::egraph::bcr_choice`]); the same point vectorizes the rows by 4.

use crate::space::{Choice, Knob};
use schedule::{ColumnOrder, Factor, Instruction, Remainder, RowOrder};
use tir::egraph::bcr_choice::BcrChoice;

/// Name of the row-reordering knob of `weight`; choice 1 is by block column.
pub fn row_reordering_knob(weight: &str) -> String {
    format!("row reordering {weight}")
}

/// Name of the load-redundancy-elimination knob of `weight`; choice 1 applies it.
pub fn lre_knob(weight: &str) -> String {
    format!("load-redundancy elimination {weight}")
}

/// The knob choices that express the e-graph's choice for one weight, as `(knob
/// name, choice index)`: row reordering by block column when a shared gather spans
/// blocks, load-redundancy elimination when some gather is shared, "as is"
/// otherwise. Column reordering is not derived (the extracted form cannot express it,
/// see [`tir::egraph::bcr_choice`]) and keeps its "as is" default.
///
/// One knob is not the e-graph's: the rows are vectorized by 4 (one NEON register of
/// f32) on CPU targets, since the kept-rows loop is the only data-parallel loop of a
/// batch-1 BCR kernel; where the primitive refuses (a conv's accumulator is too large)
/// the knob is skipped, and GPU spaces have no such knob.
///
/// Nor is offset specialization: when every entry of the weight has the same shape
/// (a layer pruned at one rate whose block size divides it) the entry counts become
/// constants, so the C compiler unrolls the per-entry loops (FC 2048, 90%, 32x32, a
/// hand-written loop: about 4x faster); where the entries of the pattern differ (the
/// kept weights spread over the blocks) the knob versions the entry's code by
/// kept-column count instead, and where other primitives made them differ (row
/// reordering's groups) the primitive refuses and the knob is skipped.
///
/// For a conv ([`window_input`]) the e-graph's shared gathers are not applied: the
/// input row of a kept column is a window of the zero-padded input that the kernel
/// reads in place, so sharing it means copying `OH·OW` values per kept column, which
/// measured slower than reading the window again (conv 3x3 64->64 56x56, 90%, 32x32
/// blocks, 1 thread: 1.95 ms with load-redundancy elimination, 0.81 ms without); the
/// tuner still tries both.
pub fn egraph_decisions(c: &BcrChoice) -> Vec<(String, usize)> {
    let shared = !window_input(c);
    vec![
        (row_vectorization_knob(&c.weight), 1),
        (
            row_reordering_knob(&c.weight),
            usize::from(shared && c.row_reordering()),
        ),
        (
            lre_knob(&c.weight),
            usize::from(shared && c.load_redundancy_elimination()),
        ),
        (offset_specialization_knob(&c.weight), 1),
    ]
}

/// True when the weight's input rows are conv windows read in place (`im2col(X)`).
pub fn window_input(c: &BcrChoice) -> bool {
    c.input.starts_with("im2col(")
}

fn choice(label: String, instructions: Vec<Instruction>) -> Choice {
    Choice {
        label,
        instructions,
    }
}

fn as_is() -> Choice {
    choice("as is".into(), Vec::new())
}

/// The kept-column loop and the output buffer of BCR weight `weight` in lowered code
/// (`W` -> `j`/`Y`; RNN weights `W_ih` -> `gi_j`/`gi`, `W_hh` -> `gh_j`/`gh`).
fn accumulation_of(weight: &str) -> (String, String) {
    match weight {
        "W_ih" => ("gi_j".into(), "gi".into()),
        "W_hh" => ("gh_j".into(), "gh".into()),
        _ => ("j".into(), "Y".into()),
    }
}

/// Name of the row-vectorization knob of `weight`; choice `k` vectorizes by
/// [`ROW_LANES`]`[k - 1]` rows.
pub fn row_vectorization_knob(weight: &str) -> String {
    format!("vectorize rows {weight}")
}

/// Name of the column-decoding knob of `weight`; choice 1 applies
/// [`schedule::primitive::bcr::tabulate_column_decoding`] (refused, so skipped, where
/// no kept column is decoded by a division: FCs, recurrent layers, 1x1 convs).
pub fn column_decoding_knob(weight: &str) -> String {
    format!("tabulate column decoding {weight}")
}

/// Name of the offset-specialization knob of `weight`; choice 1 applies
/// [`schedule::primitive::bcr::specialize_offsets`] when the weight's entries all have
/// one shape (refused, so skipped, where other primitives made them differ: row
/// reordering's groups), and on CPU targets
/// [`schedule::primitive::bcr::version_column_counts`] when they differ (the kept
/// weights spread unevenly over the blocks); with one shape, CPU targets have the
/// versioning as choice 2 ([`VERSION_CHOICE`]).
pub fn offset_specialization_knob(weight: &str) -> String {
    format!("specialize offsets {weight}")
}

/// The choice of the [`offset_specialization_knob`] that versions the entries by
/// kept-column count where the entries all have one shape (CPU targets).
pub const VERSION_CHOICE: usize = 2;

/// The lane counts the row-vectorization knob offers: 4 (one NEON register of f32),
/// 8 (two, or one AVX register on hosts), 16 (four, or one AVX-512 register).
pub const ROW_LANES: [i64; 3] = [4, 8, 16];

/// The lane counts the knob offers with masked lanes instead of padded rows (after the
/// padded ones): one AVX or AVX-512 register, or two AVX-512 registers, the entry
/// sizes [`block_row_window_knob`] takes (an entry's rows in one chunk).
pub const MASKED_ROW_LANES: [i64; 3] = [8, 16, 32];

/// Name of the block-row window knob of `weight`; choice 1 applies
/// [`schedule::primitive::bcr::window_block_rows`] (refused, so skipped, unless the
/// rows are vectorized with as many lanes as an entry keeps rows).
pub fn block_row_window_knob(weight: &str) -> String {
    format!("block-row windows {weight}")
}

/// The kept-row counts the register-tile knob offers (choice `1 + k` takes
/// `TILE_ROWS[k]`): tiles of up to 6 rows x 64 positions, or 10 x 32, fit AVX-512's
/// 32 registers (larger ones are refused, see
/// [`schedule::primitive::bcr::MAX_TILE`]).
pub const TILE_ROWS: [i64; 8] = [1, 2, 3, 4, 5, 6, 8, 10];

/// Output positions per vector piece of a register tile the knob offers (choice
/// `1 + l * TILE_ROWS.len() + k` takes `TILE_LANES[l]` and `TILE_ROWS[k]`): one
/// AVX-512 register of f32 (four NEON registers), one AVX register, one NEON or SSE
/// register. Short position loops want short pieces: a conv with 7 output columns
/// (MNIST's third conv, 64->128 at 75% in 16x16 blocks, 8 kept rows per entry) ran in
/// 314 us with 4 rows x 16 lanes (one narrow piece of 7), 186 us with 8 x 8 and 162 us
/// with 8 x 4 (a piece and an overlapping one, see
/// [`schedule::primitive::bcr::register_tile`]).
pub const TILE_LANES: [i64; 3] = [16, 8, 4];

/// The register-tile knob's choice for `rows` rows of `lanes`-lane pieces, if it has
/// one.
pub fn tile_choice(rows: i64, lanes: i64) -> Option<usize> {
    let r = TILE_ROWS.iter().position(|t| *t == rows)?;
    let l = TILE_LANES.iter().position(|t| *t == lanes)?;
    Some(1 + l * TILE_ROWS.len() + r)
}

/// The piece widths to try first for a register tile over `positions` output
/// positions (the innermost position loop: a conv's output width, an FC's N): the
/// widest that leaves at least one full piece first (56: 16; 14: 8; 7: 4), then the
/// others from the widest; all of them, widest first, when `positions` is unknown.
pub fn tile_lane_preference(positions: Option<usize>) -> Vec<i64> {
    let mut l: Vec<i64> = TILE_LANES.to_vec();
    if let Some(p) = positions {
        if let Some(i) = l.iter().position(|w| *w as usize <= p) {
            let first = l.remove(i);
            l.insert(0, first);
        }
    }
    l
}

/// Name of the register-tile knob of `weight`; choice `1 + k` applies
/// [`schedule::primitive::bcr::register_tile`] with `TILE_ROWS[k]` rows (refused, so
/// skipped, where an output has one position per row or a tile would not fit).
pub fn register_tile_knob(weight: &str) -> String {
    format!("register tile {weight}")
}

/// The register-tile row counts to try first for entries keeping `max_rows` rows:
/// fewest rows left over for the one-row rest loop first, then more rows per tile
/// (10 kept rows: 10, 5, 2 ...; 12: 6, 4, 3 ...).
pub fn tile_row_preference(max_rows: i64) -> Vec<i64> {
    let mut r: Vec<i64> = TILE_ROWS.iter().copied().filter(|r| *r > 1).collect();
    r.sort_by_key(|t| (max_rows.max(1) % t, -t));
    r.push(1);
    r
}

/// The knob choices of the windowed starting point for `weight`, whose entries keep
/// at most `max_rows` rows: rows vectorized with the fewest masked lanes that hold
/// them (with `padded`, the fewest padded lanes), block-row windows, and the values
/// prefetched [`PREFETCH_BYTES`]`[0]` bytes ahead. `None` when no lane count of the
/// kind holds them.
///
/// Both kinds are starting points: masked lanes move fewer bytes, padded ones need no
/// mask. On an AMD EPYC Zen 3 host (AVX2, FC 2048 at 90%, 1 thread, the two windowed
/// kernels alternating) the padded ones won: 16x16 blocks 66 against 87 us, 32x32 57
/// against 75 us; the tuner had kept masked or unwindowed rows (82 and 73 us).
pub fn window_decisions(weight: &str, max_rows: i64, padded: bool) -> Option<Vec<(String, usize)>> {
    let lanes = if padded {
        1 + ROW_LANES.iter().position(|l| *l >= max_rows)?
    } else {
        1 + ROW_LANES.len() + MASKED_ROW_LANES.iter().position(|l| *l >= max_rows)?
    };
    Some(vec![
        (row_vectorization_knob(weight), lanes),
        (block_row_window_knob(weight), 1),
        (prefetch_knob(weight), 1),
    ])
}

/// The prefetch distances offered, in bytes of values ahead of the current entry
/// (FC 2048 at 90%, the tuned windowed kernels with each: 16x16 72 -> 63 us at 2 and 8
/// KB, 32x32 44-47 -> 39-40 us at 2 KB, 64x16 41-45 -> 37-40 us; `grim-tune check`).
pub const PREFETCH_BYTES: [i64; 2] = [2048, 8192];

/// Parts the output-row partition knob offers (see [`output_row_partition_knob`]).
/// Two threads gain most with 4 (conv 3x3 64->64 56x56 90% 64x16, tiled: 2 parts
/// 325-358 us, 4 parts 208-215 us, 8 parts 211-226 us; the block-row partition's
/// best was 320 us).
pub const OUTPUT_ROW_PARTS: [i64; 3] = [2, 4, 8];

/// Name of the knob that runs a conv's output rows in parallel parts around the block
/// loop of BCR weight `weight` (see
/// [`schedule::primitive::bcr::partition_output_rows`]): choice `1 + k` makes
/// [`OUTPUT_ROW_PARTS`]`[k]` parts.
pub fn output_row_partition_knob(weight: &str) -> String {
    format!("output-row partition {weight}")
}

/// Name of the value-prefetch knob of `weight`; choice `1 + k` applies
/// [`schedule::primitive::bcr::prefetch_values`] [`PREFETCH_BYTES`]`[k]` bytes ahead.
pub fn prefetch_knob(weight: &str) -> String {
    format!("prefetch values {weight}")
}

/// The knobs for BCR weight `weight`; `gpu` leaves out row vectorization (work-items
/// are the GPU's lanes); `uniform_entries` (every entry keeps the same numbers of rows
/// and columns) picks what the [`offset_specialization_knob`] does.
pub fn bcr_knobs(weight: &str, gpu: bool, uniform_entries: bool) -> Vec<Knob> {
    let w = weight.to_string();
    let vectorize = (!gpu).then(|| Knob {
        name: row_vectorization_knob(&w),
        choices: as_is_then(
            ROW_LANES
                .into_iter()
                .map(|l| (l, false))
                .chain(MASKED_ROW_LANES.into_iter().map(|l| (l, true)))
                .map(|(l, masked)| {
                    choice(
                        format!(
                            "vectorize rows of {w} by {l}{}",
                            if masked { " (masked)" } else { "" }
                        ),
                        vec![Instruction::VectorizeRows {
                            weight: w.clone(),
                            lanes: l,
                            masked,
                        }],
                    )
                }),
        ),
    });
    let mut knobs = vec![
        Knob {
            name: row_reordering_knob(&w),
            choices: vec![
                as_is(),
                choice(
                    format!("reorder rows of {w} by block column"),
                    vec![Instruction::ReorderRows {
                        weight: w.clone(),
                        order: RowOrder::BlockColumn,
                    }],
                ),
                choice(
                    format!("reorder rows of {w} by row count"),
                    vec![Instruction::ReorderRows {
                        weight: w.clone(),
                        order: RowOrder::RowCount,
                    }],
                ),
            ],
        },
        Knob {
            name: format!("column reordering {w}"),
            choices: vec![
                as_is(),
                choice(
                    format!("reorder columns of {w} by first use"),
                    vec![Instruction::ReorderColumns {
                        weight: w.clone(),
                        order: ColumnOrder::FirstUse,
                    }],
                ),
                choice(
                    format!("reorder columns of {w} by use count"),
                    vec![Instruction::ReorderColumns {
                        weight: w.clone(),
                        order: ColumnOrder::UseCount,
                    }],
                ),
            ],
        },
        Knob {
            name: lre_knob(&w),
            choices: vec![
                as_is(),
                choice(
                    format!("eliminate redundant loads of {w}"),
                    vec![Instruction::EliminateRedundantLoads { weight: w.clone() }],
                ),
            ],
        },
    ];
    knobs.extend(vectorize);
    // Windows need row-vectorized entries, so GPU spaces do not have them either.
    let window = (!gpu).then(|| Knob {
        name: block_row_window_knob(&w),
        choices: vec![
            as_is(),
            choice(
                format!("keep the block rows of {w} in register windows"),
                vec![Instruction::WindowBlockRows { weight: w.clone() }],
            ),
        ],
    });
    knobs.extend([
        Knob {
            name: format!("accumulate rows {w}"),
            choices: vec![as_is(), {
                let (j, out) = accumulation_of(&w);
                choice(
                    format!("accumulate rows of {w} in registers"),
                    vec![Instruction::AccumulateAt {
                        loop_name: j,
                        buffer: out,
                    }],
                )
            }],
        },
        Knob {
            name: format!("block-row partition {w}"),
            choices: vec![
                as_is(),
                choice(
                    format!("partition {w} by block rows (parallel)"),
                    vec![Instruction::PartitionBlockRows { weight: w.clone() }],
                ),
            ],
        },
    ]);
    knobs.extend(window);
    // Register tiles unroll rows and vector pieces for C compilers; GPU spaces map
    // positions to work-items instead.
    knobs.extend((!gpu).then(|| Knob {
        name: register_tile_knob(&w),
        choices: as_is_then(TILE_LANES.into_iter().flat_map(|lanes| {
            let w = w.clone();
            TILE_ROWS.into_iter().map(move |r| {
                choice(
                    format!(
                        "register tiles of {r} row{} of {w} x {lanes}-lane pieces",
                        if r == 1 { "" } else { "s" }
                    ),
                    vec![Instruction::RegisterTile {
                        weight: w.clone(),
                        rows: r,
                        lanes,
                    }],
                )
            })
        })),
    }));
    knobs.extend([
        Knob {
            name: format!("rows per kernel {w}"),
            choices: as_is_then([2i64, 4].into_iter().map(|r| {
                choice(
                    format!("{r} rows of {w} per kernel"),
                    vec![Instruction::TileBlocks {
                        weight: w.clone(),
                        rows: Factor::Const(r),
                        cols: None,
                        remainder: Remainder::Tail,
                    }],
                )
            })),
        },
        Knob {
            name: column_decoding_knob(&w),
            choices: vec![
                as_is(),
                choice(
                    format!("tabulate the column decoding of {w}"),
                    vec![Instruction::TabulateColumnDecoding { weight: w.clone() }],
                ),
            ],
        },
    ]);
    // Parallel parts over a conv's output rows: GPU spaces bind positions to
    // work-items instead.
    knobs.extend((!gpu).then(|| Knob {
        name: output_row_partition_knob(&w),
        choices: as_is_then(OUTPUT_ROW_PARTS.into_iter().map(|parts| {
            choice(
                format!("partition the output rows of {w} into {parts} parallel parts"),
                vec![Instruction::PartitionOutputRows {
                    weight: w.clone(),
                    parts,
                }],
            )
        })),
    }));
    // A prefetch is a C hint; the OpenCL emitter leaves it out, so GPU spaces do not
    // have the knob.
    knobs.extend((!gpu).then(|| Knob {
        name: prefetch_knob(&w),
        choices: as_is_then(PREFETCH_BYTES.into_iter().map(|bytes| {
            choice(
                format!("prefetch the values of {w} {bytes} bytes ahead"),
                vec![Instruction::PrefetchValues {
                    weight: w.clone(),
                    bytes_ahead: bytes,
                }],
            )
        })),
    }));
    // Choice 1 makes the per-entry loops constant: by specializing the offsets where
    // every entry has one shape, else (CPU spaces) by one copy of the entry's code per
    // kept-column count. Uniform patterns on CPUs also get the copy as choice 2: its
    // kept-columns loops are unrolled, which GCC does not do past about 8 columns
    // (see [`schedule::primitive::bcr::version_column_counts`]).
    let specialize = choice(
        format!("specialize the entry offsets of {w}"),
        vec![Instruction::SpecializeOffsets { weight: w.clone() }],
    );
    let version = choice(
        format!("version the entries of {w} by kept-column count"),
        vec![Instruction::VersionColumnCounts { weight: w.clone() }],
    );
    knobs.push(Knob {
        name: offset_specialization_knob(&w),
        choices: match (gpu, uniform_entries) {
            (true, _) => vec![as_is(), specialize],
            (false, true) => vec![as_is(), specialize, version],
            (false, false) => vec![as_is(), version],
        },
    });
    knobs
}

/// "As is" followed by `choices` (choice 0 of every knob leaves the schedule alone).
fn as_is_then(choices: impl IntoIterator<Item = Choice>) -> Vec<Choice> {
    std::iter::once(as_is()).chain(choices).collect()
}
