//! Malformed workload specs: each gets an error naming the key at fault, with the
//! exact message asserted; valid specs round-trip through their canonical form.

use tir::spec::WorkloadSpec;
use tir::workload::Workload;

fn err(spec: &str) -> String {
    match spec.parse::<WorkloadSpec>() {
        Ok(s) => panic!("`{spec}` parsed as {s}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_specs_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("fc", "expected `KIND:KEY=VALUE,...`, found no ':' in `fc`"),
        ("mlp:M=1", "unknown workload kind `mlp`"),
        (
            "bcr-activation:fn=relu,M=1,N=1",
            "unknown workload kind `bcr-activation`",
        ),
        ("fc:M=4,K=4", "missing key `N` for `fc`"),
        (
            "fc:M=4,K=4,N=1,Q=3",
            "unknown key `Q` for `fc` (accepted: M, K, N, bias, act, seed)",
        ),
        ("fc:M=4,K=4,N=1,block=2x2", "unknown key `block` for `fc`"),
        ("fc:M=4,M=5,K=4,N=1", "key `M` given more than once"),
        (
            "fc:M=four,K=4,N=1",
            "bad value `four` for key `M`: expected an integer in 1..=1048576",
        ),
        ("fc:M=0,K=4,N=1", "bad value `0` for key `M`"),
        ("fc:M=-3,K=4,N=1", "bad value `-3` for key `M`"),
        (
            "fc:M=4,K=4,N=1,bias=yes",
            "bad value `yes` for key `bias`: expected 0, 1, true or false",
        ),
        (
            "fc:M=4,K=4,N=1,act=gelu",
            "bad value `gelu` for key `act`: expected none, relu, sigmoid or tanh",
        ),
        ("fc:M=4,K=4,N=1,seed=-1", "bad value `-1` for key `seed`"),
        ("fc:M=4,K=4,N=1,M", "expected KEY=VALUE, found `M`"),
        ("fc:=4,K=4,N=1", "expected KEY=VALUE, found `=4`"),
        (
            "bcr-fc:M=4,K=4,N=1,sparsity=0.5",
            "missing key `block` for `bcr-fc`",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2x2",
            "missing key `sparsity` for `bcr-fc`",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2,sparsity=0.5",
            "bad value `2` for key `block`: expected RxC, e.g. 16x32",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=0x2,sparsity=0.5",
            "bad value `0x2` for key `block`",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2xq,sparsity=0.5",
            "bad value `2xq` for key `block`",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=8x2,sparsity=0.5",
            "invalid `block`: block 8x2 is larger than the M x K weight matrix 4x4",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2x2,sparsity=1",
            "bad value `1` for key `sparsity`: expected a number in [0, 1)",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2x2,sparsity=-0.1",
            "bad value `-0.1` for key `sparsity`",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2x2,sparsity=NaN",
            "bad value `NaN` for key `sparsity`",
        ),
        (
            "bcr-fc:M=4,K=4,N=1,block=2x2,sparsity=0.5,spread=rows",
            "bad value `rows` for key `spread`: expected uniform or blocks",
        ),
        (
            "fc:M=4,K=4,N=1,spread=blocks",
            "unknown key `spread` for `fc`",
        ),
        ("conv2d:C=3,O=8,H=8,W=8", "missing key `k` for `conv2d`"),
        (
            "conv2d:C=3,O=8,H=4,W=4,k=7",
            "invalid `kh`: kernel (with dilation) is larger than the padded input height",
        ),
        (
            "conv2d:C=3,O=8,H=8,W=8,k=3,stride=0",
            "bad value `0` for key `stride`",
        ),
        (
            "bcr-conv2d:C=1,O=8,H=8,W=8,k=1,block=4x2,sparsity=0.5",
            "invalid `block`: block 4x2 is larger than the O x (C*kh*kw) weight matrix 8x1",
        ),
        ("gru:hidden=8", "missing key `input` for `gru`"),
        (
            "bcr-gru:hidden=8,input=2,block=4x4,sparsity=0.5",
            "invalid `block`: block 4x4 is larger than the input weight matrix 24x2",
        ),
        (
            "activation:fn=none,M=2,N=2",
            "bad value `none` for key `fn`: expected relu, sigmoid or tanh",
        ),
        ("activation:M=2,N=2", "missing key `fn` for `activation`"),
        (
            "fc:M=1048576,K=1048576,N=1",
            "invalid `M`: a tensor of [1048576, 1048576] has more than 268435456 elements",
        ),
    ];
    assert!(cases.len() >= 10);
    for (spec, want) in cases {
        let got = err(spec);
        assert!(got.contains(want), "`{spec}`:\n  got  {got}\n  want {want}");
    }
}

#[test]
fn canonical_form_round_trips() {
    for spec in [
        "bcr-fc:M=2048,K=2048,N=1,block=32x32,sparsity=0.9,seed=1",
        "fc:M=1024,K=1024,N=64",
        "bcr-conv2d:C=64,O=64,H=56,W=56,k=3,stride=1,pad=1,block=16x32,sparsity=0.9,seed=1",
        "bcr-gru:hidden=256,input=256,batch=1,block=16x16,sparsity=0.9,seed=1",
        "bcr-gru:hidden=256,input=256,batch=1,block=16x16,sparsity=0.9,spread=blocks,seed=1",
        "lstm:input=3,hidden=5,batch=2,seed=7",
        " fc : M = 3 , K=2,N=1, act=relu ,bias=true",
        "bias-add:M=3,N=4",
        "activation:fn=tanh,M=3,N=4",
    ] {
        let parsed: WorkloadSpec = spec.parse().unwrap();
        let canonical = parsed.to_string();
        let again: WorkloadSpec = canonical.parse().unwrap();
        assert_eq!(parsed, again, "{spec} -> {canonical}");
        assert_eq!(again.to_string(), canonical);
    }
    assert_eq!(
        "fc:M=1024,K=1024,N=64"
            .parse::<WorkloadSpec>()
            .unwrap()
            .to_string(),
        "fc:M=1024,K=1024,N=64,bias=0,act=none,seed=1"
    );
}

#[test]
fn same_spec_same_pattern_different_seed_different_pattern() {
    let a =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=1").unwrap();
    let b =
        Workload::from_spec_str("bcr-fc:K=64,M=64,N=1,sparsity=0.8,block=16x16,seed=1").unwrap();
    let c =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=2").unwrap();
    assert_eq!(a.key(), b.key());
    assert_eq!(a.weights, b.weights);
    // Per-block kept counts depend only on the block shape and sparsity, so the
    // buffers have the same sizes and the structure is the same; the pattern is not.
    assert_eq!(a.key().structure, c.key().structure);
    assert_ne!(a.key().pattern, c.key().pattern);
}

/// `spread=blocks` keeps as many weights as the uniform pattern of the same spec (up to
/// one block row or column), in
/// blocks of different shapes; `spread=uniform` is the default and is not printed, so
/// specs written before the key existed keep their text and their pattern.
#[test]
fn spread_blocks_keeps_the_count_in_blocks_of_different_shapes() {
    let uniform =
        Workload::from_spec_str("bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,seed=1").unwrap();
    let named = Workload::from_spec_str(
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,spread=uniform,seed=1",
    )
    .unwrap();
    assert_eq!(named.weights, uniform.weights);
    assert_eq!(
        named.spec.to_string(),
        "bcr-fc:M=64,K=64,N=1,bias=0,act=none,block=16x16,sparsity=0.8,seed=1"
    );
    let spread = Workload::from_spec_str(
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.8,spread=blocks,seed=1",
    )
    .unwrap();
    assert_eq!(
        spread.spec.to_string(),
        "bcr-fc:M=64,K=64,N=1,bias=0,act=none,block=16x16,sparsity=0.8,spread=blocks,seed=1"
    );
    let (u, s) = (
        uniform.matrices[0].bcr.as_ref().unwrap(),
        spread.matrices[0].bcr.as_ref().unwrap(),
    );
    // The greedy stops at the count or short of it by less than one segment.
    assert!(
        s.nnz() <= u.nnz() && u.nnz() - s.nnz() < 16,
        "{} vs {}",
        s.nnz(),
        u.nnz()
    );
    let shapes = |b: &tir::BcrMatrix| {
        let mut v: Vec<(usize, usize)> = b
            .blocks()
            .iter()
            .map(|k| (k.kept_rows.len(), k.kept_cols.len()))
            .collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    assert_eq!(shapes(u), 1);
    assert!(shapes(s) > 1, "{}", shapes(s));
    assert_ne!(uniform.key().pattern, spread.key().pattern);
}
