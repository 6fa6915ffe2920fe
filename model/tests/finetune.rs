//! Fine-tuning graph models: the trainable forward pass equals the reference
//! executor, whole-graph gradients match finite differences, ops without a backward
//! pass are refused by name, and fine-tuning a pruned model keeps its BCR pattern
//! (same specs, same workload keys, pruned positions zero) while lowering the
//! distillation loss, deterministically; gradual pruning ends with the one-shot
//! structure.

use model::backprop::Pattern;
use model::data::cmudict::Entry;
use model::distill::Distillation;
use model::finetune::{finetune, shift_image, FinetuneOptions, Samples, Student};
use model::gradual::{gradual_prune, reprune};
use model::graph::{Graph, Node, Op};
use model::layer::Layer;
use model::prune::prune_layer;
use model::rates::{apply_rates, MaskRule};
use model::trainable::Trainable;
use model::trainable_seq2seq::{finetune_seq2seq, Seq2SeqTrainable};
use model::LayerExec;
use model::{eval, Array, Body, Model, Reference};
use tir::bcr::BlockShape;
use tir::rng::SplitMix64;
use tir::workload::GivenMatrix;

fn node(name: &str, op: Op, inputs: &[&str], out: &str) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![out.to_string()],
    }
}

fn layer(name: &str, spec: &str) -> Layer {
    Layer::from_spec(name, spec).unwrap()
}

/// A small CNN shaped like the MNIST CNN: conv, relu, maxpool, conv, relu, maxpool,
/// flatten, fc, relu, fc, softmax.
fn small_cnn() -> Model {
    let pool = || Op::MaxPool {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    Model {
        name: "small-cnn".to_string(),
        layers: vec![
            layer("c1", "conv2d:C=1,O=8,H=12,W=12,k=3,pad=1,bias=true,seed=11"),
            layer("c2", "conv2d:C=8,O=16,H=6,W=6,k=3,pad=1,bias=true,seed=12"),
            layer("f1", "fc:M=32,K=144,N=1,bias=true,seed=13"),
            layer("f2", "fc:M=6,K=32,N=1,bias=true,seed=14"),
        ],
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 1, 12, 12],
            output: "p".to_string(),
            nodes: vec![
                node("c1", Op::Conv { layer: 0 }, &["x"], "a1"),
                node("r1", Op::Relu, &["a1"], "b1"),
                node("p1", pool(), &["b1"], "d1"),
                node("c2", Op::Conv { layer: 1 }, &["d1"], "a2"),
                node("r2", Op::Relu, &["a2"], "b2"),
                node("p2", pool(), &["b2"], "d2"),
                node("flat", Op::Flatten { axis: 1 }, &["d2"], "f"),
                node("f1", Op::Fc { layer: 2 }, &["f"], "h"),
                node("r3", Op::Relu, &["h"], "hr"),
                node("f2", Op::Fc { layer: 3 }, &["hr"], "z"),
                node("sm", Op::Softmax { axis: 1 }, &["z"], "p"),
            ],
        }),
    }
}

/// A smooth graph with every other supported op: two convs (one with a fused tanh),
/// Add, Sigmoid, Concat, AveragePool, GlobalAveragePool with a per-channel Add,
/// Reshape, an FC with a fused tanh, and a softmax in the middle of the graph.
fn smooth_graph() -> Model {
    Model {
        name: "smooth".to_string(),
        layers: vec![
            layer(
                "ca",
                "conv2d:C=2,O=4,H=6,W=6,k=3,pad=1,bias=true,act=tanh,seed=21",
            ),
            layer("cb", "conv2d:C=2,O=4,H=6,W=6,k=1,bias=true,seed=22"),
            layer("f", "fc:M=5,K=72,N=1,bias=true,act=tanh,seed=23"),
            layer("g", "fc:M=3,K=5,N=1,bias=false,seed=24"),
        ],
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 2, 6, 6],
            output: "z".to_string(),
            nodes: vec![
                node("ca", Op::Conv { layer: 0 }, &["x"], "a"),
                node("cb", Op::Conv { layer: 1 }, &["x"], "b"),
                node("add", Op::Add, &["a", "b"], "s"),
                node("sig", Op::Sigmoid, &["s"], "t"),
                node("cat", Op::Concat { axis: 1 }, &["t", "a"], "u"),
                node(
                    "avg",
                    Op::AvgPool {
                        kernel: [2, 2],
                        stride: [2, 2],
                        pad: [0; 4],
                    },
                    &["u"],
                    "v",
                ),
                node("gap", Op::GlobalAvgPool, &["u"], "g"),
                node("add2", Op::Add, &["v", "g"], "w"),
                node("id", Op::Identity, &["w"], "w2"),
                node("tanh", Op::Tanh, &["w2"], "w3"),
                node("rs", Op::Reshape { shape: vec![1, -1] }, &["w3"], "fl"),
                node("f", Op::Fc { layer: 2 }, &["fl"], "h"),
                node("sm", Op::Softmax { axis: 1 }, &["h"], "q"),
                node("g", Op::Fc { layer: 3 }, &["q"], "z"),
            ],
        }),
    }
}

fn inputs(shape: &[usize], n: usize, seed: u64) -> Vec<Array> {
    let mut rng = SplitMix64::new(seed);
    let len = shape.iter().product();
    (0..n)
        .map(|_| Array::new(shape.to_vec(), rng.symmetric_vec(len, 1.5)).unwrap())
        .collect()
}

fn graph(m: &Model) -> &Graph {
    match &m.body {
        Body::Graph(g) => g,
        _ => unreachable!(),
    }
}

#[test]
fn the_trainable_forward_pass_equals_the_reference_executor() {
    for m in [small_cnn(), smooth_graph()] {
        let net = Trainable::new(&m).unwrap();
        for x in inputs(&graph(&m).input_shape, 4, 1) {
            let want =
                eval::run_graph(graph(&m), &m.layers, &x, &mut Reference::default()).unwrap();
            let tape = net.forward(&x).unwrap();
            let z = tape.logits().unwrap();
            // The small CNN ends in a softmax, folded into the loss: compare its input.
            let got = if m.name == "small-cnn" {
                model::ops::softmax(z, 1).unwrap()
            } else {
                z.clone()
            };
            let d = got.max_abs_diff(&want);
            assert!(d < 1e-5, "{}: {d}", m.name);
        }
    }
}

/// The distillation loss of `net` on `x` toward `target`.
fn loss_of(
    net: &Trainable,
    x: &Array,
    target: &[f32],
    d: &Distillation,
    label: Option<usize>,
) -> f64 {
    let tape = net.forward(x).unwrap();
    let z = tape.logits().unwrap();
    d.loss(z.data(), target, *z.shape().last().unwrap(), label)
        .0
}

/// Checks the gradient of every bias element and of up to 40 kept weights per tensor
/// against central differences.
fn gradient_check(m: &Model, eps: f32, seed: u64) {
    let net = Trainable::new(m).unwrap();
    let mut rng = SplitMix64::new(seed);
    let x = &inputs(&graph(m).input_shape, 1, seed)[0];
    let classes = *net
        .forward(x)
        .unwrap()
        .logits()
        .unwrap()
        .shape()
        .last()
        .unwrap();
    let target = rng.symmetric_vec(classes, 2.0);
    let d = Distillation {
        temperature: 2.0,
        hard_weight: 0.3,
    };
    let label = Some(1);
    let tape = net.forward(x).unwrap();
    let z = tape.logits().unwrap();
    let (_, dz) = d.loss(z.data(), &target, classes, label);
    let mut grads = net.zero_grads();
    net.backward(&tape, &dz, &mut grads).unwrap();
    let mut checked = 0;
    for (t, g) in grads.iter().enumerate() {
        let len = g.len();
        let picks: Vec<usize> = match &net.patterns[t] {
            None => (0..len).collect(),
            Some(p) => {
                let kept: Vec<usize> = (0..len)
                    .filter(|&i| p.is_kept(i / p.cols(), i % p.cols()))
                    .collect();
                // Pruned positions get no gradient.
                for (i, gv) in g.iter().enumerate() {
                    if !p.is_kept(i / p.cols(), i % p.cols()) {
                        assert_eq!(*gv, 0.0, "tensor {t} element {i}");
                    }
                }
                (0..40.min(kept.len()))
                    .map(|_| kept[(rng.next_u64() % kept.len() as u64) as usize])
                    .collect()
            }
        };
        for i in picks {
            let mut plus = net.clone();
            plus.tensors[t][i] += eps;
            let mut minus = net.clone();
            minus.tensors[t][i] -= eps;
            let num = (loss_of(&plus, x, &target, &d, label)
                - loss_of(&minus, x, &target, &d, label))
                / (2.0 * eps as f64);
            let a = g[i] as f64;
            assert!(
                (num - a).abs() <= 1e-3 + 1e-2 * num.abs().max(a.abs()),
                "{}: tensor {t} element {i}: numeric {num}, analytic {a}",
                m.name
            );
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked}");
}

#[test]
fn whole_graph_gradients_match_finite_differences() {
    gradient_check(&smooth_graph(), 1e-2, 3);
    // Relu and max pooling are piecewise linear: a small step rarely crosses a kink.
    let mut cnn = small_cnn();
    let block = BlockShape { rows: 4, cols: 4 };
    for l in &mut cnn.layers[1..3] {
        *l = prune_layer(l, block, 0.6).unwrap();
    }
    gradient_check(&cnn, 1e-3, 4);
}

#[test]
fn ops_without_a_backward_pass_are_refused_by_name() {
    let mut m = small_cnn();
    m.layers
        .push(layer("rnn", "gru:input=6,hidden=4,batch=1,seed=3"));
    let Body::Graph(g) = &mut m.body else {
        unreachable!()
    };
    g.nodes.push(node("seq", Op::Rnn { layer: 4 }, &["z"], "y"));
    let e = Trainable::new(&m).unwrap_err().to_string();
    assert!(
        e.contains("`seq`") && e.contains("Rnn") && e.contains("no backward pass"),
        "{e}"
    );
}

fn pruned_cnn(teacher: &Model) -> Model {
    let mut s = teacher.clone();
    let block = BlockShape { rows: 4, cols: 4 };
    for l in &mut s.layers[1..3] {
        *l = prune_layer(l, block, 0.75).unwrap();
    }
    s
}

#[test]
fn fine_tuning_keeps_the_bcr_pattern_lowers_the_loss_and_is_deterministic() {
    let teacher = small_cnn();
    let student = pruned_cnn(&teacher);
    let xs = inputs(&[1, 1, 12, 12], 96, 7);
    // Labels: the teacher's classes (a classifier the student should imitate).
    let labels: Vec<usize> = xs
        .iter()
        .map(|x| {
            eval::run_graph(
                graph(&teacher),
                &teacher.layers,
                x,
                &mut Reference::default(),
            )
            .unwrap()
            .argmax()
            .unwrap()
        })
        .collect();
    let (fit, valid) = (
        Samples {
            inputs: &xs[..64],
            labels: Some(&labels[..64]),
        },
        Samples {
            inputs: &xs[64..],
            labels: Some(&labels[64..]),
        },
    );
    let opts = FinetuneOptions {
        epochs: 4,
        batch: 8,
        learning_rates: vec![3e-3, 1e-3],
        ..FinetuneOptions::default()
    };
    let mut lines = Vec::new();
    let (tuned, report) = finetune(&student, &teacher, fit, valid, &opts, &mut |l| {
        lines.push(l.to_string())
    })
    .unwrap();
    for l in &lines {
        eprintln!("{l}");
    }
    assert_eq!(lines.len(), 2 + opts.epochs + 1 + 1, "{lines:?}");
    assert_eq!(report.epochs.len(), opts.epochs + 1);
    assert!(report.best.is_some(), "{report:?}");
    assert!(
        report.end.loss < 0.8 * report.start.loss,
        "distillation loss {} -> {}",
        report.start.loss,
        report.end.loss
    );
    assert!(report.end.score >= report.start.score);
    // Same specs, same BCR structure, same workload keys; only kept values moved.
    let mut moved = 0;
    for (a, b) in student.layers.iter().zip(&tuned.layers) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.kept_params(), b.kept_params());
        assert_eq!(
            a.workload().unwrap().key(),
            b.workload().unwrap().key(),
            "{}",
            a.name
        );
        match (&a.weights.matrices[0], &b.weights.matrices[0]) {
            (GivenMatrix::Bcr(x), GivenMatrix::Bcr(y)) => {
                assert_eq!(x.block(), y.block());
                for (bx, by) in x.blocks().iter().zip(y.blocks()) {
                    assert_eq!(bx.kept_rows, by.kept_rows);
                    assert_eq!(bx.kept_cols, by.kept_cols);
                }
                // Every position outside the student's pattern is still zero.
                let p = Pattern::of_bcr(x);
                let dy = y.to_dense();
                for r in 0..dy.rows() {
                    for c in 0..dy.cols() {
                        if !p.is_kept(r, c) {
                            assert_eq!(dy.get(r, c), 0.0);
                        }
                    }
                }
                moved += x
                    .blocks()
                    .iter()
                    .zip(y.blocks())
                    .filter(|(p, q)| p.values != q.values)
                    .count();
            }
            (GivenMatrix::Dense(_), GivenMatrix::Dense(_)) => {}
            _ => panic!("{}: the matrix changed kind", a.name),
        }
    }
    assert!(moved > 0);
    tuned.validate().unwrap();
    // Deterministic: the same run again gives the same weights.
    let (again, _) = finetune(&student, &teacher, fit, valid, &opts, &mut |_| {}).unwrap();
    assert_eq!(again, tuned);
    // Zero epochs: the input model comes back unchanged.
    let off = FinetuneOptions {
        epochs: 0,
        ..opts.clone()
    };
    let (same, r) = finetune(&student, &teacher, fit, valid, &off, &mut |_| {}).unwrap();
    assert_eq!(same, student);
    assert!(r.epochs.is_empty() && r.best.is_none());
}

#[test]
fn bad_fine_tuning_requests_are_errors() {
    let teacher = small_cnn();
    let student = pruned_cnn(&teacher);
    let xs = inputs(&[1, 1, 12, 12], 4, 8);
    let s = Samples {
        inputs: &xs,
        labels: None,
    };
    let bad_lr = FinetuneOptions {
        learning_rates: vec![],
        ..FinetuneOptions::default()
    };
    let e = finetune(&student, &teacher, s, s, &bad_lr, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("learning rates"), "{e}");
    let e = finetune(
        &student,
        &teacher,
        Samples {
            inputs: &[],
            labels: None,
        },
        s,
        &FinetuneOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("training and validation samples"),
        "{e}"
    );
    let wrong = inputs(&[1, 1, 10, 10], 2, 8);
    let e = finetune(
        &student,
        &teacher,
        Samples {
            inputs: &wrong,
            labels: None,
        },
        s,
        &FinetuneOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("[1, 1, 10, 10]"), "{e}");
}

#[test]
fn shifting_moves_pixels_and_fills_from_the_border() {
    let x = Array::new(vec![1, 1, 3, 3], (0..9).map(|v| v as f32).collect()).unwrap();
    assert_eq!(shift_image(&x, 0, 0), x);
    let y = shift_image(&x, 1, 0);
    assert_eq!(y.data(), &[0., 1., 2., 0., 1., 2., 3., 4., 5.]);
    let y = shift_image(&x, 0, -1);
    assert_eq!(y.data(), &[1., 2., 2., 4., 5., 5., 7., 8., 8.]);
    let flat = Array::new(vec![1, 9], x.data().to_vec()).unwrap();
    assert_eq!(shift_image(&flat, 2, 2), flat);
}

fn tiny_seq2seq() -> Model {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut rng = SplitMix64::new(5);
    Model {
        name: "tiny-g2p".to_string(),
        layers: vec![
            layer("encoder", "gru:hidden=16,input=6,seed=11"),
            layer("decoder", "gru:hidden=16,input=6,seed=12"),
            layer("fc", "fc:M=7,K=16,N=1,bias=true,seed=13"),
        ],
        body: Body::Seq2Seq(model::Seq2Seq {
            enc_emb: Array::new(vec![6, 6], rng.symmetric_vec(36, 1.0)).unwrap(),
            dec_emb: Array::new(vec![7, 6], rng.symmetric_vec(42, 1.0)).unwrap(),
            input_symbols: strings(&["<pad>", "<unk>", "</s>", "a", "b", "c"]),
            output_symbols: strings(&["<pad>", "<unk>", "<s>", "</s>", "X", "Y", "Z"]),
            encoder: 0,
            decoder: 1,
            output: 2,
            input_end: 2,
            input_unknown: 1,
            start: 2,
            end: 3,
            max_len: 8,
        }),
    }
}

/// Words of a, b, c whose pronunciation maps a->X, b->Y, c->Z (a rule the random
/// teacher does not know; the hard-label term teaches it).
fn tiny_words(n: usize, seed: u64) -> Vec<Entry> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let len = 1 + (rng.next_u64() % 4) as usize;
            let word: String = (0..len)
                .map(|_| ['a', 'b', 'c'][(rng.next_u64() % 3) as usize])
                .collect();
            let phonemes = word
                .chars()
                .map(|c| match c {
                    'a' => "X",
                    'b' => "Y",
                    _ => "Z",
                })
                .map(str::to_string)
                .collect();
            Entry { word, phonemes }
        })
        .collect()
}

fn pruned_seq2seq(teacher: &Model) -> Model {
    let mut s = teacher.clone();
    for l in &mut s.layers[..2] {
        *l = prune_layer(l, BlockShape { rows: 8, cols: 4 }, 0.6).unwrap();
    }
    s
}

#[test]
fn the_seq2seq_forward_pass_equals_the_reference_and_its_gradients_check() {
    let m = pruned_seq2seq(&tiny_seq2seq());
    let net = Seq2SeqTrainable::new(&m).unwrap();
    let Body::Seq2Seq(s) = &m.body else {
        unreachable!()
    };
    let word = &tiny_words(1, 3)[0];
    let (input, dec_in, targets) = net.teacher_forced(word).unwrap();
    let tape = net.forward(&input, &dec_in).unwrap();
    // The same steps with the reference executor.
    let mut exec = Reference::default();
    let mut h = vec![0.0f32; 16];
    for &id in &input {
        let x = s.enc_emb.data()[id * 6..(id + 1) * 6].to_vec();
        h = exec.run(&m.layers, 0, &[&x, &h]).unwrap().remove(0);
    }
    for (t, &id) in dec_in.iter().enumerate() {
        let x = s.dec_emb.data()[id * 6..(id + 1) * 6].to_vec();
        h = exec.run(&m.layers, 1, &[&x, &h]).unwrap().remove(0);
        let z = exec.run(&m.layers, 2, &[&h]).unwrap().remove(0);
        for (a, b) in z.iter().zip(&tape.logits[t]) {
            assert!((a - b).abs() < 1e-5, "step {t}: {a} vs {b}");
        }
    }
    // Backpropagation through time against central differences.
    let mut rng = SplitMix64::new(4);
    let teacher: Vec<Vec<f32>> = (0..targets.len())
        .map(|_| rng.symmetric_vec(7, 2.0))
        .collect();
    let d = Distillation {
        temperature: 2.0,
        hard_weight: 0.4,
    };
    let loss = |net: &Seq2SeqTrainable| -> f64 {
        let tape = net.forward(&input, &dec_in).unwrap();
        tape.logits
            .iter()
            .zip(&teacher)
            .zip(&targets)
            .map(|((z, t), &y)| d.loss(z, t, 7, Some(y)).0)
            .sum()
    };
    let dz: Vec<Vec<f32>> = tape
        .logits
        .iter()
        .zip(&teacher)
        .zip(&targets)
        .map(|((z, t), &y)| d.loss(z, t, 7, Some(y)).1)
        .collect();
    let mut grads = net.zero_grads();
    net.backward(&tape, &dz, &mut grads).unwrap();
    let mut checked = 0;
    for (t, g) in grads.iter().enumerate() {
        let kept: Vec<usize> = match &net.patterns[t] {
            None => (0..g.len()).collect(),
            Some(p) => (0..g.len())
                .filter(|&i| {
                    let k = p.is_kept(i / p.cols(), i % p.cols());
                    if !k {
                        assert_eq!(g[i], 0.0, "tensor {t}: pruned element {i}");
                    }
                    k
                })
                .collect(),
        };
        for _ in 0..12.min(kept.len()) {
            let i = kept[(rng.next_u64() % kept.len() as u64) as usize];
            let eps = 1e-2;
            let (mut plus, mut minus) = (net.clone(), net.clone());
            plus.tensors[t][i] += eps;
            minus.tensors[t][i] -= eps;
            let num = (loss(&plus) - loss(&minus)) / (2.0 * eps as f64);
            let a = g[i] as f64;
            assert!(
                (num - a).abs() <= 1e-3 + 1e-2 * num.abs().max(a.abs()),
                "tensor {t} element {i}: numeric {num}, analytic {a}"
            );
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked}");
}

#[test]
fn fine_tuning_a_seq2seq_model_keeps_the_pattern_and_lowers_the_loss() {
    let teacher = tiny_seq2seq();
    let student = pruned_seq2seq(&teacher);
    let words = tiny_words(80, 9);
    let opts = FinetuneOptions {
        epochs: 4,
        batch: 8,
        learning_rates: vec![1e-2, 3e-3],
        ..FinetuneOptions::default()
    };
    let (tuned, report) = finetune_seq2seq(
        &student,
        &teacher,
        &words[..60],
        &words[60..],
        &opts,
        &mut |l| eprintln!("{l}"),
    )
    .unwrap();
    assert!(report.best.is_some(), "{report:?}");
    assert!(
        report.end.loss < 0.9 * report.start.loss,
        "{} -> {}",
        report.start.loss,
        report.end.loss
    );
    for (a, b) in student.layers.iter().zip(&tuned.layers) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.kept_params(), b.kept_params());
        assert_eq!(
            a.workload().unwrap().key(),
            b.workload().unwrap().key(),
            "{}",
            a.name
        );
    }
    assert_ne!(tuned.layers, student.layers);
    let (again, _) = finetune_seq2seq(
        &student,
        &teacher,
        &words[..60],
        &words[60..],
        &opts,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(again, tuned);
}

#[test]
fn gradual_pruning_ends_with_the_one_shot_structure_and_trains_every_stage() {
    let teacher = tiny_seq2seq();
    let words = tiny_words(80, 21);
    let block = BlockShape { rows: 8, cols: 4 };
    let rates = [0.75, 0.6, 0.0];
    let opts = FinetuneOptions {
        epochs: 2,
        batch: 8,
        learning_rates: vec![1e-2],
        ..FinetuneOptions::default()
    };
    let mut seen = Vec::new();
    let mut train = |m: &Model, stage: usize| -> Result<Model, model::ModelError> {
        seen.push((
            stage,
            m.layers.iter().map(Layer::kept_params).collect::<Vec<_>>(),
        ));
        let (out, r) =
            finetune_seq2seq(m, &teacher, &words[..60], &words[60..], &opts, &mut |_| {})?;
        assert!(r.best.is_some(), "stage {stage}: {r:?}");
        // Training keeps the stage's structure.
        for (a, b) in m.layers.iter().zip(&out.layers) {
            assert_eq!(a.spec, b.spec);
            assert_eq!(a.kept_params(), b.kept_params());
        }
        Ok(out)
    };
    let gradual = gradual_prune(
        &teacher,
        block,
        &rates,
        3,
        None,
        &[],
        MaskRule::default(),
        &mut train,
        &mut |_| {},
    )
    .unwrap();
    // Three stages, each keeping fewer weights in the pruned layers.
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    for w in seen.windows(2) {
        assert!(w[1].1[0] < w[0].1[0] && w[1].1[1] < w[0].1[1], "{seen:?}");
        assert_eq!(w[1].1[2], w[0].1[2]);
    }
    let one_shot = apply_rates(&teacher, block, &rates, None, &[], MaskRule::default()).unwrap();
    for (a, b) in one_shot.layers.iter().zip(&gradual.layers) {
        assert_eq!(a.spec, b.spec, "{}", a.name);
        assert_eq!(a.kept_params(), b.kept_params(), "{}", a.name);
        // Same workload structure; the kept positions (the pattern part of the key)
        // are chosen from the trained weights, so they may differ.
        let (ka, kb) = (a.workload().unwrap().key(), b.workload().unwrap().key());
        assert_eq!(ka.structure, kb.structure, "{}", a.name);
    }
    assert_eq!(
        gradual.layers[2].spec, teacher.layers[2].spec,
        "rate 0 stays dense"
    );
    // Pruning a pruned layer again needs a higher rate's worth of fewer weights, and
    // the same rate keeps the same count.
    let again = reprune(&one_shot, block, &rates).unwrap();
    for (a, b) in one_shot.layers.iter().zip(&again.layers) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.kept_params(), b.kept_params());
    }
}

#[test]
fn the_kept_block_trainable_writes_back_what_it_read() {
    // Packing the kept values and writing them back is the identity on the model.
    let m = pruned_seq2seq(&tiny_seq2seq());
    let net = Seq2SeqTrainable::new(&m).unwrap();
    assert_eq!(net.write_back(&m.layers).unwrap(), m.layers);
    let kept: usize = m.layers.iter().map(Layer::kept_params).sum();
    let biases: usize = m
        .layers
        .iter()
        .flat_map(|l| &l.weights.biases)
        .map(Vec::len)
        .sum();
    assert_eq!(net.trained_values(), kept + biases);
}

#[test]
fn the_batched_seq2seq_pass_equals_the_per_word_passes() {
    // Words of different lengths in one batch: each word's logits and the summed
    // gradients equal those of the one-word passes.
    let m = pruned_seq2seq(&tiny_seq2seq());
    let net = Seq2SeqTrainable::new(&m).unwrap();
    let words: Vec<_> = tiny_words(7, 31)
        .iter()
        .map(|w| net.teacher_forced(w).unwrap())
        .collect();
    assert!(words.iter().any(|w| w.0.len() != words[0].0.len()));
    let pairs: Vec<(&[usize], &[usize])> = words.iter().map(|w| (&w.0[..], &w.1[..])).collect();
    let tape = net.forward_batch(&pairs).unwrap();
    let mut rng = SplitMix64::new(8);
    let mut want = net.zero_grads();
    let mut d_all = Vec::new();
    for (b, w) in words.iter().enumerate() {
        let one = net.forward(&w.0, &w.1).unwrap();
        let got = tape.word_logits(b);
        assert_eq!(got.len(), one.logits.len());
        for (a, e) in got.iter().flatten().zip(one.logits.iter().flatten()) {
            assert!((a - e).abs() < 1e-5, "word {b}: {a} vs {e}");
        }
        let d: Vec<Vec<f32>> = one
            .logits
            .iter()
            .map(|z| rng.symmetric_vec(z.len(), 1.0))
            .collect();
        net.backward(&one, &d, &mut want).unwrap();
        d_all.push(d);
    }
    let mut got = net.zero_grads();
    net.backward_batch(&tape, &d_all, &mut got).unwrap();
    for (t, (a, e)) in got.iter().zip(&want).enumerate() {
        for (i, (x, y)) in a.iter().zip(e).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
                "tensor {t} element {i}: {x} vs {y}"
            );
        }
    }
    // A gradient that does not fit the tape is an error, not a panic.
    assert!(net.backward_batch(&tape, &d_all[1..], &mut got).is_err());
}
