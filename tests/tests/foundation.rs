//! Whole paths over the foundation: spec -> workload -> printed IR -> parsed IR ->
//! interpreted, and serde round trips, for every workload kind.

use tir::parser::parse_function;
use tir::printer::print_function;
use tir::workload::Workload;
use tir::Function;

const SPECS: &[&str] = &[
    "bcr-fc:M=96,K=80,N=2,block=16x16,sparsity=0.85,bias=1,act=relu,seed=4",
    "fc:M=12,K=9,N=3,act=sigmoid",
    "bcr-conv2d:C=4,O=8,H=6,W=6,k=3,stride=1,pad=1,block=8x12,sparsity=0.7,act=tanh,seed=2",
    "conv2d:C=2,O=3,H=7,W=5,kh=3,kw=2,stride=2,dilation=2,pad=1",
    "bcr-gru:hidden=16,input=12,batch=2,block=8x4,sparsity=0.6,seed=3",
    "bcr-lstm:hidden=8,input=8,batch=1,block=8x8,sparsity=0.9,seed=5",
    "bias-add:M=5,N=3",
    "activation:fn=relu,M=4,N=4",
];

/// Interpreting the parsed text gives bit-identical outputs to interpreting the
/// lowered function: the text format loses nothing the interpreter depends on.
#[test]
fn printed_ir_runs_identically_after_parsing() {
    for spec in SPECS {
        let w = Workload::from_spec_str(spec).unwrap();
        let parsed = parse_function(&print_function(&w.func)).unwrap();
        tir::verify::verify(&parsed).unwrap();
        let inputs = w.random_inputs(11);
        let a = w.interpret(&inputs).unwrap();
        let b = w.interpret_function(&parsed, &inputs).unwrap();
        assert_eq!(a, b, "{spec}");
        assert!(!a.is_empty());
    }
}

/// Functions serialize to JSON and back unchanged (the tuner will store them).
#[test]
fn functions_round_trip_through_json() {
    for spec in SPECS {
        let w = Workload::from_spec_str(spec).unwrap();
        let json = serde_json::to_string(&w.func).unwrap();
        let back: Function = serde_json::from_str(&json).unwrap();
        assert_eq!(back, w.func, "{spec}");
    }
}

/// Keys are stable for a spec and distinguish every workload here.
#[test]
fn keys_are_deterministic_and_distinct() {
    let keys: Vec<_> = SPECS
        .iter()
        .map(|s| Workload::from_spec_str(s).unwrap().key())
        .collect();
    for (i, s) in SPECS.iter().enumerate() {
        assert_eq!(Workload::from_spec_str(s).unwrap().key(), keys[i]);
        for j in 0..i {
            assert_ne!(keys[i], keys[j], "{} vs {}", SPECS[i], SPECS[j]);
        }
    }
}
