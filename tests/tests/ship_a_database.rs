//! The offline path a team follows: tune a BCR layer under qemu into a database,
//! export the best schedules to a JSON Lines file, import it into a fresh database
//! (as an app build would), apply the best schedule, generate aarch64 code from it and
//! check it against the interpreter under qemu.

use codegen::harness::{measurement_source, Candidate};
use codegen::run::{max_error, run_candidate, Protocol};
use codegen::toolchain::{build_binary, Runner as Where};
use codegen::Target;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tir::workload::Workload;
use tuner::db_store::{identity_of, DbStore};
use tuner::measure::{Limits, QemuRunner};
use tuner::tune::{tune, NoProgress, Store, Strategy, TuneOptions};
use tuning_logs::{apply_best, export, import, ApplyBest, Database, ExportFilter};

#[test]
fn tune_export_import_apply_and_run() {
    let dir = std::env::temp_dir().join(format!("grim-ship-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let w = Workload::from_spec_str(
        "bcr-fc:M=64,K=64,N=4,block=16x16,sparsity=0.85,bias=1,act=relu,seed=4",
    )
    .unwrap();
    let runner = QemuRunner::new("cortex-a76", "cortex-a76", Limits::default());

    // Tune into a database.
    let db = Arc::new(Database::open(&dir.join("tuning-db")).unwrap());
    let mut store = DbStore::new(db.clone(), &w, &runner).unwrap();
    let opts = TuneOptions {
        trials: 8,
        strategy: Strategy::Random,
        seed: 3,
        work_dir: dir.join("work"),
        ..TuneOptions::default()
    };
    let report = tune(
        &w,
        &runner,
        &mut store,
        &opts,
        &NoProgress,
        &AtomicBool::new(false),
    )
    .unwrap();
    let best_cost = report.best().and_then(|t| t.cost()).unwrap();
    assert_eq!(store.history().len(), 8);

    // Export the best schedule only, then import into a fresh database.
    let file = dir.join("best.jsonl");
    let n = export(
        &db,
        &file,
        &ExportFilter {
            target: None,
            device: None,
            best_only: true,
        },
    )
    .unwrap();
    assert_eq!(n, 1);
    drop(store);
    drop(db);
    let shipped = Database::open(&dir.join("app-db")).unwrap();
    import(&shipped, &file, false).unwrap();

    // Apply it: the same best, by instruction count, replayed from the shipped file.
    let (target, device) = identity_of(&runner).unwrap();
    let schedule = match apply_best(&shipped, &w, &target, &device).unwrap() {
        ApplyBest::Tuned { schedule, record } => {
            assert_eq!(record.record.cost(), Some(best_cost));
            schedule
        }
        ApplyBest::NoRecord(n) => panic!("{n}"),
    };
    // Another device has nothing tuned, and says so.
    let mut other = device.clone();
    other.model = "another phone".into();
    match apply_best(&shipped, &w, &target, &other).unwrap() {
        ApplyBest::NoRecord(n) => assert!(n.to_string().contains("no tuned schedule for"), "{n}"),
        ApplyBest::Tuned { .. } => panic!("a schedule leaked across devices"),
    }

    // Generate aarch64 code from the applied schedule and check it under qemu.
    let func = tuner::pipeline::optimize(schedule.func());
    let target_cg = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    let src = measurement_source(&[Candidate { func: &func }], &target_cg).unwrap();
    let bin = build_binary(
        &src,
        &dir.join("build"),
        &target_cg,
        Duration::from_secs(120),
    )
    .unwrap();
    let inputs = w.random_inputs(9);
    let mut args = inputs.clone();
    args.extend(schedule.weights().clone());
    let protocol = Protocol {
        number: 1,
        repeat: 1,
        min_repeat_ms: 0.0,
        timeout: Duration::from_secs(60),
        threads: None,
    };
    let got = run_candidate(
        &bin,
        &Where::Qemu {
            cpu: "cortex-a76".into(),
        },
        0,
        &func,
        &args,
        &protocol,
        &dir.join("run"),
    )
    .unwrap();
    let want = w.interpret(&inputs).unwrap();
    let (_, rel) = max_error(&got.outputs, &want).unwrap();
    assert!(rel <= 1e-4, "rel error {rel}");
    let _ = std::fs::remove_dir_all(&dir);
}
