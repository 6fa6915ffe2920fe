//! Workloads: a parsed spec, its deterministic weights (BCR-pruned for `bcr-` kinds),
//! and its lowered function.

use crate::bcr::BcrMatrix;
use crate::function::{Function, Param, ParamKind};
use crate::hash::{pattern_hash, structure_hash, PatternView, WorkloadKey};
use crate::interp::{self, InterpError};
use crate::lower::{self, IndexOverflow, WeightData};
use crate::matrix::Matrix;
use crate::prune::{PruneConfig, PruneError, PruneRate};
use crate::rng::SplitMix64;
use crate::spec::{RnnCell, SparseSpec, SpecError, WorkloadSpec};
use crate::tensor::Tensor;
use crate::BlockShape;
use std::collections::BTreeMap;

/// What can go wrong building a workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The spec string does not parse.
    #[error("workload spec: {0}")]
    Spec(#[from] SpecError),
    /// BCR pruning rejected the parameters.
    #[error("pruning weight `{weight}`: {source}")]
    Prune {
        /// Which weight matrix.
        weight: String,
        /// The pruning error.
        source: PruneError,
    },
    /// Index arrays would overflow `i32`.
    #[error(transparent)]
    IndexOverflow(#[from] IndexOverflow),
    /// Weights given to [`Workload::with_weights`] do not fit the spec.
    #[error("given weight `{weight}`: {reason}")]
    GivenWeights {
        /// Which weight (`W`, `W_ih`, `B`, ...).
        weight: String,
        /// What does not fit.
        reason: String,
    },
}

/// One weight matrix handed to [`Workload::with_weights`]: dense for dense kinds,
/// already BCR-pruned for `bcr-` kinds (its block shape must be the spec's).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum GivenMatrix {
    /// A dense matrix.
    Dense(Matrix),
    /// A BCR matrix, pruned (and perhaps refit) by the caller.
    Bcr(BcrMatrix),
}

impl GivenMatrix {
    /// Rows and columns.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            GivenMatrix::Dense(m) => (m.rows(), m.cols()),
            GivenMatrix::Bcr(b) => (b.rows(), b.cols()),
        }
    }
}

/// Real weights of a layer (from a model) for [`Workload::with_weights`], in the
/// order of the spec kind: FC and conv2d `[W]` with biases `[B]` (when the spec has a
/// bias); GRU/LSTM `[W_ih, W_hh]` with biases `[b_ih, b_hh]`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GivenWeights {
    /// The weight matrices (conv2d: the `O x (C·kh·kw)` view).
    pub matrices: Vec<GivenMatrix>,
    /// The bias vectors.
    pub biases: Vec<Vec<f32>>,
}

fn given_error(weight: &str, reason: String) -> WorkloadError {
    WorkloadError::GivenWeights {
        weight: weight.to_string(),
        reason,
    }
}

/// Checks a given matrix against the spec's shape and sparsity and turns it into a
/// workload weight.
fn take_given(
    name: &str,
    given: Option<&GivenMatrix>,
    rows: usize,
    cols: usize,
    sparse: Option<SparseSpec>,
) -> Result<(WeightMatrix, WeightData), WorkloadError> {
    let g = given.ok_or_else(|| given_error(name, "missing".to_string()))?;
    if g.shape() != (rows, cols) {
        return Err(given_error(
            name,
            format!("shape {:?}, the spec needs ({rows}, {cols})", g.shape()),
        ));
    }
    match (g, sparse) {
        (GivenMatrix::Dense(m), None) => Ok((
            WeightMatrix {
                name: name.to_string(),
                dense: m.clone(),
                bcr: None,
            },
            WeightData::Dense(m.clone()),
        )),
        (GivenMatrix::Bcr(b), Some(s)) => {
            if (b.block().rows, b.block().cols) != (s.block_rows, s.block_cols) {
                return Err(given_error(
                    name,
                    format!(
                        "block {}x{}, the spec says {}x{}",
                        b.block().rows,
                        b.block().cols,
                        s.block_rows,
                        s.block_cols
                    ),
                ));
            }
            b.validate()
                .map_err(|e| given_error(name, format!("invalid BCR matrix: {e}")))?;
            Ok((
                WeightMatrix {
                    name: name.to_string(),
                    dense: b.to_dense(),
                    bcr: Some(b.clone()),
                },
                WeightData::Bcr(b.clone()),
            ))
        }
        (GivenMatrix::Dense(_), Some(_)) => Err(given_error(
            name,
            "dense, but the spec is a bcr- kind (prune it first)".to_string(),
        )),
        (GivenMatrix::Bcr(_), None) => Err(given_error(
            name,
            "BCR, but the spec is a dense kind".to_string(),
        )),
    }
}

fn take_bias(name: &str, given: Option<&Vec<f32>>, len: usize) -> Result<Vec<f32>, WorkloadError> {
    let b = given.ok_or_else(|| given_error(name, "missing".to_string()))?;
    if b.len() != len {
        return Err(given_error(
            name,
            format!("length {}, the spec needs {len}", b.len()),
        ));
    }
    if let Some(i) = b.iter().position(|v| !v.is_finite()) {
        return Err(given_error(name, format!("element {i} is not finite")));
    }
    Ok(b.clone())
}

/// A weight matrix of a workload, as generated and (for `bcr-` kinds) pruned.
#[derive(Debug, Clone)]
pub struct WeightMatrix {
    /// Name as used in the function (`W`, `W_ih`, `W_hh`); BCR arrays are `NAME_*`.
    pub name: String,
    /// The effective dense matrix: pruned entries are zero. For conv2d this is the
    /// `O x (C·kh·kw)` view.
    pub dense: Matrix,
    /// The BCR form, for `bcr-` kinds.
    pub bcr: Option<BcrMatrix>,
}

/// A workload ready to schedule, run and check.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The spec it was built from.
    pub spec: WorkloadSpec,
    /// The lowered default loop nest.
    pub func: Function,
    /// Data of every `weight` parameter, by parameter name.
    pub weights: BTreeMap<String, Tensor>,
    /// The weight matrices (dense and BCR views), in parameter order.
    pub matrices: Vec<WeightMatrix>,
}

/// Fan-in scaled uniform weights: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
fn gen_matrix(rng: &mut SplitMix64, rows: usize, cols: usize) -> Matrix {
    let scale = 1.0 / (cols as f32).sqrt();
    let data = rng.symmetric_vec(rows * cols, scale);
    Matrix::new(rows, cols, data).unwrap_or_else(|_| Matrix::zeros(rows, cols))
}

/// A generated matrix as given weights: pruned to BCR for `bcr-` kinds.
fn prune_given(
    name: &str,
    dense: Matrix,
    sparse: Option<SparseSpec>,
) -> Result<GivenMatrix, WorkloadError> {
    match sparse {
        None => Ok(GivenMatrix::Dense(dense)),
        Some(s) => {
            let cfg = PruneConfig {
                block: BlockShape {
                    rows: s.block_rows,
                    cols: s.block_cols,
                },
                rate: PruneRate::Sparsity(s.sparsity),
            };
            s.spread
                .prune(&dense, &cfg)
                .map(GivenMatrix::Bcr)
                .map_err(|source| WorkloadError::Prune {
                    weight: name.to_string(),
                    source,
                })
        }
    }
}

impl Workload {
    /// Parses a spec string and builds the workload.
    pub fn from_spec_str(spec: &str) -> Result<Workload, WorkloadError> {
        Workload::new(spec.parse()?)
    }

    /// Builds the workload for a parsed spec: generates the weights from the seed,
    /// prunes them for `bcr-` kinds and lowers to the default loop nest.
    pub fn new(spec: WorkloadSpec) -> Result<Workload, WorkloadError> {
        // Layers with weight matrices: generate, prune, and build as with given weights.
        let given = match &spec {
            WorkloadSpec::Fc(s) => {
                let mut rng = SplitMix64::new(s.seed);
                let dense = gen_matrix(&mut rng, s.m, s.k);
                let bias = s.bias.then(|| rng.symmetric_vec(s.m, 0.5));
                Some(GivenWeights {
                    matrices: vec![prune_given("W", dense, s.sparse)?],
                    biases: bias.into_iter().collect(),
                })
            }
            WorkloadSpec::Conv2d(s) => {
                let mut rng = SplitMix64::new(s.seed);
                let dense = gen_matrix(&mut rng, s.o, s.c * s.kh * s.kw);
                let bias = s.bias.then(|| rng.symmetric_vec(s.o, 0.5));
                Some(GivenWeights {
                    matrices: vec![prune_given("W", dense, s.sparse)?],
                    biases: bias.into_iter().collect(),
                })
            }
            WorkloadSpec::Rnn(s) => {
                let mut rng = SplitMix64::new(s.seed);
                let rows = s.cell.gates() * s.hidden;
                let w_ih = gen_matrix(&mut rng, rows, s.input);
                let w_hh = gen_matrix(&mut rng, rows, s.hidden);
                let b_ih = rng.symmetric_vec(rows, 0.5);
                let b_hh = rng.symmetric_vec(rows, 0.5);
                Some(GivenWeights {
                    matrices: vec![
                        prune_given("W_ih", w_ih, s.sparse)?,
                        prune_given("W_hh", w_hh, s.sparse)?,
                    ],
                    biases: vec![b_ih, b_hh],
                })
            }
            _ => None,
        };
        if let Some(g) = given {
            return Workload::with_weights(spec, &g);
        }
        let (lowered, name) = match &spec {
            WorkloadSpec::BiasAdd { m, n, seed } => {
                let mut rng = SplitMix64::new(*seed);
                let bias = rng.symmetric_vec(*m, 0.5);
                (
                    lower::lower_bias_add(*m, *n, &bias)?,
                    "bias_add".to_string(),
                )
            }
            WorkloadSpec::Activation { func, m, n } => (
                lower::lower_activation(*func, *m, *n),
                format!("activation_{}", func.name()),
            ),
            // Built by `with_weights` above; kept as an error rather than a panic.
            WorkloadSpec::Fc(_) | WorkloadSpec::Conv2d(_) | WorkloadSpec::Rnn(_) => {
                return Err(given_error("W", "no generated weights".to_string()))
            }
        };
        Ok(Workload::assemble(spec, lowered, &name, Vec::new()))
    }

    /// Builds the workload of a model layer from its real weights instead of the
    /// spec's generated ones (the spec's `seed` is then ignored). For `bcr-` kinds the
    /// matrices must already be BCR-pruned with the spec's block shape; the workload
    /// key hashes their actual pattern.
    pub fn with_weights(
        spec: WorkloadSpec,
        given: &GivenWeights,
    ) -> Result<Workload, WorkloadError> {
        let mut matrices = Vec::new();
        let m = |i: usize| given.matrices.get(i);
        let b = |i: usize| given.biases.get(i);
        let (lowered, name) = match &spec {
            WorkloadSpec::Fc(s) => {
                let (wm, wd) = take_given("W", m(0), s.m, s.k, s.sparse)?;
                let bias = if s.bias {
                    Some(take_bias("B", b(0), s.m)?)
                } else {
                    None
                };
                matrices.push(wm);
                (lower::lower_fc(s, &wd, bias.as_deref())?, "fc")
            }
            WorkloadSpec::Conv2d(s) => {
                let (wm, wd) = take_given("W", m(0), s.o, s.c * s.kh * s.kw, s.sparse)?;
                let bias = if s.bias {
                    Some(take_bias("B", b(0), s.o)?)
                } else {
                    None
                };
                matrices.push(wm);
                (lower::lower_conv2d(s, &wd, bias.as_deref())?, "conv2d")
            }
            WorkloadSpec::Rnn(s) => {
                let rows = s.cell.gates() * s.hidden;
                let (m_ih, d_ih) = take_given("W_ih", m(0), rows, s.input, s.sparse)?;
                let (m_hh, d_hh) = take_given("W_hh", m(1), rows, s.hidden, s.sparse)?;
                let b_ih = take_bias("b_ih", b(0), rows)?;
                let b_hh = take_bias("b_hh", b(1), rows)?;
                matrices.push(m_ih);
                matrices.push(m_hh);
                let name = match s.cell {
                    RnnCell::Gru => "gru",
                    RnnCell::Lstm => "lstm",
                };
                (lower::lower_rnn(s, &d_ih, &d_hh, &b_ih, &b_hh)?, name)
            }
            other => {
                return Err(given_error(
                    "W",
                    format!("`{}` workloads have no weight matrices", other.kind()),
                ))
            }
        };
        Ok(Workload::assemble(spec, lowered, name, matrices))
    }

    /// The workload from its lowered form: the function is named after the kind
    /// (`bcr_` prefixed for sparse kinds) and its weight data collected.
    fn assemble(
        spec: WorkloadSpec,
        lowered: lower::Lowered,
        name: &str,
        matrices: Vec<WeightMatrix>,
    ) -> Workload {
        let fname = match spec.sparse() {
            Some(_) => format!("bcr_{name}"),
            None => name.to_string(),
        };
        let (func, data) = lowered.into_function(&fname);
        Workload {
            spec,
            func,
            weights: data.into_iter().collect(),
            matrices,
        }
    }

    /// This workload's weights in the form [`Workload::with_weights`] takes (BCR
    /// matrices for `bcr-` kinds), so the same layer can be rebuilt or carried into a
    /// model.
    pub fn given_weights(&self) -> GivenWeights {
        let matrices = self
            .matrices
            .iter()
            .map(|m| match &m.bcr {
                Some(b) => GivenMatrix::Bcr(b.clone()),
                None => GivenMatrix::Dense(m.dense.clone()),
            })
            .collect();
        let biases = ["B", "b_ih", "b_hh"]
            .iter()
            .filter_map(|n| self.weights.get(*n))
            .filter_map(|t| t.as_f32().map(|v| v.to_vec()))
            .collect();
        GivenWeights { matrices, biases }
    }

    /// The key of this workload in the tuning database.
    pub fn key(&self) -> WorkloadKey {
        let views: Vec<PatternView<'_>> = self
            .matrices
            .iter()
            .filter_map(|m| m.bcr.as_ref())
            .map(|b| {
                let (block_rows, block_cols) = (b.block().rows, b.block().cols);
                PatternView {
                    rows: b.rows(),
                    cols: b.cols(),
                    block_rows,
                    block_cols,
                    blocks: b
                        .blocks()
                        .iter()
                        .map(|blk| (&blk.kept_rows[..], &blk.kept_cols[..]))
                        .collect(),
                }
            })
            .collect();
        WorkloadKey {
            structure: structure_hash(&self.func),
            pattern: pattern_hash(&views),
        }
    }

    /// The parameters of a kind, in order.
    pub fn params_of(&self, kind: ParamKind) -> impl Iterator<Item = &Param> {
        self.func.params.iter().filter(move |p| p.kind == kind)
    }

    /// A weight matrix by name (`W`, `W_ih`, `W_hh`).
    pub fn matrix(&self, name: &str) -> Option<&WeightMatrix> {
        self.matrices.iter().find(|m| m.name == name)
    }

    /// Random inputs (uniform in `[-1, 1)`) for every `in` parameter, from `seed`.
    pub fn random_inputs(&self, seed: u64) -> BTreeMap<String, Tensor> {
        let mut rng = SplitMix64::new(seed);
        self.params_of(ParamKind::Input)
            .map(|p| {
                let data = rng.symmetric_vec(p.len(), 1.0);
                let t = Tensor::f32(p.shape.clone(), data)
                    .unwrap_or_else(|_| Tensor::zeros(p.dtype, p.shape.clone()));
                (p.name.clone(), t)
            })
            .collect()
    }

    /// Every argument of the function: the given inputs, the weights, and zeroed
    /// outputs.
    pub fn args(&self, inputs: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
        let mut args = inputs.clone();
        args.extend(self.weights.iter().map(|(k, v)| (k.clone(), v.clone())));
        for p in self.params_of(ParamKind::Output) {
            args.insert(p.name.clone(), Tensor::zeros(p.dtype, p.shape.clone()));
        }
        args
    }

    /// Runs the lowered function in the reference interpreter and returns its outputs.
    pub fn interpret(
        &self,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, InterpError> {
        self.interpret_function(&self.func, inputs)
    }

    /// Runs `func` (for instance a scheduled version of [`Workload::func`]) in the
    /// reference interpreter with this workload's weights, returning its outputs.
    pub fn interpret_function(
        &self,
        func: &Function,
        inputs: &BTreeMap<String, Tensor>,
    ) -> Result<BTreeMap<String, Tensor>, InterpError> {
        let mut args = self.args(inputs);
        interp::run(func, &mut args)?;
        Ok(args
            .into_iter()
            .filter(|(k, _)| func.param(k).is_some_and(|p| p.kind == ParamKind::Output))
            .collect())
    }
}
