//! Small synthetic models: the plain-Rust reference and the `tir` interpreter agree,
//! pruned layers run, files round-trip, and bad models are named.

use model::graph::{Graph, Node, Op};
use model::layer::Layer;
use model::seq2seq::Seq2Seq;
use model::{eval, file, Array, Body, Interpreter, Model, Reference};

fn layer(name: &str, spec: &str) -> Layer {
    Layer::from_spec(name, spec).unwrap()
}

fn node(name: &str, op: Op, inputs: &[&str], output: &str) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: vec![output.to_string()],
    }
}

/// conv(1->8, 3x3, pad 1) relu maxpool2 -> conv(8->16) relu maxpool2 -> flatten -> fc 10.
fn tiny_cnn(pruned: bool) -> Model {
    let p = if pruned { "bcr-" } else { "" };
    let sp = |b: &str| {
        if pruned {
            format!(",block={b},sparsity=0.5")
        } else {
            String::new()
        }
    };
    let layers = vec![
        layer(
            "conv1",
            "conv2d:C=1,O=8,H=8,W=8,kh=3,kw=3,pad=1,bias=true,seed=1",
        ),
        layer(
            "conv2",
            &format!(
                "{p}conv2d:C=8,O=16,H=4,W=4,kh=3,kw=3,pad=1,bias=true,seed=2{}",
                sp("8x8")
            ),
        ),
        layer(
            "fc",
            &format!("{p}fc:M=10,K=64,N=1,bias=true,seed=3{}", sp("5x16")),
        ),
    ];
    let pool = Op::MaxPool {
        kernel: [2, 2],
        stride: [2, 2],
        pad: [0; 4],
    };
    let nodes = vec![
        node("c1", Op::Conv { layer: 0 }, &["x"], "a"),
        node("r1", Op::Relu, &["a"], "b"),
        node("p1", pool.clone(), &["b"], "c"),
        node("c2", Op::Conv { layer: 1 }, &["c"], "d"),
        node("r2", Op::Relu, &["d"], "e"),
        node("p2", pool, &["e"], "f"),
        node("fl", Op::Flatten { axis: 1 }, &["f"], "g"),
        node("fc", Op::Fc { layer: 2 }, &["g"], "h"),
        node("sm", Op::Softmax { axis: 1 }, &["h"], "y"),
    ];
    graph_model("tiny", layers, nodes)
}

/// A graph model on one 1x1x8x8 input `x` with output `y`.
fn graph_model(name: &str, layers: Vec<Layer>, nodes: Vec<Node>) -> Model {
    Model {
        name: name.to_string(),
        layers,
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 1, 8, 8],
            output: "y".to_string(),
            nodes,
        }),
    }
}

fn image(seed: u64) -> Array {
    let mut rng = tir::rng::SplitMix64::new(seed);
    Array::new(vec![1, 1, 8, 8], rng.symmetric_vec(64, 1.0)).unwrap()
}

#[test]
fn reference_and_interpreter_agree_on_a_cnn() {
    for pruned in [false, true] {
        let m = tiny_cnn(pruned);
        m.validate().unwrap();
        let Body::Graph(g) = &m.body else {
            unreachable!()
        };
        for seed in 0..3 {
            let x = image(seed);
            let a = eval::run_graph(g, &m.layers, &x, &mut Reference::default()).unwrap();
            let b = eval::run_graph(g, &m.layers, &x, &mut Interpreter::default()).unwrap();
            assert_eq!(a.shape(), [1, 10]);
            assert!((a.data().iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let d = a.max_abs_diff(&b);
            assert!(d < 1e-5, "pruned={pruned} seed={seed}: diff {d}");
        }
    }
}

#[test]
fn a_pruned_cnn_differs_from_the_dense_one() {
    let (d, s) = (tiny_cnn(false), tiny_cnn(true));
    let (Body::Graph(g), Body::Graph(_)) = (&d.body, &s.body) else {
        unreachable!()
    };
    let x = image(7);
    let a = eval::run_graph(g, &d.layers, &x, &mut Reference::default()).unwrap();
    let b = eval::run_graph(g, &s.layers, &x, &mut Reference::default()).unwrap();
    assert!(a.max_abs_diff(&b) > 1e-4, "pruning changed nothing");
    assert!(s.layers[2].kept_params() < d.layers[2].kept_params());
}

fn tiny_seq2seq() -> Model {
    let layers = vec![
        layer("encoder", "gru:hidden=12,input=6,seed=11"),
        layer("decoder", "gru:hidden=12,input=6,seed=12"),
        layer("fc", "fc:M=7,K=12,N=1,bias=true,seed=13"),
    ];
    let mut rng = tir::rng::SplitMix64::new(5);
    let input_symbols: Vec<String> = ["<pad>", "<unk>", "</s>", "a", "b", "c"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let output_symbols: Vec<String> = ["<pad>", "<unk>", "<s>", "</s>", "X", "Y", "Z"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Model {
        name: "tiny-g2p".to_string(),
        layers,
        body: Body::Seq2Seq(Seq2Seq {
            enc_emb: Array::new(vec![6, 6], rng.symmetric_vec(36, 1.0)).unwrap(),
            dec_emb: Array::new(vec![7, 6], rng.symmetric_vec(42, 1.0)).unwrap(),
            input_symbols,
            output_symbols,
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

#[test]
fn seq2seq_reference_and_interpreter_decode_the_same() {
    let m = tiny_seq2seq();
    m.validate().unwrap();
    let Body::Seq2Seq(s) = &m.body else {
        unreachable!()
    };
    for word in ["abc", "cab", "a?b", ""] {
        let ids = s.encode_word(word);
        let a = s
            .predict(&m.layers, &ids, &mut Reference::default())
            .unwrap();
        let b = s
            .predict(&m.layers, &ids, &mut Interpreter::default())
            .unwrap();
        assert_eq!(a, b, "{word}");
        assert!(a.len() <= 8);
    }
    assert_eq!(s.encode_word("a?"), vec![3, 1, 2]);
}

#[test]
fn files_round_trip_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bcr");
    for m in [tiny_cnn(true), tiny_seq2seq()] {
        file::save(&m, &path).unwrap();
        assert_eq!(file::load(&path).unwrap(), m);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    // Truncated.
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let e = file::load(&path).unwrap_err().to_string();
    assert!(e.contains("m.bcr") && e.contains("truncated"), "{e}");
    // A newer version.
    std::fs::write(&path, text.replacen("\"version\":1", "\"version\":9", 1)).unwrap();
    let e = file::load(&path).unwrap_err().to_string();
    assert!(e.contains("version 9"), "{e}");
    // A layer whose bias has the wrong length is named.
    let mut m = tiny_cnn(false);
    m.layers[1].weights.biases[0].pop();
    file::save(&m, &path).unwrap();
    let e = file::load(&path).unwrap_err().to_string();
    assert!(e.contains("conv2") && e.contains("`B`"), "{e}");
    // A node reading an undefined value is named.
    let mut m = tiny_cnn(false);
    if let Body::Graph(g) = &mut m.body {
        g.nodes[3].inputs[0] = "nope".to_string();
    }
    let e = m.validate().unwrap_err().to_string();
    assert!(e.contains("c2") && e.contains("nope"), "{e}");
}

#[test]
fn compiled_layers_match_the_interpreter() {
    use model::compiled::{schedules, Compiled, ScheduleSource};
    let device = tuning_logs::DeviceIdentity::host();
    for m in [tiny_cnn(false), tiny_cnn(true), tiny_seq2seq()] {
        let funcs = schedules(&m.layers, None, &tuning_logs::Target::HOST, &device).unwrap();
        let mut c = Compiled::build(&m.layers, funcs, &|f| f.clone()).unwrap();
        assert!(c.sources.iter().all(|(_, s)| *s == ScheduleSource::Default));
        match &m.body {
            Body::Graph(g) => {
                for seed in 0..3 {
                    let x = image(seed);
                    let a = eval::run_graph(g, &m.layers, &x, &mut c).unwrap();
                    let b = eval::run_graph(g, &m.layers, &x, &mut Interpreter::default()).unwrap();
                    let d = a.max_abs_diff(&b);
                    assert!(d < 1e-4, "{}: diff {d}", m.name);
                }
            }
            Body::Seq2Seq(s) => {
                for word in ["abc", "cab", "bca"] {
                    let ids = s.encode_word(word);
                    let a = s.predict(&m.layers, &ids, &mut c).unwrap();
                    let b = s
                        .predict(&m.layers, &ids, &mut Interpreter::default())
                        .unwrap();
                    assert_eq!(a, b, "{word}");
                }
            }
        }
    }
}

/// Layers scheduled with block-row windows (whose selectors are a `u8` weight) run in
/// process with the interpreter's outputs: the in-process library passes byte-sized
/// weights as it passes `f32` and `i32` ones.
#[test]
fn compiled_windowed_layers_match_the_interpreter() {
    use model::compiled::{Compiled, LayerSchedule, ScheduleSource};
    use schedule::Schedule;
    // flatten -> BCR fc 64->32 (16x16 blocks) -> relu -> fc 32->10 -> softmax.
    let layers = vec![
        layer(
            "fc1",
            "bcr-fc:M=32,K=64,N=1,bias=true,seed=4,block=16x16,sparsity=0.75",
        ),
        layer("fc2", "fc:M=10,K=32,N=1,bias=true,seed=5"),
    ];
    let nodes = vec![
        node("fl", Op::Flatten { axis: 1 }, &["x"], "a"),
        node("f1", Op::Fc { layer: 0 }, &["a"], "b"),
        node("r1", Op::Relu, &["b"], "c"),
        node("f2", Op::Fc { layer: 1 }, &["c"], "d"),
        node("sm", Op::Softmax { axis: 1 }, &["d"], "y"),
    ];
    let m = graph_model("tiny-mlp", layers, nodes);
    let mut windowed = 0;
    let funcs: Vec<LayerSchedule> = m
        .layers
        .iter()
        .map(|l| {
            let w = l.workload().unwrap();
            let mut s = Schedule::from_workload(&w).unwrap();
            if w.func.params.iter().any(|p| p.name == "W_row_ptr") {
                s.vectorize_rows_masked("W", 8).unwrap();
                s.window_block_rows("W").unwrap();
                windowed += 1;
            }
            LayerSchedule {
                func: s.func().clone(),
                weights: s.weights().clone(),
                source: ScheduleSource::Default,
            }
        })
        .collect();
    assert_eq!(windowed, 1);
    let fc = &funcs[0].func;
    assert!(
        fc.params
            .iter()
            .any(|p| p.name == "W_wsel" && p.dtype == tir::DType::U8),
        "{}",
        tir::print_function(fc)
    );
    let mut c = Compiled::build(&m.layers, funcs, &|f| f.clone()).unwrap();
    let Body::Graph(g) = &m.body else {
        unreachable!("the model is a graph")
    };
    for seed in 0..3 {
        let x = image(seed);
        let a = eval::run_graph(g, &m.layers, &x, &mut c).unwrap();
        let b = eval::run_graph(g, &m.layers, &x, &mut Interpreter::default()).unwrap();
        let d = a.max_abs_diff(&b);
        assert!(d < 1e-4, "seed {seed}: diff {d}");
    }
}

/// The standalone program of each model, natively and under qemu-aarch64 (NEON
/// build), gives the interpreter's outputs.
#[test]
fn standalone_programs_match_the_interpreter_natively_and_under_qemu() {
    use codegen::toolchain::Runner;
    use model::standalone::{self, f32_bytes, f32_values, sequences_bytes, sequences_from_bytes};
    let device = tuning_logs::DeviceIdentity::host();
    let targets = [
        (codegen::Target::Host, Runner::Native),
        (
            "aarch64-neon:cortex-a76"
                .parse::<codegen::Target>()
                .unwrap(),
            Runner::Qemu {
                cpu: "cortex-a76".to_string(),
            },
        ),
    ];
    for m in [tiny_cnn(true), tiny_seq2seq()] {
        let scheds =
            model::compiled::schedules(&m.layers, None, &tuning_logs::Target::HOST, &device)
                .unwrap();
        for (target, runner) in &targets {
            let dir = tempfile::tempdir().unwrap();
            let prog = standalone::generate(&m, &scheds, &|f| f.clone(), target).unwrap();
            let bin = standalone::build(&prog, dir.path(), target).unwrap();
            let timeout = std::time::Duration::from_secs(120);
            match &m.body {
                Body::Graph(g) => {
                    let xs: Vec<Array> = (0..4).map(image).collect();
                    let input = f32_bytes(&xs.iter().map(|x| x.data()).collect::<Vec<_>>());
                    let out = standalone::run(&bin, runner, &input, 3, None, timeout).unwrap();
                    let ys = f32_values(&out.output);
                    assert_eq!(ys.len(), 4 * prog.output_len);
                    assert!(out.timing.is_some_and(|(med, min)| med >= min && min > 0.0));
                    // The per-layer profile: each layer called once per inference, the
                    // layers' sum within the profiled total.
                    let p = out.profile.expect("a profile after timed runs");
                    assert_eq!(p.layers.len(), m.layers.len());
                    assert!(p.layers.iter().all(|l| l.calls == 1.0 && l.seconds >= 0.0));
                    assert!(p.total > 0.0 && p.glue >= 0.0, "{p:?}");
                    for (i, x) in xs.iter().enumerate() {
                        let want =
                            eval::run_graph(g, &m.layers, x, &mut Interpreter::default()).unwrap();
                        let got = Array::new(
                            prog.output_shape.clone(),
                            ys[i * prog.output_len..(i + 1) * prog.output_len].to_vec(),
                        )
                        .unwrap();
                        let d = got.max_abs_diff(&want);
                        assert!(d < 1e-4, "{target}: sample {i}: diff {d}");
                    }
                }
                Body::Seq2Seq(s) => {
                    let words = ["abc", "cab", "", "ccba"];
                    let seqs: Vec<Vec<usize>> = words.iter().map(|w| s.encode_word(w)).collect();
                    let out =
                        standalone::run(&bin, runner, &sequences_bytes(&seqs), 0, None, timeout)
                            .unwrap();
                    let got = sequences_from_bytes(&out.output).unwrap();
                    for (seq, g) in seqs.iter().zip(&got) {
                        let want = s
                            .predict(&m.layers, seq, &mut Interpreter::default())
                            .unwrap();
                        assert_eq!(*g, want, "{target}");
                    }
                    assert!(out.profile.is_none(), "no timed runs, no profile");
                    // Timed runs decode the first word for every step: the encoder runs
                    // once per input symbol, the decoder and output layer `max_len` times.
                    let out =
                        standalone::run(&bin, runner, &sequences_bytes(&seqs), 2, None, timeout)
                            .unwrap();
                    let p = out.profile.expect("a profile after timed runs");
                    let calls: Vec<f64> = p.layers.iter().map(|l| l.calls).collect();
                    let (n, max) = (seqs[0].len() as f64, s.max_len as f64);
                    assert_eq!(calls, vec![n, max, max], "{target}");
                    assert!(p.total > 0.0 && p.glue >= 0.0, "{p:?}");
                }
            }
        }
    }
}

/// A pruned layer's dense form (dense spec, the pruned weights as dense matrices)
/// computes the same outputs; an unpruned layer has none.
#[test]
fn densified_layers_compute_the_same_outputs() {
    let mut layers = tiny_cnn(true).layers;
    layers.push(layer(
        "gru",
        "bcr-gru:hidden=16,input=8,batch=1,block=8x8,sparsity=0.5,seed=6",
    ));
    assert!(layers[0].densified().is_none(), "conv1 is not pruned");
    for l in &layers[1..] {
        let d = l.densified().expect("a pruned layer").unwrap();
        assert_eq!(d.spec.sparse(), None);
        assert_eq!(d.spec.dense_form(), None);
        assert_eq!(l.spec.dense_form().as_ref(), Some(&d.spec));
        assert_eq!(d.kept_params(), d.dense_params());
        let (w, dw) = (l.workload().unwrap(), d.workload().unwrap());
        for seed in 0..3 {
            let inputs = w.random_inputs(seed);
            let (a, b) = (
                w.interpret(&inputs).unwrap(),
                dw.interpret(&inputs).unwrap(),
            );
            assert_eq!(a.len(), b.len());
            for (name, t) in &a {
                let (x, y) = (t.as_f32().unwrap(), b[name].as_f32().unwrap());
                let diff = x
                    .iter()
                    .zip(y)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(diff < 1e-5, "{} {name}: {diff}", l.name);
            }
        }
    }
}

#[test]
fn a_pair_recorder_makes_the_pruned_decoder_follow_the_dense_decisions() {
    use model::paired::{PairRecorder, Tape};
    let dense = tiny_seq2seq();
    let Body::Seq2Seq(s) = &dense.body else {
        unreachable!()
    };
    // The GRUs pruned, and an output layer that decodes differently on its own.
    let mut pruned = dense.clone();
    let block = tir::BlockShape { rows: 4, cols: 6 };
    for l in &mut pruned.layers[..2] {
        *l = model::prune::prune_layer(l, block, 0.8).unwrap();
    }
    pruned.layers[2] = layer("fc", "fc:M=7,K=12,N=1,bias=false,seed=99");
    let mut differing = 0;
    for word in ["abc", "cab", "aab", "cc", "bca", "abcabc", "ba", "c"] {
        let ids = s.encode_word(word);
        let want = s
            .predict(&dense.layers, &ids, &mut Reference::default())
            .unwrap();
        let own = s
            .predict(&pruned.layers, &ids, &mut Reference::default())
            .unwrap();
        differing += usize::from(own != want);
        let mut tape = Tape::default();
        assert_eq!(s.predict(&dense.layers, &ids, &mut tape).unwrap(), want);
        let mut rec = PairRecorder::new(Some(s.output));
        rec.follow(tape);
        let forced = s.predict(&pruned.layers, &ids, &mut rec).unwrap();
        assert_eq!(forced, want, "{word}");
        // Every call paired: the encoder once per symbol, then decoder and output
        // layer once per step (the end symbol's step included, unless max_len ends it).
        let steps = if want.len() < s.max_len {
            want.len() + 1
        } else {
            s.max_len
        };
        assert_eq!(rec.calls(), ((ids.len() + 2 * steps) as u64, 0), "{word}");
        let grams = rec.into_grams();
        assert_eq!(grams[&(0, 0)].samples(), ids.len() as u64);
        assert_eq!(grams[&(2, 0)].samples(), steps as u64);
    }
    assert!(
        differing > 0,
        "pruning changed no decoding: the test shows nothing"
    );
}

#[test]
fn pruned_recurrent_layers_are_refit_again_on_their_own_states() {
    use model::calibrate::{Calibration, Recorder};
    use model::paired::{PairRecorder, Tape};
    use model::rates::{prune_model, PruneOptions};
    let dense = tiny_seq2seq();
    let Body::Seq2Seq(s) = dense.body.clone() else {
        unreachable!()
    };
    let words: Vec<Vec<usize>> = ["abc", "cab", "aab", "cc", "bca", "abcabc", "ba", "c"]
        .iter()
        .map(|w| s.encode_word(w))
        .collect();
    let (fit, valid) = words.split_at(4);
    let record = |ws: &[Vec<usize>]| {
        let mut rec = Recorder::default();
        for w in ws {
            s.predict(&dense.layers, w, &mut rec).unwrap();
        }
        rec.into_grams()
    };
    let grams = Calibration {
        fit: record(fit),
        valid: record(valid),
    };
    let paired = |m: &Model, ws: &[Vec<usize>]| {
        let mut rec = PairRecorder::new(Some(s.output));
        for w in ws {
            let mut tape = Tape::default();
            s.predict(&dense.layers, w, &mut tape).unwrap();
            rec.follow(tape);
            s.predict(&m.layers, w, &mut rec).unwrap();
        }
        rec.into_grams()
    };
    let mut calibrate = |m: &Model| {
        Ok(Calibration {
            fit: paired(m, fit),
            valid: paired(m, valid),
        })
    };
    // Score: minus the squared distance of the output layer's logits from the dense
    // model's over the decoded steps of the validation words.
    let logits = |m: &Model, w: &[usize]| {
        let mut tape = Tape::default();
        s.predict(&m.layers, w, &mut tape).unwrap();
        tape.outputs_of(s.output)
            .map(|o| o[0].clone())
            .collect::<Vec<_>>()
    };
    let mut score = |m: &Model| {
        let mut err = 0.0f64;
        for w in valid {
            for (a, b) in logits(m, w).iter().zip(logits(&dense, w)) {
                err += a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| ((x - y) as f64).powi(2))
                    .sum::<f64>();
            }
        }
        Ok(-err)
    };
    for passes in [1, 2] {
        let opts = PruneOptions {
            compression: 2.0,
            blocks: vec![tir::BlockShape { rows: 4, cols: 4 }],
            rates: vec![0.5, 0.75],
            min_layer_weights: 100,
            recurrent_passes: passes,
            ..PruneOptions::default()
        };
        let mut lines = Vec::new();
        let (pruned, report) = prune_model(
            &dense,
            &opts,
            Some(&grams),
            Some(&mut calibrate),
            &mut score,
            &mut |l| lines.push(l.to_string()),
        )
        .unwrap();
        let again = |name: &str| {
            lines.iter().any(|l| {
                l.starts_with(&format!(
                    "sequential refit: {name} pass 2 on its own states"
                ))
            })
        };
        let pruned_rnns: Vec<&str> = report
            .rates
            .iter()
            .filter(|(n, r)| *r > 0.0 && n != "fc")
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(!pruned_rnns.is_empty(), "{}", report.table(&pruned));
        for name in ["encoder", "decoder"] {
            assert_eq!(
                again(name),
                passes == 2 && pruned_rnns.contains(&name),
                "{name}, {passes} passes: {lines:#?}"
            );
        }
        assert!(!again("fc"));
        let got = score(&pruned).unwrap();
        let best = report
            .refit_score
            .unwrap()
            .max(report.sequential_score.unwrap());
        assert!((got - best).abs() < 1e-9, "{got} vs {best}");
    }
}
