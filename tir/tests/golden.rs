//! Golden files: the printed IR of representative workloads and the workload keys of
//! the documented example specs. A change in lowering, printing or hashing shows up
//! here as a diff; after an intended change, regenerate with
//! `GRIM_BLESS=1 cargo test -p tir --test golden` and review the diff.

use std::path::PathBuf;
use tir::parser::parse_function;
use tir::printer::print_function;
use tir::workload::Workload;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn bless() -> bool {
    std::env::var_os("GRIM_BLESS").is_some()
}

/// Compares `actual` with the golden file `name`, or rewrites it when blessing.
fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if bless() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with GRIM_BLESS=1 to create)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n  golden: {:?}\n  actual: {:?}\n(run with GRIM_BLESS=1 to accept)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

const GOLDEN_IR: &[(&str, &str)] = &[
    ("fc.tir", "fc:M=4,K=3,N=2,bias=1,act=relu,seed=1"),
    (
        "bcr_fc.tir",
        "bcr-fc:M=8,K=8,N=1,block=4x4,sparsity=0.75,seed=1",
    ),
    (
        "bcr_conv2d.tir",
        "bcr-conv2d:C=2,O=4,H=5,W=5,k=3,stride=2,pad=1,block=2x9,sparsity=0.5,seed=1",
    ),
    (
        "bcr_gru.tir",
        "bcr-gru:hidden=4,input=4,batch=1,block=4x4,sparsity=0.5,seed=1",
    ),
    ("lstm.tir", "lstm:hidden=2,input=3,batch=1,seed=1"),
];

#[test]
fn golden_printed_ir() {
    for (file, spec) in GOLDEN_IR {
        let w = Workload::from_spec_str(spec).unwrap();
        let text = format!("# {}\n{}", w.spec, print_function(&w.func));
        check_golden(file, &text);
        // The golden text (with its comment line) parses back to the same function.
        let parsed = parse_function(&text).unwrap();
        assert_eq!(parsed, w.func, "{file}");
    }
}

/// Every documented example spec and one of each kind, with its key.
const KEYED_SPECS: &[&str] = &[
    "bcr-fc:M=2048,K=2048,N=1,block=32x32,sparsity=0.9,seed=1",
    "fc:M=1024,K=1024,N=64",
    "bcr-conv2d:C=64,O=64,H=56,W=56,k=3,stride=1,pad=1,block=16x32,sparsity=0.9,seed=1",
    "bcr-gru:hidden=256,input=256,batch=1,block=16x16,sparsity=0.9,seed=1",
    "bcr-lstm:hidden=64,input=32,batch=1,block=16x16,sparsity=0.8,seed=2",
    "conv2d:C=3,O=8,H=16,W=16,k=3,pad=1,bias=1,act=relu",
    "gru:hidden=16,input=8",
    "bias-add:M=16,N=4",
    "activation:fn=sigmoid,M=16,N=4",
];

#[test]
fn golden_workload_keys() {
    let mut text = String::new();
    for spec in KEYED_SPECS {
        let w = Workload::from_spec_str(spec).unwrap();
        text.push_str(&format!("{} {}\n", w.key(), w.spec));
    }
    check_golden("keys.txt", &text);
}

/// Print/parse round trip over every lowered workload kind, dense and BCR.
#[test]
fn print_parse_round_trip_all_workloads() {
    for spec in KEYED_SPECS.iter().chain(GOLDEN_IR.iter().map(|(_, s)| s)) {
        let w = Workload::from_spec_str(spec).unwrap();
        let text = print_function(&w.func);
        let parsed = parse_function(&text).unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(print_function(&parsed), text, "{spec}");
        assert_eq!(parsed, w.func, "{spec}");
    }
}
