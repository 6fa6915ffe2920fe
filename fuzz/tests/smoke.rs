//! CI-sized fuzzing: every target for a few thousand inputs, zero panics, zero hangs.
//! (The counting allocator is installed here too, so the allocation cap is checked.)

use fuzz::{Options, Target};

#[global_allocator]
static ALLOC: fuzz::alloc::Counting = fuzz::alloc::Counting;

fn smoke(t: Target, n: u64) {
    let dir = tempfile_dir(t);
    let s = fuzz::run(&Options {
        target: t,
        iterations: n,
        seed: 20261129,
        out_dir: dir.clone(),
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(s.seeds > 0, "{}: empty seed corpus", t.name());
    assert_eq!(s.inputs, n);
    assert!(s.accepted > 0, "{}: nothing accepted", t.name());
    if let Some(f) = s.failure {
        panic!(
            "{}: {:?} on input {:?}",
            t.name(),
            f.kind,
            String::from_utf8_lossy(&f.input)
        );
    }
}

fn tempfile_dir(t: Target) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "grim-fuzz-smoke-{}-{}",
        std::process::id(),
        t.name()
    ))
}

#[test]
fn tir_text() {
    smoke(Target::TirText, 3000);
}

#[test]
fn spec() {
    smoke(Target::Spec, 5000);
}

#[test]
fn rules() {
    smoke(Target::Rules, 3000);
}

#[test]
fn trace_json() {
    smoke(Target::TraceJson, 5000);
}

#[test]
fn db_import() {
    smoke(Target::DbImport, 2000);
}

#[test]
fn timing_output() {
    smoke(Target::TimingOutput, 5000);
}

#[test]
fn outputs_file() {
    smoke(Target::OutputsFile, 5000);
}

#[test]
fn adb_output() {
    smoke(Target::AdbOutput, 5000);
}

#[test]
fn model_file() {
    smoke(Target::ModelFile, 3000);
}

#[test]
fn every_target_has_a_name_that_round_trips() {
    for t in Target::ALL {
        assert_eq!(Target::from_name(t.name()), Some(t));
    }
    assert_eq!(Target::from_name("onnx"), None);
}
