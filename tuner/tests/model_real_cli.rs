//! The whole-model workflow of the README on the real MNIST CNN (skipped with a
//! printed reason when `scripts/fetch-models.sh` has not fetched it): prune (gradually,
//! in two fine-tuned stages), tune the pruned model's layers, run dense vs BCR
//! compiled with the tuned schedules; bad pruning requests fail before any work.

use std::path::{Path, PathBuf};
use std::process::Command;

fn models_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    let dir = match std::env::var_os("GRIM_MODELS_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => root.join(d),
        None => root.join("models"),
    };
    for f in ["handwriting_model.pth", "mnist_5k.csv.gz"] {
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

fn grim(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(args)
        .env("GRIM_MODELS_DIR", dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn prune_tune_and_run_the_mnist_cnn() {
    let Some(models) = models_dir() else { return };
    let work = tempfile::tempdir().unwrap();
    let bcr = work.path().join("mnist.bcr");
    let db = work.path().join("db");
    let (bcr_s, db_s) = (
        bcr.to_string_lossy().to_string(),
        db.to_string_lossy().to_string(),
    );
    let (ok, out, err) = grim(
        &[
            "prune",
            "--model",
            "mnist-cnn",
            "--compression",
            "4",
            "--calib",
            "mnist",
            "--calib-size",
            "200",
            "--finetune-epochs",
            "1",
            "--gradual-steps",
            "2",
            "--spread",
            "best",
            "--out",
            &bcr_s,
        ],
        &models,
    );
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("test: BCR, fine-tuned top-1"), "{out}");
    // Gradual pruning in two stages, each fine-tuned and scored.
    assert!(
        out.contains("test: gradual stage 1/2") && out.contains("test: gradual stage 2/2"),
        "{out}"
    );
    assert!(err.contains("fine-tune: lr"), "progress lines: {err}");
    assert!(
        out.contains("block 32x32") && out.contains("fc_layers.0"),
        "{out}"
    );
    assert!(out.contains("test: dense top-1 99."), "{out}");
    assert!(
        err.contains("sensitivity conv_layers.3"),
        "progress lines: {err}"
    );
    // The sequential refit on paired calibration inputs ran layer by layer.
    assert!(
        err.contains("sequential refit: fc_layers.0:") && err.contains("kept the"),
        "progress lines: {err}"
    );
    // With `--spread best`, both spreads of the kept weights were scored at the chosen
    // rates, and the report names the one kept.
    assert!(
        err.contains("kept weights spread over the blocks: score"),
        "progress lines: {err}"
    );
    assert!(out.contains("kept weights: "), "{out}");
    let m = model::file::load(&bcr).unwrap();
    assert!(model::rates::compression(&m) >= 4.0);
    let (ok, out, err) = grim(
        &[
            "tune",
            "--model",
            &bcr_s,
            "--trials",
            "12",
            "--no-dense",
            "--db",
            &db_s,
        ],
        &models,
    );
    assert!(ok, "{out}\n{err}");
    assert!(
        err.contains("5 layers, 5 distinct workloads to tune, plus the dense forms of"),
        "{err}"
    );
    let (ok, out, err) = grim(
        &[
            "run",
            "--model",
            &bcr_s,
            "--dense",
            "mnist-cnn",
            "--data",
            "mnist",
            "--calib-size",
            "200",
            "--limit",
            "200",
            "--repeat",
            "3",
            "--check",
            "1",
            "--db",
            &db_s,
        ],
        &models,
    );
    assert!(ok, "{out}\n{err}");
    // Both rows, every layer of both models tuned: the dense model's layers are the
    // same workloads as the BCR model's unpruned layers and its pruned layers' dense
    // forms, which `tune --model` tunes too.
    let row = |r: &str| {
        out.lines()
            .find(|l| l.starts_with(r))
            .unwrap_or("")
            .to_string()
    };
    assert!(row("| dense |").contains("| 5/5 |"), "{out}");
    assert!(
        row("| BCR |").contains("| 5/5 |"),
        "every BCR layer uses a tuned schedule: {out}"
    );
    assert!(!out.contains("no tuned schedule"), "{out}");
    assert!(out.contains("max abs diff"), "{out}");
    let top1 = |row: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(row)).unwrap();
        let at = line.find("top-1 ").unwrap() + 6;
        line[at..].split('%').next().unwrap().parse().unwrap()
    };
    assert!(top1("| dense |") >= 99.0, "{out}");
    assert!(top1("| BCR |") >= 90.0, "{out}");
    // The per-layer table: a row per layer with both models' times, the glue, the
    // total.
    assert!(out.contains("Where the time goes"), "{out}");
    assert!(
        out.contains("| speedup | fewer multiply-adds | share |"),
        "{out}"
    );
    for layer in [
        "conv_layers.0",
        "conv_layers.3",
        "conv_layers.6",
        "fc_layers.0",
        "fc_layers.2",
    ] {
        let row = out
            .lines()
            .find(|l| l.starts_with(&format!("| `{layer}` | 1 |")))
            .unwrap_or_else(|| panic!("no profile row for {layer}: {out}"));
        assert_eq!(row.matches(" us |").count(), 2, "{row}");
    }
    assert!(out.lines().any(|l| l.starts_with("| glue ")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("| total |")), "{out}");
}

#[test]
fn bad_gradual_and_fine_tuning_requests_are_named_before_any_work() {
    let Some(models) = models_dir() else { return };
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("m.bcr").to_string_lossy().to_string();
    let run = |extra: &[&str]| {
        let base = [
            "prune",
            "--model",
            "mnist-cnn",
            "--calib",
            "mnist",
            "--out",
            &out,
        ];
        grim(&[&base[..], extra].concat(), &models)
    };
    let (ok, _, err) = run(&["--gradual-steps", "2"]);
    assert!(!ok && err.contains("--gradual-steps 2 needs"), "{err}");
    let (ok, _, err) = run(&["--gradual-steps", "0", "--finetune-epochs", "1"]);
    assert!(!ok && err.contains("at least 1 stage"), "{err}");
    let (ok, _, err) = run(&["--finetune-epochs", "1", "--finetune-words", "100"]);
    assert!(!ok && err.contains("g2p model only"), "{err}");
    let (ok, _, err) = run(&["--finetune-words", "none"]);
    assert!(!ok && err.contains("--finetune-words"), "{err}");
    let (ok, _, err) = run(&["--finetune-valid", "0"]);
    assert!(!ok && err.contains("at least 1"), "{err}");
    assert!(!work.path().join("m.bcr").exists());
}
