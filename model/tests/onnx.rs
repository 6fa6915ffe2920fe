//! ONNX import and export.
//!
//! - Files written by onnx's own Python helper (`tests/fixtures/onnx`, made by
//!   `make_fixtures.py`) import and, run by grim's dense reference, give onnxruntime's
//!   stored outputs within 1e-4.
//! - grim models written by the exporter read back into equal outputs, and, when a
//!   Python with onnxruntime is present (`.venv-onnx/`, made by `scripts/test`, or
//!   `GRIM_ONNX_PYTHON`), onnxruntime running the exported files agrees with grim
//!   within 1e-4 (otherwise that test prints why it skipped).
//! - Bad files and unsupported graphs give errors naming the file, node, op or
//!   attribute.

use model::graph::{Graph, Node, Op};
use model::layer::Layer;
use model::onnx::proto::{
    attribute_type, data_type, AttributeProto, DimValue, Dimension, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor,
    ValueInfoProto,
};
use model::onnx::{self, ImportOptions};
use model::{eval, Array, Body, Model, ModelError, Reference};
use prost::Message;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn graph(m: &Model) -> &Graph {
    match &m.body {
        Body::Graph(g) => g,
        Body::Seq2Seq(_) => panic!("not a graph model"),
    }
}

fn run(m: &Model, x: &Array) -> Array {
    eval::run_graph(graph(m), &m.layers, x, &mut Reference::default()).unwrap()
}

/// A layer with the spec's generated weights (BCR for `bcr-` specs).
fn layer(name: &str, spec: &str) -> Layer {
    Layer::from_spec(name, spec).unwrap()
}

fn node(name: &str, op: Op, inputs: &[&str], outputs: &[&str]) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
    }
}

fn graph_model(name: &str, layers: Vec<Layer>, shape: &[usize], nodes: Vec<Node>) -> Model {
    let output = nodes.last().unwrap().outputs[0].clone();
    let m = Model {
        name: name.to_string(),
        layers,
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: shape.to_vec(),
            output,
            nodes,
        }),
    };
    m.validate().unwrap();
    m
}

/// conv(relu fused) -> maxpool -> conv -> relu -> avgpool (padded) -> flatten ->
/// fc -> add (a second branch) -> softmax; `pruned` makes conv2 and fc BCR layers.
fn cnn(pruned: bool) -> Model {
    let (p, sp) = if pruned {
        ("bcr-", ",sparsity=0.6")
    } else {
        ("", "")
    };
    let b = |blk: &str| {
        if pruned {
            format!(",block={blk}")
        } else {
            String::new()
        }
    };
    let layers = vec![
        layer(
            "conv1",
            "conv2d:C=2,O=6,H=10,W=10,k=3,pad=1,bias=true,act=relu,batch=2,seed=21",
        ),
        layer(
            "conv2",
            &format!(
                "{p}conv2d:C=6,O=8,H=5,W=5,k=3,stride=2,pad=1,bias=false,batch=2,seed=22{}{sp}",
                b("4x6")
            ),
        ),
        layer(
            "fc",
            &format!("{p}fc:M=10,K=32,N=2,bias=true,seed=23{}{sp}", b("5x8")),
        ),
        layer("side", "fc:M=10,K=150,N=2,bias=true,act=tanh,seed=24"),
    ];
    let nodes = vec![
        node("c1", Op::Conv { layer: 0 }, &["x"], &["a"]),
        node(
            "p1",
            Op::MaxPool {
                kernel: [2, 2],
                stride: [2, 2],
                pad: [0; 4],
            },
            &["a"],
            &["b"],
        ),
        node("c2", Op::Conv { layer: 1 }, &["b"], &["c"]),
        node("r2", Op::Relu, &["c"], &["d"]),
        node(
            "p2",
            Op::AvgPool {
                kernel: [2, 2],
                stride: [2, 2],
                pad: [1, 1, 0, 0],
            },
            &["d"],
            &["e"],
        ),
        node("fl", Op::Flatten { axis: 1 }, &["e"], &["f"]),
        node("fc", Op::Fc { layer: 2 }, &["f"], &["g"]),
        // A second branch: the pooled input through an FC reading a 4-D value.
        node("side", Op::Fc { layer: 3 }, &["b"], &["s"]),
        node("sum", Op::Add, &["g", "s"], &["h"]),
        node("sig", Op::Sigmoid, &["h"], &["i"]),
        node("sm", Op::Softmax { axis: 1 }, &["i"], &["y"]),
    ];
    graph_model(
        if pruned { "cnn-bcr" } else { "cnn" },
        layers,
        &[2, 2, 10, 10],
        nodes,
    )
}

/// GRU over [seq 6, batch 3, input 5] -> last state -> fc -> softmax, and the GRU's
/// whole output through an LSTM -> tanh -> per-step fc, concatenated.
fn rnn(pruned: bool) -> Model {
    let bcr = if pruned {
        "bcr-gru:hidden=8,input=5,batch=3,block=4x4,sparsity=0.5,seed=31"
    } else {
        "gru:hidden=8,input=5,batch=3,seed=31"
    };
    let layers = vec![
        layer("gru", bcr),
        layer("lstm", "lstm:hidden=4,input=8,batch=3,seed=32"),
        layer("head", "fc:M=4,K=8,N=3,bias=true,seed=33"),
        layer("steps", "fc:M=4,K=4,N=18,bias=true,seed=34"),
    ];
    let nodes = vec![
        node("gru", Op::Rnn { layer: 0 }, &["x"], &["y1", "h1"]),
        node(
            "flat_y",
            Op::Reshape {
                shape: vec![6, 3, 8],
            },
            &["y1"],
            &["y1s"],
        ),
        node("lstm", Op::Rnn { layer: 1 }, &["y1s"], &["y2"]),
        node("t", Op::Tanh, &["y2"], &["y2t"]),
        node("steps", Op::Fc { layer: 3 }, &["y2t"], &["st"]),
        node("st2", Op::Reshape { shape: vec![3, -1] }, &["st"], &["st2"]),
        node(
            "h2d",
            Op::Reshape {
                shape: vec![0, 0, 8],
            },
            &["h1"],
            &["h1r"],
        ),
        node("hf", Op::Flatten { axis: 2 }, &["h1r"], &["h1f"]),
        node("head", Op::Fc { layer: 2 }, &["h1f"], &["logits"]),
        node("sm", Op::Softmax { axis: 1 }, &["logits"], &["p"]),
        node("cat", Op::Concat { axis: 1 }, &["p", "st2"], &["y"]),
    ];
    graph_model(
        if pruned { "rnn-bcr" } else { "rnn" },
        layers,
        &[6, 3, 5],
        nodes,
    )
}

fn input(shape: &[usize], seed: u64) -> Array {
    let n = shape.iter().product();
    let mut rng = tir::rng::SplitMix64::new(seed);
    Array::new(shape.to_vec(), rng.symmetric_vec(n, 1.0)).unwrap()
}

#[test]
fn fixtures_written_by_onnx_match_onnxruntime() {
    for (name, batch) in [("cnn", 2), ("rnn", 5), ("misc", 1)] {
        let dir = fixtures();
        let opts = ImportOptions {
            batch,
            ..Default::default()
        };
        let m = onnx::import(&dir.join(format!("{name}.onnx")), &opts).unwrap();
        let (_, x) = onnx::read_tensor(&dir.join(format!("{name}_input_0.pb"))).unwrap();
        let (_, want) = onnx::read_tensor(&dir.join(format!("{name}_output_0.pb"))).unwrap();
        let got = run(&m, &x);
        let d = got.max_abs_diff(&want);
        println!(
            "{name}: {} layers, max |grim - onnxruntime| = {d:e}",
            m.layers.len()
        );
        assert!(d < 1e-4, "{name}: grim differs from onnxruntime by {d}");
        // The interpreter of the compiler's IR agrees too.
        let interp =
            eval::run_graph(graph(&m), &m.layers, &x, &mut model::Interpreter::default()).unwrap();
        assert!(interp.max_abs_diff(&want) < 1e-4, "{name}: interpreter");
    }
}

#[test]
fn fixture_layers_and_folded_biases() {
    let m = onnx::import(
        &fixtures().join("cnn.onnx"),
        &ImportOptions {
            batch: 2,
            ..Default::default()
        },
    )
    .unwrap();
    let kinds: Vec<String> = m.layers.iter().map(|l| l.spec.to_string()).collect();
    assert_eq!(m.layers.len(), 3, "{kinds:?}");
    // conv2 had no bias; the Add after it became its bias.
    assert_eq!(m.layers[1].name, "conv2");
    assert!(kinds[1].contains("bias=1"), "{}", kinds[1]);
    assert!(kinds[0].starts_with("conv2d:") && kinds[0].contains("batch=2"));
    assert!(kinds[2].starts_with("fc:") && kinds[2].contains("M=10,K=156,N=2"));
    let ops: Vec<&str> = graph(&m).nodes.iter().map(|n| n.op.name()).collect();
    assert!(!ops.contains(&"Add"), "{ops:?}");
    let r = onnx::import(
        &fixtures().join("rnn.onnx"),
        &ImportOptions {
            batch: 5,
            ..Default::default()
        },
    )
    .unwrap();
    let kinds: Vec<String> = r.layers.iter().map(|l| l.spec.to_string()).collect();
    assert!(
        kinds[0].starts_with("gru:") && kinds[0].contains("hidden=8"),
        "{kinds:?}"
    );
    assert!(
        kinds[1].starts_with("lstm:") && kinds[1].contains("hidden=6"),
        "{kinds:?}"
    );
    assert!(
        kinds[2].starts_with("fc:") && kinds[2].contains("bias=1"),
        "{kinds:?}"
    );
}

#[test]
fn exported_models_read_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for m in [cnn(false), cnn(true), rnn(false), rnn(true)] {
        let path = dir.path().join(format!("{}.onnx", m.name));
        onnx::export(&m, &path).unwrap();
        let back = onnx::import(&path, &ImportOptions::default()).unwrap();
        let x = input(&graph(&m).input_shape, 9);
        let (a, b) = (run(&m, &x), run(&back, &x));
        let shapes = model::shape::graph_shapes(graph(&m), &m.layers).unwrap();
        assert_eq!(shapes[&graph(&m).output], a.shape(), "{}", m.name);
        let d = a.max_abs_diff(&b);
        assert!(d < 1e-6, "{}: {d}", m.name);
        assert_eq!(back.layers.len(), m.layers.len(), "{}", m.name);
        // Layers in the order nodes use them; BCR layers come back as their
        // effective dense weights.
        let used = |m: &Model| -> Vec<usize> {
            graph(m).nodes.iter().filter_map(|n| n.op.layer()).collect()
        };
        for (i, j) in used(&m).into_iter().zip(used(&back)) {
            let (l, k) = (&m.layers[i], &back.layers[j]);
            for w in 0..l.weights.matrices.len() {
                assert_eq!(l.dense(w).unwrap(), k.dense(w).unwrap(), "{}", l.name);
            }
            assert!(k.spec.sparse().is_none());
        }
    }
    // Imported fixtures export and read back the same too.
    for (name, batch) in [("cnn", 2), ("rnn", 5), ("misc", 1)] {
        let opts = ImportOptions {
            batch,
            ..Default::default()
        };
        let m = onnx::import(&fixtures().join(format!("{name}.onnx")), &opts).unwrap();
        let path = dir.path().join(format!("again-{name}.onnx"));
        onnx::export(&m, &path).unwrap();
        let back = onnx::import(&path, &ImportOptions::default()).unwrap();
        let x = input(&graph(&m).input_shape, 3);
        assert!(run(&m, &x).max_abs_diff(&run(&back, &x)) < 1e-6, "{name}");
    }
}

/// A Python with onnxruntime and numpy, or why there is none.
fn onnxruntime_python() -> Result<PathBuf, String> {
    let py = match std::env::var_os("GRIM_ONNX_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-onnx/bin/python"),
    };
    let ok = std::process::Command::new(&py)
        .args(["-c", "import onnxruntime, numpy"])
        .output()
        .map_err(|e| {
            format!(
                "{}: {e} (run scripts/test, or set GRIM_ONNX_PYTHON)",
                py.display()
            )
        })?;
    if !ok.status.success() {
        return Err(format!(
            "{} cannot import onnxruntime and numpy: {}",
            py.display(),
            String::from_utf8_lossy(&ok.stderr).trim()
        ));
    }
    Ok(py)
}

/// Exports each model, runs it with onnxruntime on a random input, and returns the
/// largest difference from grim's dense reference per model.
fn onnxruntime_diffs(py: &Path, models: &[Model]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut want = Vec::new();
    for (i, m) in models.iter().enumerate() {
        let x = input(&graph(m).input_shape, 100 + i as u64);
        want.push(run(m, &x));
        let model_path = dir.path().join(format!("{i}.onnx"));
        onnx::export(m, &model_path).unwrap();
        let in_path = dir.path().join(format!("{i}.in"));
        let bytes: Vec<u8> = x.data().iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&in_path, bytes).unwrap();
        jobs.push(serde_json::json!({
            "model": model_path,
            "input": in_path,
            "shape": x.shape(),
            "output": dir.path().join(format!("{i}.out")),
        }));
    }
    let jobs_path = dir.path().join("jobs.json");
    std::fs::write(&jobs_path, serde_json::to_vec(&jobs).unwrap()).unwrap();
    let out = std::process::Command::new(py)
        .arg(fixtures().join("ort_run.py"))
        .arg(&jobs_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "onnxruntime failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shapes: Vec<Vec<usize>> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shapes.len(), models.len());
    want.iter()
        .zip(shapes)
        .enumerate()
        .map(|(i, (want, shape))| {
            let raw = std::fs::read(dir.path().join(format!("{i}.out"))).unwrap();
            let data = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            want.max_abs_diff(&Array::new(shape, data).unwrap())
        })
        .collect()
}

#[test]
fn onnxruntime_runs_exported_models_like_grim() {
    let py = match onnxruntime_python() {
        Ok(p) => p,
        Err(why) => {
            println!("SKIPPED onnxruntime_runs_exported_models_like_grim: {why}");
            return;
        }
    };
    let opts = |batch| ImportOptions {
        batch,
        ..Default::default()
    };
    let mut models = vec![cnn(false), cnn(true), rnn(false), rnn(true)];
    // Imported files, written again by grim's exporter.
    let mut fixture_cnn = onnx::import(&fixtures().join("cnn.onnx"), &opts(3)).unwrap();
    fixture_cnn.name = "fixture-cnn".to_string();
    let mut fixture_rnn = onnx::import(&fixtures().join("rnn.onnx"), &opts(7)).unwrap();
    fixture_rnn.name = "fixture-rnn".to_string();
    let mut fixture_misc = onnx::import(&fixtures().join("misc.onnx"), &opts(1)).unwrap();
    fixture_misc.name = "fixture-misc".to_string();
    models.extend([fixture_cnn, fixture_rnn, fixture_misc]);
    let diffs = onnxruntime_diffs(&py, &models);
    for (m, d) in models.iter().zip(&diffs) {
        println!("{}: max |grim - onnxruntime| = {d:e}", m.name);
    }
    for (m, d) in models.iter().zip(&diffs) {
        assert!(
            *d < 1e-4,
            "{}: grim differs from onnxruntime by {d}",
            m.name
        );
    }
}

// ---- Bad input ----

fn tensor_type(shape: &[i64]) -> Option<TypeProto> {
    Some(TypeProto {
        tensor_type: Some(TypeProtoTensor {
            elem_type: data_type::FLOAT,
            shape: Some(TensorShapeProto {
                dim: shape
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(DimValue::DimValue(d)),
                        ..Default::default()
                    })
                    .collect(),
            }),
        }),
        ..Default::default()
    })
}

fn vi(name: &str, shape: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: tensor_type(shape),
        ..Default::default()
    }
}

fn onnx_node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: name.to_string(),
        op_type: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: attribute_type::INT,
        i: v,
        ..Default::default()
    }
}

fn floats(name: &str, shape: &[usize]) -> TensorProto {
    let n = shape.iter().product();
    onnx::tensor::f32_tensor(name, shape, &vec![0.5; n])
}

fn proto_model(
    input: &[i64],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    output: &str,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "test".to_string(),
            initializer: inits,
            input: vec![vi("x", input)],
            output: vec![ValueInfoProto {
                name: output.to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn import_proto(m: &ModelProto) -> Result<Model, ModelError> {
    onnx::import_bytes(
        &m.encode_to_vec(),
        "test.onnx",
        "test",
        &ImportOptions::default(),
    )
}

/// A valid one-FC model: x [1, 4] -> Gemm -> y.
fn gemm_model() -> ModelProto {
    let mut g = onnx_node("fc", "Gemm", &["x", "W", "B"], &["y"]);
    g.attribute.push(int_attr("transB", 1));
    proto_model(
        &[1, 4],
        vec![g],
        vec![floats("W", &[3, 4]), floats("B", &[3])],
        "y",
    )
}

#[test]
fn a_hand_built_model_imports() {
    let m = import_proto(&gemm_model()).unwrap();
    let y = run(&m, &Array::new(vec![1, 4], vec![1.0; 4]).unwrap());
    assert_eq!(y.data(), &[2.5; 3]);
}

#[test]
fn truncated_and_random_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixtures().join("cnn.onnx")).unwrap();
    let path = dir.path().join("cut.onnx");
    for cut in [1, 10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 3] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let e = onnx::import(&path, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.onnx"), "cut at {cut}: {e}");
    }
    let mut rng = tir::rng::SplitMix64::new(77);
    for seed in 0..20 {
        let junk: Vec<u8> = (0..4096 + seed).map(|_| rng.next_u64() as u8).collect();
        let path = dir.path().join("junk.onnx");
        std::fs::write(&path, junk).unwrap();
        let e = onnx::import(&path, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("junk.onnx"), "{e}");
    }
    // Bytes flipped anywhere: an error or a model that runs, never a panic.
    let mut imported = 0;
    for (i, name) in ["cnn", "rnn", "misc"].iter().cycle().take(300).enumerate() {
        let mut b = std::fs::read(fixtures().join(format!("{name}.onnx"))).unwrap();
        for _ in 0..1 + i % 4 {
            let at = rng.next_u64() as usize % b.len();
            b[at] = rng.next_u64() as u8;
        }
        let opts = ImportOptions::default();
        if let Ok(m) = onnx::import_bytes(&b, "flipped.onnx", "f", &opts) {
            imported += 1;
            let x = Array::zeros(graph(&m).input_shape.clone());
            let _ = eval::run_graph(graph(&m), &m.layers, &x, &mut Reference::default());
        }
    }
    println!("{imported} of 300 files with flipped bytes still import");
    let e = onnx::import(&dir.path().join("absent.onnx"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent.onnx"), "{e}");
}

#[test]
fn unsupported_ops_name_node_and_op() {
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    g.node.push(onnx_node("scale", "Mul", &["y", "y"], &["z"]));
    g.output[0].name = "z".to_string();
    let e = import_proto(&m).unwrap_err();
    assert!(
        matches!(&e, ModelError::Unsupported { node, op } if node == "scale" && op == "Mul"),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("scale") && msg.contains("Mul"), "{msg}");
    // An op of another domain.
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    let mut n = onnx_node("q", "Relu", &["y"], &["z"]);
    n.domain = "com.example".to_string();
    g.node.push(n);
    g.output[0].name = "z".to_string();
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("com.example.Relu") && e.contains("`q`"), "{e}");
    // Nodes out of topological order.
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    g.node.insert(0, onnx_node("early", "Relu", &["y"], &["z"]));
    g.output[0].name = "z".to_string();
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("early") && e.contains("no earlier node"), "{e}");
}

#[test]
fn shapes_that_do_not_fit_name_the_node() {
    // Conv weights for 3 input channels on a 1-channel input.
    let m = proto_model(
        &[1, 1, 8, 8],
        vec![onnx_node("conv_a", "Conv", &["x", "W"], &["y"])],
        vec![floats("W", &[4, 3, 3, 3])],
        "y",
    );
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(
        e.contains("conv_a") && e.contains("3 input channels"),
        "{e}"
    );
    // Gemm weights for 5 inputs on 4.
    let mut m = gemm_model();
    m.graph.as_mut().unwrap().initializer[0] = floats("W", &[3, 5]);
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("`fc`") && e.contains("takes 5 inputs"), "{e}");
    // A declared output shape the graph does not compute.
    let mut m = gemm_model();
    m.graph.as_mut().unwrap().output[0] = vi("y", &[1, 7]);
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("`fc`") && e.contains("declares [1, 7]"), "{e}");
    // Adding values of shapes grim cannot broadcast.
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    g.node.push(onnx_node("sum", "Add", &["y", "x"], &["z"]));
    g.output[0].name = "z".to_string();
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("sum") && e.contains("broadcasting"), "{e}");
    // A reshape to the wrong size.
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    g.node.push(onnx_node("rs", "Reshape", &["y", "s"], &["z"]));
    g.initializer
        .push(onnx::tensor::i64_tensor("s", &[2], &[2, 2]));
    g.output[0].name = "z".to_string();
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("`rs`") && e.contains("cannot reshape"), "{e}");
}

#[test]
fn a_declared_tensor_larger_than_the_file_is_refused() {
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].dims = vec![300_000, 4];
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(
        e.contains("test.onnx") && e.contains("`W`") && e.contains("1200000 elements"),
        "{e}"
    );
    let g = m.graph.as_mut().unwrap();
    g.initializer[0].dims = vec![1 << 40, 1 << 40];
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
    // A huge declared input shape.
    let mut m = gemm_model();
    m.graph.as_mut().unwrap().input[0] = vi("x", &[1 << 20, 1 << 20]);
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("too large"), "{e}");
    // External data.
    let mut m = gemm_model();
    m.graph.as_mut().unwrap().initializer[0].data_location = 1;
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("external"), "{e}");
}

fn gru_model(attrs: Vec<AttributeProto>) -> ModelProto {
    let mut n = onnx_node("enc", "GRU", &["x", "W", "R"], &["Y", "Y_h"]);
    n.attribute = attrs;
    proto_model(
        &[3, 1, 2],
        vec![n],
        vec![floats("W", &[1, 12, 2]), floats("R", &[1, 12, 4])],
        "Y_h",
    )
}

#[test]
fn recurrent_attributes_grim_cannot_honour_are_named() {
    let lbr = || int_attr("linear_before_reset", 1);
    assert!(import_proto(&gru_model(vec![lbr()])).is_ok());
    let e = import_proto(&gru_model(vec![])).unwrap_err().to_string();
    assert!(
        e.contains("enc") && e.contains("linear_before_reset"),
        "{e}"
    );
    let dir = AttributeProto {
        name: "direction".to_string(),
        r#type: attribute_type::STRING,
        s: b"bidirectional".to_vec(),
        ..Default::default()
    };
    let e = import_proto(&gru_model(vec![lbr(), dir]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("enc") && e.contains("direction") && e.contains("bidirectional"),
        "{e}"
    );
    let acts = AttributeProto {
        name: "activations".to_string(),
        r#type: attribute_type::STRINGS,
        strings: vec![b"Relu".to_vec(), b"Tanh".to_vec()],
        ..Default::default()
    };
    let e = import_proto(&gru_model(vec![lbr(), acts]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("activations"), "{e}");
    let e = import_proto(&gru_model(vec![lbr(), int_attr("hidden_size", 5)]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("hidden_size"), "{e}");
    // An attribute of the wrong type, and one the op does not have.
    let e = import_proto(&gru_model(vec![AttributeProto {
        name: "linear_before_reset".to_string(),
        r#type: attribute_type::FLOAT,
        f: 1.0,
        ..Default::default()
    }]))
    .unwrap_err()
    .to_string();
    assert!(e.contains("is FLOAT, expected INT"), "{e}");
    let mut m = gemm_model();
    m.graph.as_mut().unwrap().node[0]
        .attribute
        .push(int_attr("group", 2));
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(
        e.contains("`fc`") && e.contains("`group` is not supported"),
        "{e}"
    );
    let mut m = proto_model(
        &[1, 4, 8, 8],
        vec![onnx_node("dw", "Conv", &["x", "W"], &["y"])],
        vec![floats("W", &[4, 1, 3, 3])],
        "y",
    );
    m.graph.as_mut().unwrap().node[0]
        .attribute
        .push(int_attr("group", 4));
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("`dw`") && e.contains("group"), "{e}");
}

#[test]
fn inputs_grim_cannot_take_are_named() {
    // A symbolic dim other than the first.
    let mut m = gemm_model();
    m.graph.as_mut().unwrap().input[0]
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape
        .as_mut()
        .unwrap()
        .dim[1]
        .value = Some(DimValue::DimParam("features".to_string()));
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(
        e.contains("input `x`") && e.contains("dim 1 is symbolic"),
        "{e}"
    );
    let opts = ImportOptions {
        input_shape: Some(vec![1, 4]),
        ..Default::default()
    };
    assert!(onnx::import_bytes(&m.encode_to_vec(), "t.onnx", "t", &opts).is_ok());
    // A constant added where it cannot be a bias.
    let mut m = gemm_model();
    let g = m.graph.as_mut().unwrap();
    g.node.push(onnx_node("r", "Relu", &["y"], &["r"]));
    g.node.push(onnx_node("shift", "Add", &["r", "B"], &["z"]));
    g.output[0].name = "z".to_string();
    let e = import_proto(&m).unwrap_err().to_string();
    assert!(e.contains("shift") && e.contains("bias"), "{e}");
    // Seq2seq models cannot be exported.
    let s = model::Model {
        name: "s".to_string(),
        layers: vec![],
        body: Body::Seq2Seq(model::Seq2Seq {
            input_symbols: vec![],
            output_symbols: vec![],
            enc_emb: Array::zeros(vec![0, 0]),
            dec_emb: Array::zeros(vec![0, 0]),
            encoder: 0,
            decoder: 0,
            output: 0,
            input_end: 0,
            input_unknown: 0,
            start: 0,
            end: 0,
            max_len: 0,
        }),
    };
    let e = onnx::to_proto(&s).unwrap_err().to_string();
    assert!(e.contains("only graph models"), "{e}");
}
