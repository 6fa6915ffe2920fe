//! `grim-tune convert`: a model written as ONNX (BCR layers as their effective dense
//! weights) or as a grim model file computes what the original computes; the test
//! samples it writes for the real MNIST CNN are the test split with grim's reference
//! outputs, and onnxruntime running the written ONNX file on them agrees (when the
//! files and onnxruntime are present; skipped with a printed reason otherwise); bad
//! requests fail with the reason and write nothing.

use model::graph::{Graph, Node, Op};
use model::layer::Layer;
use model::{eval, Array, Body, Model, Reference};
use std::path::{Path, PathBuf};
use std::process::Command;

fn node(name: &str, op: Op, i: &str, o: &str) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: vec![i.to_string()],
        outputs: vec![o.to_string()],
    }
}

/// A small CNN with two BCR layers and a dense one.
fn small_model() -> Model {
    let l = |n: &str, s: &str| Layer::from_spec(n, s).unwrap();
    Model {
        name: "small".to_string(),
        layers: vec![
            l("conv", "bcr-conv2d:C=2,O=8,H=6,W=6,kh=3,kw=3,pad=1,bias=true,block=4x6,sparsity=0.5,seed=1"),
            l("fc1", "bcr-fc:M=16,K=288,N=1,bias=true,block=8x16,sparsity=0.75,seed=2"),
            l("fc2", "fc:M=10,K=16,N=1,bias=true,seed=3"),
        ],
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 2, 6, 6],
            output: "y".to_string(),
            nodes: vec![
                node("conv", Op::Conv { layer: 0 }, "x", "a"),
                node("relu", Op::Relu, "a", "b"),
                node("flat", Op::Flatten { axis: 1 }, "b", "c"),
                node("fc1", Op::Fc { layer: 1 }, "c", "d"),
                node("relu2", Op::Relu, "d", "e"),
                node("fc2", Op::Fc { layer: 2 }, "e", "y"),
            ],
        }),
    }
}

fn run(m: &Model, x: &Array) -> Array {
    let Body::Graph(g) = &m.body else {
        panic!("{} is not a graph model", m.name)
    };
    eval::run_graph(g, &m.layers, x, &mut Reference::default()).unwrap()
}

fn grim(args: &[&str], models: Option<&Path>) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_grim-tune"));
    c.args(args);
    if let Some(d) = models {
        c.env("GRIM_MODELS_DIR", d);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn a_model_written_as_onnx_or_grim_file_computes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model();
    let src = dir.path().join("small.grim");
    model::file::save(&m, &src).unwrap();
    let onnx = dir.path().join("small.onnx");
    let again = dir.path().join("again.grim");
    for out in [&onnx, &again] {
        let (ok, stdout, err) = grim(&["convert", "--model", &s(&src), "--out", &s(out)], None);
        assert!(ok, "{err}");
        assert!(
            stdout.contains(&format!("wrote {}", out.display())),
            "{stdout}"
        );
    }
    assert!(
        grim(&["convert", "--model", &s(&src), "--out", &s(&onnx)], None)
            .1
            .contains("ONNX")
    );
    let from_onnx = model::onnx::import(&onnx, &model::onnx::ImportOptions::default()).unwrap();
    let from_file = model::file::load(&again).unwrap();
    // The ONNX file has no sparsity: its layers are dense, with the pruned entries zero.
    assert!(from_onnx.layers.iter().all(|l| l.spec.sparse().is_none()));
    assert!(
        m.layers
            .iter()
            .filter(|l| l.spec.sparse().is_some())
            .count()
            == 2
    );
    let mut rng = tir::rng::SplitMix64::new(7);
    for _ in 0..3 {
        let x = Array::new(vec![1, 2, 6, 6], rng.symmetric_vec(72, 1.0)).unwrap();
        let want = run(&m, &x);
        assert!(run(&from_onnx, &x).max_abs_diff(&want) < 1e-5);
        assert_eq!(run(&from_file, &x).data(), want.data());
    }
}

#[test]
fn bad_requests_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("small.grim");
    model::file::save(&small_model(), &src).unwrap();
    // A truncated model file.
    let bytes = std::fs::read(&src).unwrap();
    let cut = dir.path().join("cut.grim");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("out.onnx");
    let (ok, _, err) = grim(&["convert", "--model", &s(&cut), "--out", &s(&out)], None);
    assert!(!ok && err.contains("cut.grim"), "{err}");
    assert!(!out.exists());
    // An output in a folder that does not exist.
    let nowhere = dir.path().join("no/such/dir/m.onnx");
    let (ok, _, err) = grim(
        &["convert", "--model", &s(&src), "--out", &s(&nowhere)],
        None,
    );
    assert!(!ok && err.contains("no/such/dir"), "{err}");
    // Test data that does not exist; samples without data and data without samples.
    let samples = dir.path().join("samples");
    let missing = dir.path().join("missing.csv.gz");
    let (ok, _, err) = grim(
        &[
            "convert",
            "--model",
            &s(&src),
            "--out",
            &s(&out),
            "--data",
            &s(&missing),
            "--samples-out",
            &s(&samples),
        ],
        None,
    );
    assert!(!ok && err.contains("missing.csv.gz"), "{err}");
    assert!(!samples.exists() && !out.exists());
    let (ok, _, err) = grim(
        &[
            "convert",
            "--model",
            &s(&src),
            "--out",
            &s(&out),
            "--samples-out",
            &s(&samples),
        ],
        None,
    );
    assert!(!ok && err.contains("--data"), "{err}");
    let (ok, _, err) = grim(
        &[
            "convert",
            "--model",
            &s(&src),
            "--out",
            &s(&out),
            "--data",
            "mnist",
        ],
        None,
    );
    assert!(!ok && err.contains("--samples-out"), "{err}");
}

/// The fetched models folder, or `None` (printed) when `files` are missing from it.
fn models_dir(files: &[&str]) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    let dir = match std::env::var_os("GRIM_MODELS_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root.join(d),
        None => root.join("models"),
    };
    for f in files {
        if !dir.join(f).is_file() {
            eprintln!(
                "skipping: {} is missing (run scripts/fetch-models.sh)",
                dir.join(f).display()
            );
            return None;
        }
    }
    Some(dir)
}

fn f32s(path: &Path) -> Vec<f32> {
    model::standalone::f32_values(&std::fs::read(path).unwrap())
}

#[test]
fn the_mnist_cnn_samples_are_the_test_split_with_reference_outputs() {
    let Some(models) = models_dir(&["handwriting_model.pth", "mnist_5k.csv.gz"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (onnx, samples) = (dir.path().join("mnist.onnx"), dir.path().join("samples"));
    let (ok, stdout, err) = grim(
        &[
            "convert",
            "--model",
            "mnist-cnn",
            "--out",
            &s(&onnx),
            "--data",
            "mnist",
            "--calib-size",
            "1000",
            "--limit",
            "60",
            "--samples-out",
            &s(&samples),
        ],
        Some(&models),
    );
    assert!(ok, "{err}");
    assert!(stdout.contains("wrote 60 test samples"), "{stdout}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(samples.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["inputs"]["shape"], serde_json::json!([60, 1, 28, 28]));
    assert_eq!(meta["outputs"]["shape"], serde_json::json!([60, 10]));
    assert_eq!(meta["labels"]["shape"], serde_json::json!([60]));
    assert_eq!(meta["calib_size"], 1000);
    // The same test split `grim-tune run` scores: images 1000.. of the interleaved set.
    let m = model::zoo::mnist_cnn::load(&models).unwrap();
    let task = model::task::Task::load(&m, &models.join("mnist_5k.csv.gz"), 1000).unwrap();
    let model::task::Task::Mnist { test, .. } = &task else {
        panic!("not MNIST")
    };
    let (xs, ys) = (
        f32s(&samples.join("x.f32")),
        f32s(&samples.join("y_ref.f32")),
    );
    let labels = std::fs::read(samples.join("labels.u8")).unwrap();
    assert_eq!((xs.len(), ys.len()), (60 * 784, 60 * 10));
    assert_eq!(labels, test.labels[..60]);
    let mut correct = 0;
    for i in 0..60 {
        let x = test.input(i).unwrap();
        assert_eq!(&xs[i * 784..(i + 1) * 784], x.data(), "image {i}");
        let y = run(&m, &x);
        assert_eq!(&ys[i * 10..(i + 1) * 10], y.data(), "image {i}");
        correct += usize::from(y.argmax() == Some(usize::from(labels[i])));
    }
    let top1 = meta["reference_top1"].as_f64().unwrap();
    assert!((top1 - correct as f64 / 60.0).abs() < 1e-12, "{top1}");
    assert!(
        top1 > 0.9,
        "the dense MNIST CNN scores {top1} on 60 test images"
    );
    // onnxruntime on the written ONNX file and samples: the same logits.
    let Some(py) = onnxruntime_python() else {
        return;
    };
    let code = r#"
import json, sys, numpy as np, onnxruntime as ort
d, path = sys.argv[1], sys.argv[2]
meta = json.load(open(d + "/meta.json"))
x = np.fromfile(d + "/x.f32", "<f4").reshape(meta["inputs"]["shape"])
ref = np.fromfile(d + "/y_ref.f32", "<f4").reshape(meta["outputs"]["shape"])
sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
worst = max(float(np.max(np.abs(sess.run(None, {name: x[i:i + 1]})[0].reshape(-1) - ref[i])))
            for i in range(x.shape[0]))
print(worst)
"#;
    let out = Command::new(&py)
        .args(["-c", code, &s(&samples), &s(&onnx)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let worst: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        worst < 1e-4,
        "onnxruntime differs from grim's reference by {worst}"
    );
}

/// A Python with onnxruntime (`GRIM_ONNX_PYTHON`, or `.venv-onnx` from scripts/test),
/// or `None` (printed).
fn onnxruntime_python() -> Option<PathBuf> {
    let py = std::env::var_os("GRIM_ONNX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-onnx/bin/python"));
    let ok = Command::new(&py)
        .args(["-c", "import onnxruntime, numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "skipping the onnxruntime check: {} cannot import onnxruntime (run scripts/test)",
            py.display()
        );
        return None;
    }
    Some(py)
}

#[test]
fn samples_of_an_encoder_decoder_are_refused_before_writing() {
    let Some(models) = models_dir(&["checkpoint20.npz", "cmudict.dict"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, samples) = (dir.path().join("g2p.grim"), dir.path().join("samples"));
    let (ok, _, err) = grim(
        &[
            "convert",
            "--model",
            "g2p",
            "--out",
            &s(&out),
            "--data",
            "cmudict",
            "--samples-out",
            &s(&samples),
        ],
        Some(&models),
    );
    assert!(!ok && err.contains("encoder-decoder"), "{err}");
    assert!(!out.exists() && !samples.exists());
    // As ONNX it is refused with the reason too.
    let onnx = dir.path().join("g2p.onnx");
    let (ok, _, err) = grim(
        &["convert", "--model", "g2p", "--out", &s(&onnx)],
        Some(&models),
    );
    assert!(!ok && err.contains("greedy decoding"), "{err}");
    assert!(!onnx.exists());
}
