//! The benchmark plan: which workloads, sparsities and block sizes run, as data.
//!
//! A *family* is one layer shape (FC 2048x2048 batch 1, conv 3x3 64->64 56x56, ...);
//! a *case* is a family at one sparsity and BCR block size (or dense). Every case
//! names the grim workload spec that generates its weights, so one case means one
//! exact matrix on every system.

use serde::{Deserialize, Serialize};

/// A layer shape, benchmarked dense and at several sparsities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// Short name, used in case ids and tables (`fc2048`, `conv3x3`, ...).
    pub name: String,
    /// What it is, for the report.
    pub title: String,
    /// The dense workload spec (no `bcr-` prefix), e.g. `fc:M=2048,K=2048,N=1`.
    pub dense_spec: String,
}

/// One benchmarked case: a family, dense or BCR-pruned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Unique id (`fc2048-s90-b32x32`, `fc2048-dense`), a folder name.
    pub id: String,
    /// The family's name.
    pub family: String,
    /// The grim workload spec of this case.
    pub spec: String,
    /// The family's dense spec (grim dense runs it with this case's weights).
    pub dense_spec: String,
    /// Target sparsity (0 for dense).
    pub sparsity: f64,
    /// BCR block `(rows, cols)`, `None` for dense.
    pub block: Option<(usize, usize)>,
}

impl Case {
    /// True for the unpruned case of a family.
    pub fn is_dense(&self) -> bool {
        self.block.is_none()
    }

    /// `16x16`, or `dense`.
    pub fn block_label(&self) -> String {
        match self.block {
            Some((r, c)) => format!("{r}x{c}"),
            None => "dense".into(),
        }
    }
}

/// The families of issue 11: FC 2048 batch 1, FC 1024 with 64 columns, conv 3x3
/// 64->64 56x56, a MobileNet-like 1x1 conv (256->256 at 28x28), GRU steps with
/// hidden 256 and 1024 (input = hidden).
pub fn families() -> Vec<Family> {
    let f = |name: &str, title: &str, spec: &str| Family {
        name: name.into(),
        title: title.into(),
        dense_spec: spec.into(),
    };
    vec![
        f("fc2048", "FC 2048x2048, batch 1", "fc:M=2048,K=2048,N=1"),
        f(
            "fc1024n64",
            "FC 1024x1024, 64 columns",
            "fc:M=1024,K=1024,N=64",
        ),
        f(
            "conv3x3",
            "conv 3x3 64->64, 56x56, pad 1",
            "conv2d:C=64,O=64,H=56,W=56,k=3,stride=1,pad=1",
        ),
        f(
            "conv1x1",
            "conv 1x1 256->256, 28x28 (MobileNet-like)",
            "conv2d:C=256,O=256,H=28,W=28,k=1,stride=1,pad=0",
        ),
        f(
            "gru256",
            "GRU step, hidden 256",
            "gru:hidden=256,input=256,batch=1",
        ),
        f(
            "gru1024",
            "GRU step, hidden 1024",
            "gru:hidden=1024,input=1024,batch=1",
        ),
    ]
}

/// The BCR spec of `family` at `sparsity` with a `rows x cols` block.
pub fn bcr_spec(family: &Family, sparsity: f64, block: (usize, usize)) -> String {
    format!(
        "bcr-{},block={}x{},sparsity={},seed=1",
        family.dense_spec, block.0, block.1, sparsity
    )
}

fn case(family: &Family, sparse: Option<(f64, (usize, usize))>) -> Case {
    match sparse {
        None => Case {
            id: format!("{}-dense", family.name),
            family: family.name.clone(),
            spec: format!("{},seed=1", family.dense_spec),
            dense_spec: format!("{},seed=1", family.dense_spec),
            sparsity: 0.0,
            block: None,
        },
        Some((s, b)) => Case {
            id: format!(
                "{}-s{}-b{}x{}",
                family.name,
                (s * 100.0).round() as u32,
                b.0,
                b.1
            ),
            family: family.name.clone(),
            spec: bcr_spec(family, s, b),
            dense_spec: format!("{},seed=1", family.dense_spec),
            sparsity: s,
            block: Some(b),
        },
    }
}

/// The sparsities of the sweep.
pub const SPARSITIES: [f64; 4] = [0.5, 0.75, 0.9, 0.95];
/// The BCR block sizes of the sweep.
pub const BLOCKS: [(usize, usize); 3] = [(16, 16), (32, 32), (64, 16)];

/// Which plan to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Mode {
    /// Every family dense; FC 2048 at every sparsity x block size; the other families
    /// at every sparsity with 32x32 blocks and at 90% with every block size.
    Full,
    /// A small subset that checks the harness in a minute or two: FC 2048 and GRU 256,
    /// dense and 90% with 32x32 blocks.
    Quick,
}

/// The cases of a plan, dense first within each family.
pub fn cases(mode: Mode) -> Vec<Case> {
    let mut out = Vec::new();
    for fam in families() {
        match mode {
            Mode::Quick => {
                if fam.name == "fc2048" || fam.name == "gru256" {
                    out.push(case(&fam, None));
                    out.push(case(&fam, Some((0.9, (32, 32)))));
                }
            }
            Mode::Full => {
                out.push(case(&fam, None));
                for s in SPARSITIES {
                    for b in BLOCKS {
                        let all = fam.name == "fc2048";
                        if all || b == (32, 32) || s == 0.9 {
                            out.push(case(&fam, Some((s, b))));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_spec_parses_and_ids_are_unique() {
        for mode in [Mode::Full, Mode::Quick] {
            let cs = cases(mode);
            let mut ids: Vec<&str> = cs.iter().map(|c| c.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), cs.len());
            for c in &cs {
                c.spec
                    .parse::<tir::WorkloadSpec>()
                    .unwrap_or_else(|e| panic!("{}: {e}", c.spec));
                c.dense_spec
                    .parse::<tir::WorkloadSpec>()
                    .unwrap_or_else(|e| panic!("{}: {e}", c.dense_spec));
            }
        }
        // 6 families dense + FC 2048 at 4x3 + 5 families at 4 + 2 (90% other blocks).
        assert_eq!(cases(Mode::Full).len(), 6 + 12 + 5 * 6);
        assert_eq!(cases(Mode::Quick).len(), 4);
    }
}
