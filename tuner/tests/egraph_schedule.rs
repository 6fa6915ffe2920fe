//! The compile pipeline uses the e-graph's BCR compute form: shared gathers in the
//! extracted form become load-redundancy elimination (and row reordering when the
//! gather spans blocks) in the default schedule, with fewer dynamic loads of the input
//! and the interpreter's results; dropping or replacing the rule changes the schedule.

use schedule::Instruction;
use std::path::PathBuf;
use std::process::Command;
use tir::egraph::rules::RuleSet;
use tir::visit::{count_loads_of, LOAD_COUNTER};
use tir::workload::Workload;
use tuner::pipeline::{default_schedule, interpret_scheduled, interpret_with, load_rules};
use tuner::space::SearchSpace;

/// Rows of a block share its kept columns (16x16 blocks, ~9 rows x 9 columns kept).
const WITHIN: &str = "bcr-fc:M=64,K=64,N=4,block=16x16,sparsity=0.7,seed=3";
/// 8x4 blocks at 10% sparsity keep all 4 columns: every block of a block column has
/// the same column set, so rows of different blocks can share one gather.
const ACROSS: &str = "bcr-fc:M=64,K=32,N=2,block=8x4,sparsity=0.1,seed=1";

fn wl(spec: &str) -> Workload {
    Workload::from_spec_str(spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// Dynamic loads of `buffer` when the schedule's function runs in the interpreter.
fn loads(s: &schedule::Schedule, w: &Workload, buffer: &str) -> i64 {
    let counted = count_loads_of(s.func(), buffer);
    let out = interpret_with(&counted, s.weights(), &w.random_inputs(1)).unwrap();
    out[LOAD_COUNTER].as_i32().unwrap()[0] as i64
}

/// Outputs of the schedule equal the interpreter's outputs for the lowered function,
/// bit for bit (row reordering by block column and LRE keep every sum's order).
fn assert_same_results(s: &schedule::Schedule, w: &Workload) {
    for seed in [1, 2] {
        let inputs = w.random_inputs(seed);
        let want = w.interpret(&inputs).unwrap();
        let got = interpret_scheduled(s, &inputs).unwrap();
        // Row vectorization reassociates each row's sum: equal up to rounding.
        let (_, rel) = codegen::run::max_error(&got, &want).unwrap();
        assert!(rel <= 1e-5, "seed {seed}: max relative difference {rel}");
    }
}

fn ops(s: &schedule::Schedule) -> Vec<String> {
    s.trace().instructions.iter().map(Instruction::op).collect()
}

#[test]
fn shared_gathers_within_blocks_become_load_redundancy_elimination() {
    let w = wl(WITHIN);
    let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
    let [c] = d.choices.as_slice() else {
        panic!("one BCR weight: {:?}", d.choices)
    };
    // The extracted form: one gather per block instead of one per kept row.
    assert_eq!(c.blocks, 16);
    assert_eq!(c.gathers_before, c.rows);
    assert_eq!(c.gathers_after, 16, "{c}");
    assert_eq!(c.rows_sharing, c.rows);
    assert!(c.fired.contains_key("share-gather"));
    assert!(c.cost_after < c.cost_before);
    assert!(c.load_redundancy_elimination() && !c.row_reordering());
    assert_eq!(
        ops(&d.schedule),
        [
            "eliminate_redundant_loads",
            "vectorize_rows",
            "specialize_offsets"
        ]
    );
    // Loads of X: Σ rows·cols·N as lowered, Σ cols·N with LRE.
    let lowered = schedule::Schedule::from_workload(&w).unwrap();
    let (before, after) = (loads(&lowered, &w, "X"), loads(&d.schedule, &w, "X"));
    assert!(after < before, "{after} >= {before}");
    let arrays = tir::lower::BcrArrays::from_matrix(w.matrices[0].bcr.as_ref().unwrap()).unwrap();
    let (mut want_before, mut want_after) = (0i64, 0i64);
    for b in 0..arrays.blocks {
        let r = (arrays.row_ptr[b + 1] - arrays.row_ptr[b]) as i64;
        let q = (arrays.col_ptr[b + 1] - arrays.col_ptr[b]) as i64;
        want_before += r * q * 4;
        want_after += q * 4;
    }
    assert_eq!((before, after), (want_before, want_after));
    assert_same_results(&d.schedule, &w);
    // Row vectorization reassociates each row's sum.
    assert!(d.max_rel_diff <= 1e-5, "{}", d.max_rel_diff);
}

#[test]
fn shared_column_sets_across_blocks_add_row_reordering() {
    let w = wl(ACROSS);
    let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
    let c = &d.choices[0];
    assert_eq!((c.blocks, c.classes), (64, 8));
    // Every class has the same shape: one e-graph run serves all eight.
    assert_eq!(c.runs, 1);
    assert!(c.cross_block_gathers > 0, "{c}");
    assert!(c.gathers_after < c.gathers_before);
    assert_eq!(
        ops(&d.schedule),
        [
            "reorder_rows",
            "eliminate_redundant_loads",
            "vectorize_rows",
            "specialize_offsets"
        ]
    );
    let lowered = schedule::Schedule::from_workload(&w).unwrap();
    let (before, after) = (loads(&lowered, &w, "X"), loads(&d.schedule, &w, "X"));
    // 8 groups (one per block column) of 4 columns, N = 2: 64 loads; LRE alone
    // (without the reordering) would load once per block: 64 blocks x 4 x 2 = 512.
    assert_eq!(after, 8 * 4 * 2, "before {before}");
    assert_eq!(before, c.rows as i64 * 4 * 2);
    assert_same_results(&d.schedule, &w);
}

/// A uniformly pruned GRU (the g2p encoder's shape) where a few blocks of a block
/// column happen to keep the same columns: merging them would leave groups of one
/// and two blocks, whose offsets could not be specialized, for 12 fewer gathers out
/// of 768. The default schedule keeps the entries uniform and specializes them.
#[test]
fn a_few_shared_column_sets_do_not_forfeit_offset_specialization() {
    let w = wl("bcr-gru:hidden=256,input=256,batch=1,block=16x16,sparsity=0.925,seed=1");
    let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
    assert_eq!(d.choices.len(), 2);
    for c in &d.choices {
        assert!(c.uniform_entries && !c.uniform_classes, "{c}");
        assert!(c.cross_block_gathers > 0 && c.classes * 2 > c.blocks, "{c}");
        assert!(c.reordering_forfeits_specialization(), "{c}");
        assert!(
            !c.row_reordering() && c.load_redundancy_elimination(),
            "{c}"
        );
        assert!(
            c.reason()
                .contains("would forfeit offset specialization -> load-redundancy elimination"),
            "{c}"
        );
    }
    assert_eq!(
        ops(&d.schedule),
        [
            "eliminate_redundant_loads",
            "vectorize_rows",
            "specialize_offsets",
            "eliminate_redundant_loads",
            "vectorize_rows",
            "specialize_offsets"
        ]
    );
    assert_same_results(&d.schedule, &w);
    // Uniform groups (ACROSS: 64 blocks in 8 classes of 8) are still reordered, and
    // their offsets specialized after (see the test above).
    let across = default_schedule(&wl(ACROSS), &RuleSet::shipped().unwrap()).unwrap();
    let c = &across.choices[0];
    assert!(c.uniform_classes && c.row_reordering(), "{c}");
}

#[test]
fn dropping_the_rule_through_the_api_changes_the_schedule() {
    let w = wl(WITHIN);
    let without = RuleSet::shipped()
        .unwrap()
        .without(&["share-gather"])
        .unwrap();
    let d = default_schedule(&w, &without).unwrap();
    let c = &d.choices[0];
    assert_eq!(c.gathers_after, c.gathers_before, "{c}");
    assert_eq!(c.shared_gathers, 0);
    assert!(!c.load_redundancy_elimination());
    // Only the row vectorization and offset specialization (every 16x16 block of
    // the 64x64 matrix keeps the same rows and columns), which are not the e-graph's
    // choice.
    assert_eq!(ops(&d.schedule), ["vectorize_rows", "specialize_offsets"]);
    assert_eq!(
        d.description,
        "vectorize rows of W by 4; specialize the entry offsets of W"
    );
    let mut vectorized = schedule::Schedule::from_workload(&w).unwrap();
    vectorized.vectorize_rows("W", 4).unwrap();
    vectorized.specialize_offsets("W").unwrap();
    assert_eq!(loads(&d.schedule, &w, "X"), loads(&vectorized, &w, "X"));
    assert!(RuleSet::shipped()
        .unwrap()
        .without(&["no-such-rule"])
        .is_err());
}

#[test]
fn the_search_starts_from_the_egraph_point() {
    let w = wl(ACROSS);
    let space = SearchSpace::new(&w);
    let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
    let point = space.egraph_point(&d.choices);
    assert_ne!(point, space.default_point());
    let (s, effective) = space.apply(&w, &point).unwrap();
    assert_eq!(effective, point);
    assert_eq!(s.trace(), d.schedule.trace());
}

fn grim_tune(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(args)
        .output()
        .expect("run grim-tune");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn researcher_file() -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tir",
        "tests",
        "rules",
        "share_merge.rules",
    ]
    .iter()
    .collect();
    p.display().to_string()
}

/// The researcher's workflow end to end: `build` says what the e-graph chose; the
/// same command without the shipped rule builds the lowered loop nest; with the
/// researcher's replacement rule (checked sound first) LRE comes back.
#[test]
fn a_researchers_rule_change_changes_the_built_schedule() {
    let out_dir = std::env::temp_dir().join(format!("grim-egraph-build-{}", std::process::id()));
    let out = out_dir.display().to_string();
    let base = ["build", "--workload", WITHIN, "--out", &out];
    let (ok, text, err) = grim_tune(&base);
    assert!(ok, "{err}");
    assert!(
        text.contains("bcr form  W: 16 gathers of X rows for 144 kept rows (cost "),
        "{text}"
    );
    assert!(
        text.contains("16 gathers shared by 144 rows within blocks -> load-redundancy elimination"),
        "{text}"
    );
    assert!(text.contains("schedule  eliminate redundant loads of W; vectorize rows of W by 4; specialize the entry offsets of W (interpreter check: max relative difference "), "{text}");
    let c = std::fs::read_to_string(out_dir.join("kernels.c")).unwrap();
    assert!(c.contains("xg"), "the LRE buffer is in the generated C");

    let mut dropped = base.to_vec();
    dropped.extend(["--drop-rule", "share-gather"]);
    let (ok, text, err) = grim_tune(&dropped);
    assert!(ok, "{err}");
    assert!(
        text.contains("144 gathers of X rows for 144 kept rows")
            && text.contains("no gather shared -> as lowered"),
        "{text}"
    );
    assert!(
        text.contains("schedule  vectorize rows of W by 4; specialize the entry offsets of W ("),
        "{text}"
    );
    let c = std::fs::read_to_string(out_dir.join("kernels.c")).unwrap();
    assert!(!c.contains("xg"));

    let file = researcher_file();
    let (ok, text, err) = grim_tune(&["rules", "check", &file]);
    assert!(ok, "{text}{err}");
    let mut replaced = dropped.clone();
    replaced.extend(["--rules", &file]);
    let (ok, text, err) = grim_tune(&replaced);
    assert!(ok, "{err}");
    assert!(
        text.contains("schedule  eliminate redundant loads of W"),
        "{text}"
    );
    let (ok, text, err) = grim_tune(&[
        "rules",
        "explain",
        "--workload",
        ACROSS,
        "--drop-rule",
        "share-gather",
        "--rules",
        &file,
    ]);
    assert!(ok, "{err}");
    assert!(
        text.contains("rules fired:   share-gather-merge x"),
        "{text}"
    );
    assert!(
        text.contains("cost before:   27200 (448 gathers of X rows, one per kept row)"),
        "{text}"
    );
    assert!(
        text.contains(
            "default schedule: reorder rows of W by block column; eliminate redundant loads of W; vectorize rows of W by 4"
        ),
        "{text}"
    );
    let (ok, _, err) = grim_tune(&[
        "build",
        "--workload",
        WITHIN,
        "--out",
        &out,
        "--drop-rule",
        "nope",
    ]);
    assert!(!ok);
    assert!(err.contains("cannot drop rule `nope`"), "{err}");
    let _ = std::fs::remove_dir_all(&out_dir);
    let _ = load_rules(&[], &[]).unwrap();
}

/// A conv reads its input windows in place: the default schedule does not apply the
/// e-graph's shared gathers (copying windows measured slower), says so, and still
/// matches the lowered function.
#[test]
fn conv_windows_are_read_in_place_by_default() {
    let w = wl("bcr-conv2d:C=8,H=12,W=12,O=16,k=3,pad=1,block=8x8,sparsity=0.8,seed=1");
    let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
    assert!(
        d.choices[0].load_redundancy_elimination(),
        "{}",
        d.choices[0]
    );
    assert!(!ops(&d.schedule).contains(&"eliminate_redundant_loads".to_string()));
    assert!(tuner::pipeline::choices_text(&d)
        .contains("(not applied: a conv reads its input windows in place"));
    assert_same_results(&d.schedule, &w);
}

/// Row vectorization is a CPU knob (4, 8, 16 padded lanes, then 8, 16, 32 masked,
/// after "as is"), and so are block-row windows; GPU spaces, whose lanes are
/// work-items, have neither.
#[test]
fn row_vectorization_is_a_cpu_knob() {
    let w = wl(WITHIN);
    let knob = tuner::space_bcr::row_vectorization_knob("W");
    let cpu = SearchSpace::for_target(&w, false);
    let k = cpu.knobs.iter().find(|k| k.name == knob).expect("CPU knob");
    assert_eq!(
        k.choices.len(),
        1 + tuner::space_bcr::ROW_LANES.len() + tuner::space_bcr::MASKED_ROW_LANES.len()
    );
    assert!(k.choices[4..].iter().all(|c| c.label.ends_with("(masked)")));
    assert!(k.choices[0].instructions.is_empty());
    let gpu = SearchSpace::for_target(&w, true);
    assert!(gpu.knobs.iter().all(|k| k.name != knob));
    // Windows need row-vectorized entries: a CPU knob too.
    let window = tuner::space_bcr::block_row_window_knob("W");
    assert!(cpu.knobs.iter().any(|k| k.name == window));
    assert!(gpu.knobs.iter().all(|k| k.name != window));
}

/// Dense reductions: the default schedule sums each `k` loop in the widest lanes the
/// space offers (16, or fewer for a short loop), the results stay within 1e-5 of the
/// interpreter, and GPU spaces offer no such choice.
#[test]
fn dense_reductions_are_summed_in_vector_lanes() {
    for (spec, want) in [
        (
            "fc:M=32,K=40,N=1,bias=1,act=relu,seed=2",
            vec!["sum k in 16 lanes"],
        ),
        ("fc:M=8,K=12,N=2,seed=3", vec!["sum k in 8 lanes"]),
        (
            "gru:input=24,hidden=16,batch=1,seed=4",
            vec!["sum gi_k in 16 lanes", "sum gh_k in 16 lanes"],
        ),
    ] {
        let w = wl(spec);
        let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
        assert_eq!(d.description, want.join("; "), "{spec}");
        assert!(
            ops(&d.schedule).iter().all(|o| o == "vectorize_reduction"),
            "{spec}: {:?}",
            ops(&d.schedule)
        );
        assert!(d.max_rel_diff <= 1e-5, "{spec}: {}", d.max_rel_diff);
        let gpu = SearchSpace::for_target(&w, true);
        assert!(gpu
            .knobs
            .iter()
            .all(|k| k.choices.iter().all(|c| !c.label.starts_with("sum "))));
    }
}

/// Asserts that schedule `s` of `w` computes the reference's `Y` (within 1e-5,
/// relative above 1) on the random inputs of `seed`.
fn assert_matches_reference(s: &schedule::Schedule, w: &Workload, seed: u64) {
    let inputs = w.random_inputs(seed);
    let got = interpret_scheduled(s, &inputs).unwrap();
    let want = w.interpret(&inputs).unwrap();
    for (a, b) in got["Y"]
        .as_f32()
        .unwrap()
        .iter()
        .zip(want["Y"].as_f32().unwrap())
    {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// Where the kept weights are spread unevenly over the blocks the offsets cannot be
/// specialized: the default schedule versions each entry's code by its kept-column
/// count instead (the same knob's choice), and still computes the reference's outputs.
#[test]
fn spread_blocks_get_versioned_instead_of_specialized() {
    let w = wl("bcr-fc:M=64,K=64,N=4,block=16x16,sparsity=0.7,spread=blocks,seed=3");
    let d = default_schedule(&w, &RuleSet::shipped().unwrap()).unwrap();
    let ops = ops(&d.schedule);
    assert!(
        ops.contains(&"version_column_counts".to_string()),
        "{ops:?}"
    );
    assert!(!ops.contains(&"specialize_offsets".to_string()), "{ops:?}");
    assert!(
        d.description
            .contains("version the entries of W by kept-column count"),
        "{}",
        d.description
    );
    assert_matches_reference(&d.schedule, &w, 3);
}

/// The constant-count knob: offset specialization and (CPU) versioning where the
/// entries all have one shape, versioning alone where they differ, specialization
/// alone on GPUs; the register-tile starting point's versioned form swaps the one for
/// the other and still computes the reference's outputs.
#[test]
fn the_constant_count_knob_offers_what_the_pattern_allows() {
    let labels = |w: &Workload, gpu: bool| -> Vec<String> {
        let space = SearchSpace::for_target(w, gpu);
        let k = space
            .knobs
            .iter()
            .find(|k| k.name == tuner::space_bcr::offset_specialization_knob("W"))
            .unwrap();
        k.choices.iter().map(|c| c.label.clone()).collect()
    };
    let uniform = wl("bcr-conv2d:C=8,O=16,H=7,W=7,k=3,pad=1,bias=1,block=8x8,sparsity=0.75,seed=1");
    assert_eq!(
        labels(&uniform, false),
        [
            "as is",
            "specialize the entry offsets of W",
            "version the entries of W by kept-column count"
        ]
    );
    assert_eq!(
        labels(&uniform, true),
        ["as is", "specialize the entry offsets of W"]
    );
    let spread = wl(
        "bcr-conv2d:C=8,O=16,H=7,W=7,k=3,pad=1,bias=1,block=8x8,sparsity=0.75,spread=blocks,seed=1",
    );
    assert_eq!(
        labels(&spread, false),
        ["as is", "version the entries of W by kept-column count"]
    );

    let space = SearchSpace::new(&uniform);
    let tile = space.tile_point(&uniform, &space.default_point()).unwrap();
    let versioned = space.versioned_point(&tile).unwrap();
    let k = space
        .knobs
        .iter()
        .position(|k| k.name == tuner::space_bcr::offset_specialization_knob("W"))
        .unwrap();
    assert_eq!(
        (tile[k], versioned[k]),
        (1, tuner::space_bcr::VERSION_CHOICE)
    );
    let (s, effective) = space.apply(&uniform, &versioned).unwrap();
    assert_eq!(effective, versioned);
    assert_eq!(
        ops(&s).last().map(String::as_str),
        Some("version_column_counts")
    );
    assert_matches_reference(&s, &uniform, 5);
    // Nothing to swap where the offsets are not specialized.
    assert!(space.versioned_point(&space.default_point()).is_none());
}
