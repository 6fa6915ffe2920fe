//! Pruning a model: refitting reduces the layer reconstruction error, the chosen rates
//! meet the target compression, and impossible targets are refused clearly.

use model::calibrate::{Calibration, Gram, Recorder};
use model::exec::LayerExec;
use model::graph::{Graph, Node, Op};
use model::layer::Layer;
use model::paired::{PairRecorder, Tape};
use model::prune::{kept_block_shapes, prune_layer, prune_matrix_weighted, refit_matrix, Spread};
use model::rates::{compression, prune_model, MaskCriterion, PruneOptions};
use model::{eval, Array, Body, Model, Reference};
use proptest::prelude::*;
use tir::bcr::BlockShape;
use tir::rng::SplitMix64;
use tir::Matrix;

/// Reconstruction error `Σ_samples ‖(W' − W) x‖²` through the Gram matrix.
fn recon_error(dense: &Matrix, pruned: &Matrix, g: &Gram) -> f64 {
    let k = dense.cols();
    let mut total = 0.0;
    for r in 0..dense.rows() {
        let d: Vec<f64> = (0..k)
            .map(|c| (pruned.get(r, c) - dense.get(r, c)) as f64)
            .collect();
        for i in 0..k {
            for j in 0..k {
                total += d[i] * g.get(i, j) * d[j];
            }
        }
    }
    total
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Refitting never makes the reconstruction error on the calibration inputs worse
    /// than plain magnitude pruning (it is that problem's least-squares optimum, up to
    /// the small ridge term), and it keeps the pattern.
    #[test]
    fn refit_reduces_reconstruction_error(seed in any::<u64>(), sparsity in 0.3f64..0.9) {
        let mut rng = SplitMix64::new(seed);
        let (m, k) = (16usize, 24usize);
        let dense = Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
        // Correlated inputs: a low-rank mix plus noise, so refitting has something to use.
        let basis = rng.symmetric_vec(4 * k, 1.0);
        let mut g = Gram::new(k);
        for _ in 0..200 {
            let coef = rng.symmetric_vec(4, 1.0);
            let noise = rng.symmetric_vec(k, 0.1);
            let x: Vec<f32> = (0..k)
                .map(|c| (0..4).map(|b| coef[b] * basis[b * k + c]).sum::<f32>() + noise[c])
                .collect();
            g.add(&x);
        }
        let cfg = tir::PruneConfig { block: BlockShape { rows: 8, cols: 8 }, rate: tir::PruneRate::Sparsity(sparsity) };
        let b = tir::prune(&dense, &cfg).unwrap();
        let refit = refit_matrix(&dense, &b, &g, 1e-6).unwrap();
        let before = recon_error(&dense, &b.to_dense(), &g);
        let after = recon_error(&dense, &refit.to_dense(), &g);
        prop_assert!(after <= before * (1.0 + 1e-6) + 1e-9, "before {before}, after {after}");
        for (x, y) in b.blocks().iter().zip(refit.blocks()) {
            prop_assert_eq!(&x.kept_rows, &y.kept_rows);
            prop_assert_eq!(&x.kept_cols, &y.kept_cols);
        }
    }
}

fn layer(name: &str, spec: &str) -> Layer {
    Layer::from_spec(name, spec).unwrap()
}

/// A graph node with one input and one output.
fn node(name: &str, op: Op, i: &str, o: &str) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: vec![i.to_string()],
        outputs: vec![o.to_string()],
    }
}

fn mlp() -> Model {
    Model {
        name: "mlp".to_string(),
        layers: vec![
            layer("fc1", "fc:M=64,K=48,N=1,bias=true,seed=1"),
            layer("fc2", "fc:M=64,K=64,N=1,bias=true,seed=2"),
            layer("fc3", "fc:M=8,K=64,N=1,bias=true,seed=3"),
        ],
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 48],
            output: "y".to_string(),
            nodes: vec![
                node("fc1", Op::Fc { layer: 0 }, "x", "a"),
                node("r1", Op::Tanh, "a", "b"),
                node("fc2", Op::Fc { layer: 1 }, "b", "c"),
                node("r2", Op::Tanh, "c", "d"),
                node("fc3", Op::Fc { layer: 2 }, "d", "y"),
            ],
        }),
    }
}

fn inputs(n: usize, seed: u64) -> Vec<Array> {
    let mut rng = SplitMix64::new(seed);
    let basis = rng.symmetric_vec(6 * 48, 1.0);
    (0..n)
        .map(|_| {
            let c = rng.symmetric_vec(6, 1.0);
            let x = (0..48)
                .map(|i| (0..6).map(|b| c[b] * basis[b * 48 + i]).sum())
                .collect();
            Array::new(vec![1, 48], x).unwrap()
        })
        .collect()
}

/// Fidelity to the dense model: minus the mean squared output difference.
fn fidelity(dense: &Model, xs: &[Array]) -> impl FnMut(&Model) -> Result<f64, model::ModelError> {
    let Body::Graph(g) = dense.body.clone() else {
        unreachable!()
    };
    let want: Vec<Array> = xs
        .iter()
        .map(|x| eval::run_graph(&g, &dense.layers, x, &mut Reference::default()).unwrap())
        .collect();
    let xs = xs.to_vec();
    move |m: &Model| {
        let mut err = 0.0;
        for (x, w) in xs.iter().zip(&want) {
            let y = eval::run_graph(&g, &m.layers, x, &mut Reference::default())?;
            err += y
                .data()
                .iter()
                .zip(w.data())
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>();
        }
        Ok(-err / xs.len() as f64)
    }
}

/// Runs `prune_model` and returns its result with the progress lines it printed.
fn prune_logged(
    dense: &Model,
    opts: &PruneOptions,
    grams: &Calibration,
    calibrate: Option<&mut model::rates::Calibrator<'_>>,
    score: &mut model::rates::Scorer<'_>,
) -> (Model, model::rates::PruneReport, Vec<String>) {
    let mut lines = Vec::new();
    let (pruned, report) = prune_model(dense, opts, Some(grams), calibrate, score, &mut |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    (pruned, report, lines)
}

#[test]
fn prune_model_meets_the_target_and_refit_beats_magnitude() {
    let dense = mlp();
    let calib = inputs(64, 1);
    let valid = inputs(64, 3);
    let grams = dense_calibration(&dense, &calib, &valid);
    assert_eq!(grams.fit[&(0, 0)].samples(), 64);
    let mut score = fidelity(&dense, &valid);
    let opts = PruneOptions {
        compression: 4.0,
        blocks: vec![
            BlockShape { rows: 16, cols: 16 },
            BlockShape { rows: 8, cols: 8 },
        ],
        min_layer_weights: 256,
        ..PruneOptions::default()
    };
    let (pruned, report, lines) = prune_logged(&dense, &opts, &grams, None, &mut score);
    assert!(compression(&pruned) >= 4.0, "{}", report.table(&pruned));
    assert!((report.compression - compression(&pruned)).abs() < 1e-9);
    assert_eq!(report.block_scores.len(), 2);
    assert!(pruned.layers.iter().any(|l| l.spec.sparse().is_some()));
    // fc3 (512 weights) is pruned too; every sensitivity curve starts at the dense score.
    assert!(report
        .sensitivity
        .iter()
        .all(|s| s.points[0] == (0.0, report.dense_score)));
    let refit = report.refit_score.unwrap();
    assert!(refit > report.magnitude_score, "{}", report.table(&pruned));
    assert!(report.table(&pruned).contains("fc2"));
    assert!(lines.iter().any(|l| l.contains("sensitivity fc1")));
    pruned.validate().unwrap();
    // Held-out inputs: the refit model is still closer to the dense one.
    let held = inputs(32, 2);
    let mut held_score = fidelity(&dense, &held);
    let magnitude = model::rates::apply_rates(
        &dense,
        report.block,
        &report.rates.iter().map(|r| r.1).collect::<Vec<_>>(),
        None,
        &opts.ridges,
        opts.mask.into(),
    )
    .unwrap();
    assert!(held_score(&pruned).unwrap() > held_score(&magnitude).unwrap());
    // No step is left over: lowering any layer's rate by one grid step misses the
    // target (the greedy choice gives back the steps it did not need).
    let rates: Vec<f64> = report.rates.iter().map(|r| r.1).collect();
    for (i, &r) in rates.iter().enumerate().filter(|(_, &r)| r > 0.0) {
        let mut lower = rates.clone();
        lower[i] = opts
            .rates
            .iter()
            .copied()
            .filter(|&g| g < r)
            .fold(0.0, f64::max);
        let m =
            model::rates::apply_rates(&dense, report.block, &lower, None, &[], opts.mask.into())
                .unwrap();
        assert!(
            compression(&m) < 4.0,
            "layer {i} at {} still meets 4x",
            lower[i]
        );
    }
}

#[test]
fn impossible_targets_and_bad_options_are_refused() {
    let dense = mlp();
    let mut score = |_: &Model| Ok(0.0);
    let opts = PruneOptions {
        compression: 500.0,
        rates: vec![0.5, 0.9],
        refit: false,
        min_layer_weights: 1,
        ..PruneOptions::default()
    };
    let e = prune_model(&dense, &opts, None, None, &mut score, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be met"), "{e}");
    let opts = PruneOptions {
        compression: 0.5,
        ..PruneOptions::default()
    };
    let e = prune_model(&dense, &opts, None, None, &mut score, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("compression must be > 1"), "{e}");
    let opts = PruneOptions {
        compression: 2.0,
        refit: true,
        ..PruneOptions::default()
    };
    let e = prune_model(&dense, &opts, None, None, &mut score, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("calibration"), "{e}");
    // Pruning an already pruned layer is refused, naming it.
    let p = prune_layer(&dense.layers[1], BlockShape { rows: 8, cols: 8 }, 0.5).unwrap();
    let e = prune_layer(&p, BlockShape { rows: 8, cols: 8 }, 0.5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fc2"), "{e}");
}

/// A conv with few weights applied at many positions, then a large FC applied once.
fn conv_then_fc() -> Model {
    Model {
        name: "conv-fc".to_string(),
        layers: vec![
            // 2304 weights at 16x16 positions: 589,824 multiply-adds.
            layer(
                "conv",
                "conv2d:C=16,O=16,H=16,W=16,kh=3,kw=3,pad=1,bias=true,seed=1",
            ),
            // 131,072 weights once.
            layer("fc", "fc:M=32,K=4096,N=1,bias=true,seed=2"),
        ],
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 16, 16, 16],
            output: "y".to_string(),
            nodes: vec![
                node("conv", Op::Conv { layer: 0 }, "x", "a"),
                node("flat", Op::Flatten { axis: 1 }, "a", "b"),
                node("fc", Op::Fc { layer: 1 }, "b", "y"),
            ],
        }),
    }
}

/// With the multiply-add objective the target counts what running the model costs:
/// the conv, where most multiply-adds are, is pruned harder than with the weight
/// objective, and each objective's target is met in its own measure.
#[test]
fn the_multiply_add_objective_prunes_where_the_work_is() {
    use model::rates::{mac_reduction, Objective};
    let dense = conv_then_fc();
    assert!((mac_reduction(&dense.layers) - 1.0).abs() < 1e-12);
    // Every configuration scores the same: the rate choice follows the amounts alone.
    let mut score = |_: &Model| Ok(0.0);
    let run = |objective: Objective,
               score: &mut dyn FnMut(&Model) -> Result<f64, model::ModelError>| {
        let opts = PruneOptions {
            compression: 4.0,
            objective,
            blocks: vec![BlockShape { rows: 16, cols: 16 }],
            refit: false,
            min_layer_weights: 256,
            ..PruneOptions::default()
        };
        prune_model(&dense, &opts, None, None, score, &mut |_| {}).unwrap()
    };
    let (by_weights, rw) = run(Objective::Weights, &mut score);
    let (by_macs, rm) = run(Objective::Macs, &mut score);
    assert!(compression(&by_weights) >= 4.0, "{}", rw.table(&by_weights));
    assert!(
        mac_reduction(&by_macs.layers) >= 4.0,
        "{}",
        rm.table(&by_macs)
    );
    assert_eq!(rm.mac_reduction, mac_reduction(&by_macs.layers));
    let conv_rate = |r: &model::rates::PruneReport| r.rates[0].1;
    assert!(
        conv_rate(&rm) > conv_rate(&rw),
        "{}\n{}",
        rw.table(&by_weights),
        rm.table(&by_macs)
    );
    // Pruning mostly the FC (the weight objective) barely reduces the work.
    assert!(
        mac_reduction(&by_weights.layers) < 2.0,
        "{}",
        rw.table(&by_weights)
    );
    assert!(rm.table(&by_macs).contains("multiply-adds"));
    // An unreachable target names the measure.
    let opts = PruneOptions {
        compression: 500.0,
        objective: Objective::Macs,
        rates: vec![0.5, 0.9],
        refit: false,
        min_layer_weights: 256,
        ..PruneOptions::default()
    };
    let e = prune_model(&dense, &opts, None, None, &mut score, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("multiply-add reduction 500x cannot be met"),
        "{e}"
    );
}

/// Calibration Gram matrices of the dense MLP on two input sets.
fn dense_calibration(dense: &Model, fit: &[Array], valid: &[Array]) -> Calibration {
    let Body::Graph(g) = &dense.body else {
        unreachable!()
    };
    let record = |xs: &[Array]| {
        let mut rec = Recorder::default();
        for x in xs {
            eval::run_graph(g, &dense.layers, x, &mut rec).unwrap();
        }
        rec.into_grams()
    };
    Calibration {
        fit: record(fit),
        valid: record(valid),
    }
}

/// Paired calibration of `pruned` against `dense` (the MLP) on two input sets.
fn paired_calibration(
    dense: &Model,
    pruned: &Model,
    fit: &[Array],
    valid: &[Array],
) -> Calibration {
    let Body::Graph(g) = &dense.body else {
        unreachable!()
    };
    let record = |xs: &[Array]| {
        let mut rec = PairRecorder::new(None);
        for x in xs {
            let mut tape = Tape::default();
            eval::run_graph(g, &dense.layers, x, &mut tape).unwrap();
            rec.follow(tape);
            eval::run_graph(g, &pruned.layers, x, &mut rec).unwrap();
        }
        assert_eq!(rec.calls(), (3 * xs.len() as u64, 0));
        rec.into_grams()
    };
    Calibration {
        fit: record(fit),
        valid: record(valid),
    }
}

#[test]
fn paired_grams_pair_each_input_with_the_dense_models() {
    let dense = mlp();
    let mut pruned = dense.clone();
    pruned.layers[0] =
        prune_layer(&dense.layers[0], BlockShape { rows: 16, cols: 16 }, 0.75).unwrap();
    let xs = inputs(5, 4);
    let grams = paired_calibration(&dense, &pruned, &xs, &xs[..1]).fit;
    // fc2's inputs: the tanh of fc1's outputs, in the pruned and in the dense model.
    let fc1 = |layers: &[Layer], x: &Array| -> Vec<f32> {
        Reference::default().run(layers, 0, &[x.data()]).unwrap()[0]
            .iter()
            .map(|v| v.tanh())
            .collect()
    };
    let k = 64;
    let (mut cross, mut dense_gram) = (vec![0.0f64; k * k], vec![0.0f64; k * k]);
    for x in &xs {
        let (p, d) = (fc1(&pruned.layers, x), fc1(&dense.layers, x));
        assert!(p.iter().zip(&d).any(|(a, b)| (a - b).abs() > 1e-3));
        for i in 0..k {
            for j in 0..k {
                cross[i * k + j] += p[i] as f64 * d[j] as f64;
                dense_gram[i * k + j] += d[i] as f64 * d[j] as f64;
            }
        }
    }
    let g1 = &grams[&(1, 0)];
    assert!(g1.is_paired());
    assert_eq!(g1.samples(), 5);
    for i in 0..k {
        for j in 0..k {
            assert!(
                (g1.cross(i, j) - cross[i * k + j]).abs() < 1e-3,
                "cross {i},{j}"
            );
            assert!(
                (g1.dense_get(i, j) - dense_gram[i * k + j]).abs() < 1e-3,
                "dense {i},{j}"
            );
        }
    }
    // fc1 sees the same inputs in both models: its pairs are its own Gram.
    let g0 = &grams[&(0, 0)];
    for i in 0..48 {
        for j in 0..48 {
            assert_eq!(g0.cross(i, j), g0.get(i, j));
        }
    }
}

#[test]
fn the_sequential_refit_keeps_the_better_form_of_each_layer() {
    let dense = mlp();
    let (calib, valid) = (inputs(64, 1), inputs(64, 3));
    let grams = dense_calibration(&dense, &calib, &valid);
    let mut score = fidelity(&dense, &valid);
    let mut calibrate = |m: &Model| Ok(paired_calibration(&dense, m, &calib, &valid));
    let opts = PruneOptions {
        compression: 4.0,
        blocks: vec![BlockShape { rows: 8, cols: 8 }],
        min_layer_weights: 256,
        ..PruneOptions::default()
    };
    let (pruned, report, lines) =
        prune_logged(&dense, &opts, &grams, Some(&mut calibrate), &mut score);
    let (refit, sequential) = (
        report.refit_score.unwrap(),
        report.sequential_score.unwrap(),
    );
    // Every layer behind a pruned one is refit in sequence (fc1 is pruned too; fc3
    // is dense or pruned), and each keeps whichever of its two forms scored better.
    for name in ["fc1", "fc2", "fc3"] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("sequential refit: {name}:")))
            .unwrap_or_else(|| panic!("no sequential refit of {name}: {lines:?}"));
        let nums: Vec<f64> = line
            .split([' ', ','])
            .filter_map(|w| w.parse().ok())
            .collect();
        let [in_sequence, otherwise] = nums[..] else {
            panic!("{line}")
        };
        assert_eq!(
            line.ends_with("kept the sequential refit"),
            in_sequence >= otherwise,
            "{line}"
        );
    }
    // The better of the one-shot and the sequential refit is returned.
    let got = score(&pruned).unwrap();
    assert!(
        (got - refit.max(sequential)).abs() < 1e-9,
        "{got} vs {refit}, {sequential}"
    );
    assert!(compression(&pruned) >= 4.0);
}

#[test]
fn activation_weighted_masks_rank_by_contribution_and_keep_the_original_values() {
    let mut rng = SplitMix64::new(21);
    let (m, k) = (16usize, 32usize);
    let dense = Matrix::new(m, k, rng.symmetric_vec(m * k, 1.0)).unwrap();
    let cfg = tir::PruneConfig {
        block: BlockShape { rows: 8, cols: 8 },
        rate: tir::PruneRate::Sparsity(0.75),
    };
    // Equal scales: the plain magnitude mask.
    let same = prune_matrix_weighted(&dense, &cfg, &vec![2.5; k], Spread::Uniform).unwrap();
    assert_eq!(same, tir::prune(&dense, &cfg).unwrap());
    // Inputs 0..4 of every block never active, the rest busy: those columns go first,
    // even where their weights are the largest; the kept values are the dense ones.
    let mut big = dense.clone();
    for r in 0..m {
        for c in (0..k).filter(|c| c % 8 < 4) {
            big.set(r, c, 10.0 * dense.get(r, c));
        }
    }
    let scales: Vec<f64> = (0..k).map(|c| if c % 8 < 4 { 0.0 } else { 1.0 }).collect();
    let b = prune_matrix_weighted(&big, &cfg, &scales, Spread::Uniform).unwrap();
    let plain = tir::prune(&big, &cfg).unwrap();
    let (gr, gc) = b.grid();
    for br in 0..gr {
        for bc in 0..gc {
            let blk = b.block_at(br, bc);
            assert!(blk.kept_cols.iter().all(|&c| c >= 4), "{blk:?}");
            assert!(plain.block_at(br, bc).kept_cols.iter().all(|&c| c < 4));
        }
    }
    let bd = b.to_dense();
    for r in 0..m {
        for c in 0..k {
            let v = bd.get(r, c);
            assert!(v == 0.0 || v == big.get(r, c));
        }
    }
    // Bad scales are refused with what is wrong.
    let e = prune_matrix_weighted(&dense, &cfg, &[1.0; 3], Spread::Uniform).unwrap_err();
    assert!(
        e.contains("3 column scales for a matrix of 32 columns"),
        "{e}"
    );
    let mut nan = vec![1.0; k];
    nan[7] = f64::NAN;
    let e = prune_matrix_weighted(&dense, &cfg, &nan, Spread::Uniform).unwrap_err();
    assert!(e.contains("column scale 7 is NaN"), "{e}");
}

#[test]
fn the_rate_choice_gives_back_steps_a_later_step_made_unneeded() {
    // Scores by rate: fc1 at 0.5 is nearly free, fc2 at 0.5 costs, and fc2 from 0.5 to
    // 0.9 costs almost nothing more. Greedy order: fc1 0.5, fc2 0.5, fc2 0.9; at 1.9x
    // the last step alone meets the target, so fc1's step is given back.
    let dense = mlp();
    let rate = |m: &Model, i: usize| m.layers[i].spec.sparse().map_or(0.0, |s| s.sparsity);
    let cost = |r: f64, at: [f64; 2]| {
        if r == 0.0 {
            0.0
        } else if r < 0.7 {
            at[0]
        } else {
            at[1]
        }
    };
    let mut score =
        |m: &Model| Ok(-cost(rate(m, 0), [0.001, 1.0]) - cost(rate(m, 1), [0.01, 0.0101]));
    let opts = PruneOptions {
        compression: 1.9,
        blocks: vec![BlockShape { rows: 16, cols: 16 }],
        rates: vec![0.5, 0.9],
        refit: false,
        min_layer_weights: 1000,
        ..PruneOptions::default()
    };
    let (pruned, report) = prune_model(&dense, &opts, None, None, &mut score, &mut |_| {}).unwrap();
    let rates: Vec<f64> = report.rates.iter().map(|r| r.1).collect();
    assert_eq!(rates, [0.0, 0.9, 0.0], "{}", report.table(&pruned));
    assert!(compression(&pruned) >= 1.9);
}

/// Options for the MLP: 3x with 8x8 blocks, every layer of 256 weights or more pruned.
fn mlp_options() -> PruneOptions {
    PruneOptions {
        compression: 3.0,
        blocks: vec![BlockShape { rows: 8, cols: 8 }],
        min_layer_weights: 256,
        ..PruneOptions::default()
    }
}

#[test]
fn every_mask_criterion_prunes_to_the_target_and_best_takes_the_closer_matrix() {
    let dense = mlp();
    let (calib, valid) = (inputs(64, 1), inputs(64, 3));
    let grams = dense_calibration(&dense, &calib, &valid);
    let mut masks = Vec::new();
    for mask in [
        MaskCriterion::Magnitude,
        MaskCriterion::Activation,
        MaskCriterion::Best,
    ] {
        let mut score = fidelity(&dense, &valid);
        let opts = PruneOptions {
            mask,
            ..mlp_options()
        };
        let (pruned, _) =
            prune_model(&dense, &opts, Some(&grams), None, &mut score, &mut |_| {}).unwrap();
        assert!(compression(&pruned) >= 3.0, "{mask:?}");
        pruned.validate().unwrap();
        // Fixed rates, to compare the masks layer by layer.
        let fixed = model::rates::apply_rates(
            &dense,
            opts.blocks[0],
            &[0.75, 0.75, 0.5],
            Some(&grams),
            &opts.ridges,
            mask.into(),
        )
        .unwrap();
        masks.push(fixed);
    }
    let [by_magnitude, by_activation, best] = &masks[..] else {
        unreachable!()
    };
    assert_ne!(
        by_magnitude.layers[0].weights.matrices,
        by_activation.layers[0].weights.matrices
    );
    for i in 0..3 {
        let d = dense.layers[i].dense(0).unwrap();
        let g = &grams.valid[&(i, 0)];
        let err = |m: &Model| model::prune::output_error(&d, &m.layers[i].dense(0).unwrap(), g);
        let (em, ea, eb) = (err(by_magnitude), err(by_activation), err(best));
        assert_eq!(
            eb,
            em.min(ea),
            "layer {i}: magnitude {em}, activation {ea}, best {eb}"
        );
    }
}

/// The MLP with the weights of `fc1` and `fc2` over their first half of input columns
/// scaled down 100 times: whole blocks that matter little, which spreading the kept
/// weights over the blocks gives to the blocks that matter.
fn mlp_with_quiet_blocks() -> Model {
    let mut m = mlp();
    for layer in &mut m.layers[..2] {
        let tir::workload::GivenMatrix::Dense(w) = &mut layer.weights.matrices[0] else {
            unreachable!()
        };
        let half = w.cols() / 2;
        for r in 0..w.rows() {
            for c in 0..half {
                w.set(r, c, w.get(r, c) * 0.01);
            }
        }
    }
    m
}

/// Matrix 0 of the pruned `layer`.
fn bcr_of(layer: &Layer) -> &tir::BcrMatrix {
    let tir::workload::GivenMatrix::Bcr(b) = &layer.weights.matrices[0] else {
        panic!("{} is not pruned", layer.name)
    };
    b
}

/// Kept weights of each 8x8 block of matrix 0 of `layer`.
fn block_counts(layer: &Layer) -> Vec<usize> {
    bcr_of(layer).blocks().iter().map(|k| k.nnz()).collect()
}

#[test]
fn the_spread_choice_keeps_the_better_scoring_spread_for_the_whole_model() {
    use model::rates::SpreadChoice;
    let dense = mlp_with_quiet_blocks();
    let (calib, valid) = (inputs(64, 1), inputs(64, 3));
    let grams = dense_calibration(&dense, &calib, &valid);
    let run = |spread: SpreadChoice| {
        let mut score = fidelity(&dense, &valid);
        let opts = PruneOptions {
            spread,
            ..mlp_options()
        };
        let (pruned, report, lines) = prune_logged(&dense, &opts, &grams, None, &mut score);
        assert!(compression(&pruned) >= 3.0, "{spread:?}");
        pruned.validate().unwrap();
        (pruned, report, lines.join("\n"))
    };
    let (uniform, u_report, _) = run(SpreadChoice::Uniform);
    assert_eq!(u_report.spread, Spread::Uniform);
    assert_eq!(u_report.spread_scores, None);
    let counts = block_counts(&uniform.layers[0]);
    assert!(counts.iter().all(|&c| c == counts[0]), "{counts:?}");
    assert_eq!(kept_block_shapes(bcr_of(&uniform.layers[0])), 1);

    let (best, report, lines) = run(SpreadChoice::Best);
    // Same rates and kept counts as the uniform run (the search is uniform), then
    // spread: the quiet blocks lose more than the loud ones, and the model scores
    // better with it.
    assert_eq!(report.rates, u_report.rates);
    let (same, spread) = report.spread_scores.expect("both spreads scored");
    assert!(spread > same, "{lines}");
    assert_eq!(report.spread, Spread::AcrossBlocks, "{lines}");
    assert_eq!(report.refit_score, Some(spread));
    assert!(lines.contains("kept: spread over the blocks"), "{lines}");
    assert!(report
        .table(&best)
        .contains("kept weights: spread over the blocks"));
    for i in 0..2 {
        let (kb, ku) = (
            best.layers[i].kept_params(),
            uniform.layers[i].kept_params(),
        );
        assert!(kb <= ku && kb + 8 > ku, "layer {i}: {kb} vs {ku}");
        let c = block_counts(&best.layers[i]);
        // Blocks are 8 columns wide: the first half of the columns are quiet.
        let gc = c.len() / 8;
        let quiet: usize = (0..c.len()).filter(|b| b % gc < gc / 2).map(|b| c[b]).sum();
        let loud: usize = (0..c.len())
            .filter(|b| b % gc >= gc / 2)
            .map(|b| c[b])
            .sum();
        assert!(
            loud > 2 * quiet,
            "layer {i}: quiet blocks keep {quiet}, loud {loud}"
        );
        assert!(kept_block_shapes(bcr_of(&best.layers[i])) > 1, "layer {i}");
    }
    // The same spread, fixed: no comparison, the same model.
    let (fixed, f_report, _) = run(SpreadChoice::AcrossBlocks);
    assert_eq!(f_report.spread, Spread::AcrossBlocks);
    assert_eq!(f_report.spread_scores, None);
    assert_eq!(
        block_counts(&fixed.layers[0]).len(),
        block_counts(&best.layers[0]).len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// Spread over the blocks, a matrix keeps as many weights as with the same counts
    /// in every block, at any rate, or fewer by less than one block row or column; the
    /// uniform pruning's full-size blocks all have one shape.
    #[test]
    fn spreading_keeps_as_many_weights_as_uniform_counts(
        seed in any::<u64>(), rate in 0.0f64..0.98, rows in 1usize..40, cols in 1usize..40
    ) {
        let mut rng = SplitMix64::new(seed);
        let m = Matrix::new(rows, cols, rng.symmetric_vec(rows * cols, 1.0)).unwrap();
        let cfg = tir::PruneConfig {
            block: BlockShape { rows: rows.min(8), cols: cols.min(8) },
            rate: tir::PruneRate::Sparsity(rate),
        };
        let u = Spread::Uniform.prune(&m, &cfg).unwrap();
        let s = Spread::AcrossBlocks.prune(&m, &cfg).unwrap();
        prop_assert!(s.nnz() <= u.nnz() && s.nnz() + 8 > u.nnz(), "{} vs {}", s.nnz(), u.nnz());
        prop_assert_eq!(s.validate(), Ok(()));
        // Uniform counts give one shape to every full-size block (edge blocks aside).
        prop_assert!(kept_block_shapes(&u) <= 1);
    }
}
