//! `grim-tune tune --model`: every distinct layer of a model file is tuned with its
//! real weights, and the compiled model then uses the tuned schedules and still
//! matches the interpreter.

use model::compiled::{schedules, Compiled, LayerSchedule, ScheduleSource};
use model::graph::{Graph, Node, Op};
use model::layer::Layer;
use model::{eval, Array, Body, Interpreter, Model};
use std::process::Command;

fn node(name: &str, op: Op, i: &str, o: &str) -> Node {
    Node {
        name: name.to_string(),
        op,
        inputs: vec![i.to_string()],
        outputs: vec![o.to_string()],
    }
}

fn small_model() -> Model {
    let l = |n: &str, s: &str| Layer::from_spec(n, s).unwrap();
    Model {
        name: "small".to_string(),
        layers: vec![
            l("conv", "bcr-conv2d:C=4,O=16,H=6,W=6,kh=3,kw=3,pad=1,bias=true,block=8x12,sparsity=0.5,seed=1"),
            l("fc1", "bcr-fc:M=64,K=576,N=1,bias=true,block=16x16,sparsity=0.75,seed=2"),
            l("fc2", "fc:M=10,K=64,N=1,bias=true,seed=3"),
        ],
        body: Body::Graph(Graph {
            input: "x".to_string(),
            input_shape: vec![1, 4, 6, 6],
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

/// Compiles `m` in process with `funcs` and checks three random inputs against the
/// interpreter.
fn assert_compiled_matches_interpreter(m: &Model, funcs: Vec<LayerSchedule>, seed: u64) {
    let mut compiled = Compiled::build(&m.layers, funcs, &tuner::pipeline::optimize).unwrap();
    let Body::Graph(g) = &m.body else {
        unreachable!()
    };
    let mut rng = tir::rng::SplitMix64::new(seed);
    for _ in 0..3 {
        let x = Array::new(vec![1, 4, 6, 6], rng.symmetric_vec(144, 1.0)).unwrap();
        let a = eval::run_graph(g, &m.layers, &x, &mut compiled).unwrap();
        let b = eval::run_graph(g, &m.layers, &x, &mut Interpreter::default()).unwrap();
        assert!(a.max_abs_diff(&b) < 1e-4, "{}", a.max_abs_diff(&b));
    }
}

#[test]
fn tune_a_model_then_run_it_with_the_tuned_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.bcr");
    let m = small_model();
    model::file::save(&m, &path).unwrap();
    let db = dir.path().join("db");
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["tune", "--model"])
        .arg(&path)
        .args(["--trials", "12", "--no-dense", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "3 layers, 3 distinct workloads to tune, plus the dense forms of 2 pruned ones"
        ),
        "{stderr}"
    );
    for layer in [
        "conv",
        "fc1",
        "fc2",
        "conv (dense form)",
        "fc1 (dense form)",
    ] {
        assert!(stdout.contains(layer), "{stdout}");
    }
    let db = tuning_logs::Database::open(&db).unwrap();
    let device = tuning_logs::DeviceIdentity::host();
    let funcs = schedules(&m.layers, Some(&db), &tuning_logs::Target::HOST, &device).unwrap();
    // Each pruned layer runs as the faster of its two tuned forms, by their records.
    let best = |w: &tir::workload::Workload| match tuning_logs::apply_best(
        &db,
        w,
        &tuning_logs::Target::HOST,
        &device,
    )
    .unwrap()
    {
        tuning_logs::ApplyBest::Tuned { record, .. } => record.record.cost().unwrap(),
        tuning_logs::ApplyBest::NoRecord(_) => panic!("no record for {}", w.spec),
    };
    for (l, f) in m.layers.iter().zip(&funcs) {
        let own = best(&l.workload().unwrap());
        match (l.densified(), &f.source) {
            (None, ScheduleSource::Tuned { cost }) => assert_eq!(*cost, own),
            (Some(d), source) => {
                let dense = best(&d.unwrap().workload().unwrap());
                match source {
                    ScheduleSource::Tuned { cost } => assert!(*cost == own && own <= dense),
                    ScheduleSource::DenseForm { cost, bcr_cost } => {
                        assert!(*cost == dense && *bcr_cost == Some(own) && dense < own)
                    }
                    ScheduleSource::Default => panic!("{}: default", l.name),
                }
            }
            (None, other) => panic!("{}: {other:?}", l.name),
        }
    }
    assert_compiled_matches_interpreter(&m, funcs, 3);
}

/// A pruned layer whose dense form has a tuned schedule and whose BCR kernel has none
/// runs as the dense form, in process and with the interpreter's outputs.
#[test]
fn a_pruned_layer_runs_as_its_tuned_dense_form() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model();
    // Tune only the dense forms: the same model with each pruned layer replaced by its
    // dense form (the unpruned fc2 stays as it is).
    let mut dense_only = m.clone();
    dense_only.layers = m
        .layers
        .iter()
        .map(|l| l.densified().map_or_else(|| l.clone(), |d| d.unwrap()))
        .collect();
    assert!(dense_only.layers.iter().all(|l| l.spec.sparse().is_none()));
    let path = dir.path().join("dense-forms.bcr");
    model::file::save(&dense_only, &path).unwrap();
    let db = dir.path().join("db");
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["tune", "--model"])
        .arg(&path)
        .args(["--trials", "8", "--no-dense", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let db = tuning_logs::Database::open(&db).unwrap();
    let device = tuning_logs::DeviceIdentity::host();
    let funcs = schedules(&m.layers, Some(&db), &tuning_logs::Target::HOST, &device).unwrap();
    let sources: Vec<&ScheduleSource> = funcs.iter().map(|f| &f.source).collect();
    assert!(
        matches!(sources[0], ScheduleSource::DenseForm { cost, bcr_cost: None } if *cost > 0.0),
        "{sources:?}"
    );
    assert!(
        matches!(sources[1], ScheduleSource::DenseForm { cost, bcr_cost: None } if *cost > 0.0),
        "{sources:?}"
    );
    assert!(
        matches!(sources[2], ScheduleSource::Tuned { .. }),
        "{sources:?}"
    );
    assert!(funcs[1].weights.contains_key("W") && !funcs[1].weights.contains_key("W_row_ptr"));
    assert_compiled_matches_interpreter(&m, funcs, 4);
}

#[test]
fn tune_rejects_a_bad_model_file_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.bcr");
    std::fs::write(
        &path,
        "{\"format\": \"grim-model\", \"version\": 1, \"model\": {\"name\": 3}}",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["tune", "--model"])
        .arg(&path)
        .args(["--db"])
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("broken.bcr") && stderr.contains("model.name"),
        "{stderr}"
    );
}

/// A whole model's standalone NEON program pushed with the real adb to the loopback
/// device (run there under qemu), outputs pulled back: equal to the interpreter.
#[test]
fn a_compiled_model_runs_over_adb() {
    use adb_loopback::server::AdbServer;
    use tuner::model_run::{run_program, target_for, ModelDevice};
    use tuner::tune_cmd::DeviceArg;
    let dev = adb_loopback::spawn(adb_loopback::Config::default()).unwrap();
    let adb = AdbServer::start().expect("an isolated adb server (is Debian's adb installed?)");
    adb.connect(&dev.serial(), std::time::Duration::from_secs(20))
        .unwrap();
    let m = small_model();
    let device = tuning_logs::DeviceIdentity::host();
    let scheds = schedules(&m.layers, None, &tuning_logs::Target::HOST, &device).unwrap();
    let on = ModelDevice {
        device: DeviceArg::Adb(dev.serial()),
        adb: Some(adb.wrapper().unwrap()),
        target: target_for(&DeviceArg::Adb(dev.serial()), "cortex-a76").unwrap(),
        timeout: std::time::Duration::from_secs(120),
        threads: Some(2),
    };
    let prog =
        model::standalone::generate(&m, &scheds, &tuner::pipeline::optimize, &on.target).unwrap();
    let mut rng = tir::rng::SplitMix64::new(9);
    let xs: Vec<Array> = (0..3)
        .map(|_| Array::new(vec![1, 4, 6, 6], rng.symmetric_vec(144, 1.0)).unwrap())
        .collect();
    let input = model::standalone::f32_bytes(&xs.iter().map(|x| x.data()).collect::<Vec<_>>());
    let work = tempfile::tempdir().unwrap();
    let out = run_program(&prog, &on, work.path(), &input, 2).unwrap();
    assert!(out.timing.is_some());
    let ys = model::standalone::f32_values(&out.output);
    let Body::Graph(g) = &m.body else {
        unreachable!()
    };
    for (i, x) in xs.iter().enumerate() {
        let want = eval::run_graph(g, &m.layers, x, &mut Interpreter::default()).unwrap();
        let got = &ys[i * prog.output_len..(i + 1) * prog.output_len];
        let d = got
            .iter()
            .zip(want.data())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(d < 1e-4, "sample {i}: {d}");
    }
    // The session directory is gone from the device.
    let left = dev.root().join("data/local/tmp/grim");
    let n = std::fs::read_dir(&left).map(|d| d.count()).unwrap_or(0);
    assert_eq!(n, 0, "left on the device: {}", left.display());
    // An unknown serial is a clear error.
    let bad = ModelDevice {
        device: DeviceArg::Adb("127.0.0.1:1".to_string()),
        ..on
    };
    let e = run_program(&prog, &bad, work.path(), &input, 0).unwrap_err();
    assert!(e.contains("127.0.0.1:1"), "{e}");
}

/// A model's trial budget follows where the time goes: a conv with few weights applied
/// at many positions gets more trials than an FC with many weights applied once.
#[test]
fn trials_are_split_by_multiply_adds() {
    let l = |n: &str, s: &str| Layer::from_spec(n, s).unwrap();
    let mut m = small_model();
    m.layers = vec![
        // 2304 weights at 28x28 positions: 1.8M multiply-adds.
        l("conv", "conv2d:C=16,O=16,H=28,W=28,kh=3,kw=3,pad=1,seed=1"),
        // 65536 weights once: 65k multiply-adds.
        l(
            "fc",
            "bcr-fc:M=256,K=256,N=1,block=16x16,sparsity=0.5,seed=2",
        ),
    ];
    assert!(m.layers[0].dense_macs() > 20 * m.layers[1].dense_macs());
    assert!(m.layers[0].dense_params() < m.layers[1].dense_params());
    let (jobs, lines) = tuner::tune_cmd::model_jobs(&m, 40).unwrap();
    let trials: Vec<(&str, usize)> = jobs.iter().map(|j| (j.label.as_str(), j.trials)).collect();
    assert_eq!(jobs.len(), 3, "{trials:?}");
    assert!(
        trials[0].0.starts_with("conv ") && trials[0].1 == 39,
        "{trials:?}"
    );
    assert!(
        trials[1].0.starts_with("fc ") && trials[1].1 == 4,
        "{trials:?}"
    );
    assert!(
        trials[2].0.starts_with("fc (dense form) ") && trials[2].1 == 4,
        "{trials:?}"
    );
    assert_eq!(
        jobs.iter().map(|j| j.dense_form).collect::<Vec<_>>(),
        vec![false, false, true]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("fc (dense form): fc:M=256")),
        "{lines:?}"
    );
}

/// `grim-tune check --model FILE --layer NAME` builds and checks one layer of a model
/// file with its own weights (and keeps the files with --keep); an unknown layer is an
/// error naming the file and listing the layers; --layer needs --model.
#[test]
fn check_a_model_layer_with_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.bcr");
    model::file::save(&small_model(), &path).unwrap();
    let keep = dir.path().join("kept");
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["check", "--model"])
        .arg(&path)
        .args(["--layer", "fc1", "--keep"])
        .arg(&keep)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("workload  bcr-fc:M=64,K=576,N=1"),
        "{stdout}"
    );
    assert!(stdout.contains("layer     `fc1` of "), "{stdout}");
    assert!(stdout.contains("(tolerance 1e-4): ok"), "{stdout}");
    for f in ["kernels.c", "kernels", "in0.bin", "out0.bin"] {
        assert!(keep.join(f).is_file(), "{f} kept");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["check", "--model"])
        .arg(&path)
        .args(["--layer", "fc9"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("small.bcr: no layer `fc9` (layers: conv, fc1, fc2)"),
        "{stderr}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(["check", "--layer", "fc1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--model"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
