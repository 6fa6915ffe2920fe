//! `Workload::with_weights`: a layer built from given weights equals the same layer
//! built from the spec when the weights are the same, and bad weights are rejected.

use tir::workload::{GivenMatrix, GivenWeights, Workload, WorkloadError};

fn given_of(w: &Workload) -> GivenWeights {
    w.given_weights()
}

#[test]
fn given_weights_reproduce_the_spec_workload() {
    for spec in [
        "fc:M=24,K=40,N=2,bias=true,act=relu,seed=3",
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.75,bias=true,seed=4",
        "bcr-conv2d:C=4,O=16,H=6,W=6,kh=3,kw=3,pad=1,block=8x12,sparsity=0.5,bias=true,seed=5",
        "bcr-gru:hidden=16,input=8,block=8x8,sparsity=0.5,seed=6",
    ] {
        let w = Workload::from_spec_str(spec).unwrap();
        let again = Workload::with_weights(w.spec.clone(), &given_of(&w)).unwrap();
        assert_eq!(w.key(), again.key(), "{spec}");
        let inputs = w.random_inputs(9);
        let a = w.interpret(&inputs).unwrap();
        let b = again.interpret(&inputs).unwrap();
        assert_eq!(a, b, "{spec}");
    }
}

#[test]
fn bad_given_weights_are_named() {
    let w =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.75,bias=true,seed=4")
            .unwrap();
    let mut g = given_of(&w);
    g.biases[0].pop();
    let e = Workload::with_weights(w.spec.clone(), &g).unwrap_err();
    assert!(
        matches!(&e, WorkloadError::GivenWeights { weight, .. } if weight == "B"),
        "{e}"
    );
    let g = GivenWeights {
        matrices: vec![GivenMatrix::Dense(w.matrices[0].dense.clone())],
        biases: given_of(&w).biases,
    };
    let e = Workload::with_weights(w.spec.clone(), &g).unwrap_err();
    assert!(e.to_string().contains("prune it first"), "{e}");
    let dense = Workload::from_spec_str("fc:M=8,K=8,N=1,seed=1").unwrap();
    let g = GivenWeights {
        matrices: vec![GivenMatrix::Dense(tir::Matrix::zeros(8, 9))],
        biases: vec![],
    };
    let e = Workload::with_weights(dense.spec.clone(), &g).unwrap_err();
    assert!(e.to_string().contains("shape"), "{e}");
}
