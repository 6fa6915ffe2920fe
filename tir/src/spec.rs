//! Workload spec strings: one line that names a layer and, for BCR layers, its exact
//! sparsity pattern.
//!
//! # Syntax
//!
//! ```text
//! KIND:KEY=VALUE,KEY=VALUE,...
//! ```
//!
//! Keys are case-sensitive, each may appear once, and their order does not matter.
//! Whitespace around keys and values is ignored. A `bcr-` kind is the same layer with
//! its weight matrix (or matrices) BCR-pruned.
//!
//! | kind | required keys | optional keys (default) |
//! |---|---|---|
//! | `fc`, `bcr-fc` | `M`, `K`, `N` | `bias` (0), `act` (none), `seed` (1) |
//! | `conv2d`, `bcr-conv2d` | `C`, `O`, `H`, `W`, `k` (or both `kh` and `kw`) | `batch` (1), `stride` (1), `pad` (0), `dilation` (1), `bias` (0), `act` (none), `seed` (1) |
//! | `gru`, `bcr-gru`, `lstm`, `bcr-lstm` | `hidden`, `input` | `batch` (1), `seed` (1) |
//! | `bias-add` | `M`, `N` | `seed` (1) |
//! | `activation` | `fn`, `M`, `N` | |
//!
//! Every `bcr-` kind also requires `block=RxC` and `sparsity=S`, and takes `spread`
//! (uniform).
//!
//! | key | meaning |
//! |---|---|
//! | `M`, `K`, `N` | FC / matmul `Y[M,N] = W[M,K] · X[K,N]` (`N` is the batch or sequence width) |
//! | `C`, `O` | conv2d input and output channels |
//! | `H`, `W` | conv2d input height and width (NCHW layout) |
//! | `k`, `kh`, `kw` | conv2d kernel size (`k` sets both) |
//! | `stride`, `pad`, `dilation` | conv2d stride, zero padding and dilation, same for both spatial dims |
//! | `batch` | conv2d images / RNN batch columns |
//! | `hidden`, `input` | RNN hidden and input sizes; gates are stacked as in PyTorch (GRU r,z,n; LSTM i,f,g,o) |
//! | `bias` | `1`/`true` adds a per-output bias, `0`/`false` does not |
//! | `act`, `fn` | activation: `none`, `relu`, `sigmoid`, `tanh` (`fn` of `activation` cannot be `none`) |
//! | `block` | BCR block size `RxC`: rows x columns of the weight matrix per block |
//! | `sparsity` | fraction of weights pruned, in `[0, 1)` |
//! | `spread` | `uniform`: every block keeps the same numbers of rows and columns ([`crate::prune::prune`]); `blocks`: the same number of weights spread unevenly over the blocks ([`crate::Spread::AcrossBlocks`]), as GRIM's regularized training leaves them |
//! | `seed` | seed of the deterministic weight generator ([`crate::rng`]) |
//!
//! The weight matrix of a conv2d is `O x (C·kh·kw)`; of an RNN, `gates·hidden x input`
//! (input weights) and `gates·hidden x hidden` (recurrent weights), each pruned with the
//! same block and sparsity.
//!
//! Examples: `bcr-fc:M=2048,K=2048,N=1,block=32x32,sparsity=0.9,seed=1`,
//! `fc:M=1024,K=1024,N=64`,
//! `bcr-conv2d:C=64,O=64,H=56,W=56,k=3,stride=1,pad=1,block=16x32,sparsity=0.9,seed=1`,
//! `bcr-gru:hidden=256,input=256,batch=1,block=16x16,sparsity=0.9,seed=1`.
//!
//! [`WorkloadSpec`]'s `Display` prints the canonical form (every key, fixed order;
//! `spread` only when not uniform, so older specs keep their text), which
//! parses back to an equal spec.

use crate::prune_spread::Spread;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Largest accepted size of any one dimension key.
pub const MAX_DIM: usize = 1 << 20;
/// Largest accepted number of elements of any one weight or activation tensor.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// An elementwise activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// Identity.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// The spec keyword.
    pub fn name(self) -> &'static str {
        match self {
            Activation::None => "none",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }

    /// Applies the activation on the host (reference semantics).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => crate::expr::Intrinsic::Sigmoid.eval(x),
            Activation::Tanh => x.tanh(),
        }
    }
}

/// BCR pruning parameters of a `bcr-` workload.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SparseSpec {
    /// Block rows.
    pub block_rows: usize,
    /// Block columns.
    pub block_cols: usize,
    /// Fraction of weights pruned, in `[0, 1)`.
    pub sparsity: f64,
    /// How generated weights keep their share over the blocks (`spread=blocks` in the
    /// spec; uniform when absent). Weights given to a workload keep their own pattern.
    #[serde(default)]
    pub spread: Spread,
}

/// A fully connected layer (matmul): `Y[M,N] = act(W[M,K] · X[K,N] + bias)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FcSpec {
    /// Output features (weight rows).
    pub m: usize,
    /// Input features (weight columns).
    pub k: usize,
    /// Columns of the input (batch).
    pub n: usize,
    /// Whether a per-row bias is added.
    pub bias: bool,
    /// Activation applied last.
    pub act: Activation,
    /// BCR pruning, for `bcr-fc`.
    pub sparse: Option<SparseSpec>,
    /// Weight generator seed.
    pub seed: u64,
}

/// A 2-D convolution in NCHW layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conv2dSpec {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub c: usize,
    /// Output channels.
    pub o: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (both dims).
    pub stride: usize,
    /// Zero padding (both dims).
    pub pad: usize,
    /// Dilation (both dims).
    pub dilation: usize,
    /// Whether a per-channel bias is added.
    pub bias: bool,
    /// Activation applied last.
    pub act: Activation,
    /// BCR pruning of the `O x (C·kh·kw)` weight matrix, for `bcr-conv2d`.
    pub sparse: Option<SparseSpec>,
    /// Weight generator seed.
    pub seed: u64,
}

impl Conv2dSpec {
    /// Output height, or `None` when the kernel does not fit.
    pub fn out_h(&self) -> Option<usize> {
        conv_out(self.h, self.kh, self.stride, self.pad, self.dilation)
    }

    /// Output width, or `None` when the kernel does not fit.
    pub fn out_w(&self) -> Option<usize> {
        conv_out(self.w, self.kw, self.stride, self.pad, self.dilation)
    }
}

fn conv_out(size: usize, k: usize, stride: usize, pad: usize, dilation: usize) -> Option<usize> {
    let span = dilation.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
    let padded = size.checked_add(pad.checked_mul(2)?)?;
    if stride == 0 || padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RnnCell {
    /// GRU: gates r, z, n (PyTorch order).
    Gru,
    /// LSTM: gates i, f, g, o (PyTorch order).
    Lstm,
}

impl RnnCell {
    /// Number of stacked gates.
    pub fn gates(self) -> usize {
        match self {
            RnnCell::Gru => 3,
            RnnCell::Lstm => 4,
        }
    }
}

/// One step of a GRU or LSTM cell with input and recurrent weights and biases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RnnSpec {
    /// GRU or LSTM.
    pub cell: RnnCell,
    /// Hidden size.
    pub hidden: usize,
    /// Input size.
    pub input: usize,
    /// Batch columns.
    pub batch: usize,
    /// BCR pruning of both weight matrices, for `bcr-gru` / `bcr-lstm`.
    pub sparse: Option<SparseSpec>,
    /// Weight generator seed.
    pub seed: u64,
}

/// A parsed workload spec. See the [module docs](self) for the syntax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkloadSpec {
    /// `fc` / `bcr-fc`.
    Fc(FcSpec),
    /// `conv2d` / `bcr-conv2d`.
    Conv2d(Conv2dSpec),
    /// `gru`, `lstm`, `bcr-gru`, `bcr-lstm`.
    Rnn(RnnSpec),
    /// `bias-add`: `Y[M,N] = X[M,N] + B[M]`.
    BiasAdd {
        /// Rows.
        m: usize,
        /// Columns.
        n: usize,
        /// Bias generator seed.
        seed: u64,
    },
    /// `activation`: `Y[M,N] = fn(X[M,N])`.
    Activation {
        /// The function (not `none`).
        func: Activation,
        /// Rows.
        m: usize,
        /// Columns.
        n: usize,
    },
}

/// What went wrong parsing a spec string. Every variant names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// No `:` separating the kind from the keys.
    #[error("expected `KIND:KEY=VALUE,...`, found no ':' in `{0}`")]
    MissingColon(String),
    /// The kind is not known.
    #[error("unknown workload kind `{0}`, expected one of fc, bcr-fc, conv2d, bcr-conv2d, gru, bcr-gru, lstm, bcr-lstm, bias-add, activation")]
    UnknownKind(String),
    /// A `KEY=VALUE` item lacks `=` or a key.
    #[error("expected KEY=VALUE, found `{0}`")]
    BadItem(String),
    /// A key is not used by this kind.
    #[error("unknown key `{key}` for `{kind}` (accepted: {accepted})")]
    UnknownKey {
        /// The key.
        key: String,
        /// The kind.
        kind: String,
        /// Keys this kind accepts.
        accepted: String,
    },
    /// A key appears twice.
    #[error("key `{0}` given more than once")]
    DuplicateKey(String),
    /// A required key is absent.
    #[error("missing key `{key}` for `{kind}`")]
    MissingKey {
        /// The key.
        key: String,
        /// The kind.
        kind: String,
    },
    /// A value does not parse or is out of range.
    #[error("bad value `{value}` for key `{key}`: expected {expected}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// The keys parse but do not make a valid layer.
    #[error("invalid `{key}`: {reason}")]
    Invalid {
        /// The key most responsible.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The items of a spec, consumed key by key so leftovers can be reported.
struct Items {
    kind: String,
    map: BTreeMap<String, String>,
}

impl Items {
    fn take(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    fn required(&mut self, key: &str) -> Result<String, SpecError> {
        self.take(key).ok_or_else(|| SpecError::MissingKey {
            key: key.to_string(),
            kind: self.kind.clone(),
        })
    }

    fn dim(&mut self, key: &str) -> Result<usize, SpecError> {
        let v = self.required(key)?;
        parse_dim(key, &v)
    }

    fn opt_dim(&mut self, key: &str, default: usize) -> Result<usize, SpecError> {
        match self.take(key) {
            Some(v) => parse_dim(key, &v),
            None => Ok(default),
        }
    }

    fn opt_count(&mut self, key: &str, default: usize) -> Result<usize, SpecError> {
        match self.take(key) {
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(key, &v, "a non-negative integer")),
            None => Ok(default),
        }
    }

    fn seed(&mut self) -> Result<u64, SpecError> {
        match self.take("seed") {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| bad("seed", &v, "an unsigned 64-bit integer")),
            None => Ok(1),
        }
    }

    fn bias(&mut self) -> Result<bool, SpecError> {
        match self.take("bias").as_deref() {
            None | Some("0") | Some("false") => Ok(false),
            Some("1") | Some("true") => Ok(true),
            Some(v) => Err(bad("bias", v, "0, 1, true or false")),
        }
    }

    fn act(&mut self, key: &str, default: Option<Activation>) -> Result<Activation, SpecError> {
        let v = match (self.take(key), default) {
            (Some(v), _) => v,
            (None, Some(d)) => return Ok(d),
            (None, None) => return self.required(key).map(|_| Activation::None),
        };
        match v.as_str() {
            "none" if default.is_some() => Ok(Activation::None),
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            _ if default.is_some() => Err(bad(key, &v, "none, relu, sigmoid or tanh")),
            _ => Err(bad(key, &v, "relu, sigmoid or tanh")),
        }
    }

    fn sparse(&mut self, sparse: bool) -> Result<Option<SparseSpec>, SpecError> {
        if !sparse {
            return Ok(None);
        }
        let block = self.required("block")?;
        let (r, c) = block
            .split_once('x')
            .ok_or_else(|| bad("block", &block, "RxC, e.g. 16x32"))?;
        let block_rows = parse_dim("block", r.trim())
            .map_err(|_| bad("block", &block, "RxC with positive integers, e.g. 16x32"))?;
        let block_cols = parse_dim("block", c.trim())
            .map_err(|_| bad("block", &block, "RxC with positive integers, e.g. 16x32"))?;
        let s = self.required("sparsity")?;
        let sparsity = s
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..1.0).contains(v))
            .ok_or_else(|| bad("sparsity", &s, "a number in [0, 1)"))?;
        let spread = match self.take("spread").as_deref() {
            None | Some("uniform") => Spread::Uniform,
            Some("blocks") => Spread::AcrossBlocks,
            Some(v) => return Err(bad("spread", v, "uniform or blocks")),
        };
        Ok(Some(SparseSpec {
            block_rows,
            block_cols,
            sparsity,
            spread,
        }))
    }

    fn finish(self, accepted: &[&str]) -> Result<(), SpecError> {
        match self.map.into_keys().next() {
            None => Ok(()),
            Some(key) => Err(SpecError::UnknownKey {
                key,
                kind: self.kind,
                accepted: accepted.join(", "),
            }),
        }
    }
}

fn bad(key: &str, value: &str, expected: &str) -> SpecError {
    SpecError::BadValue {
        key: key.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

fn parse_dim(key: &str, v: &str) -> Result<usize, SpecError> {
    match v.parse::<usize>() {
        Ok(d) if (1..=MAX_DIM).contains(&d) => Ok(d),
        _ => Err(bad(key, v, &format!("an integer in 1..={MAX_DIM}"))),
    }
}

fn missing_k(kind: &str) -> SpecError {
    SpecError::MissingKey {
        key: "k".to_string(),
        kind: kind.to_string(),
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Checks that a BCR block fits the `rows x cols` weight matrix.
fn check_block(
    sparse: &Option<SparseSpec>,
    rows: usize,
    cols: usize,
    what: &str,
) -> Result<(), SpecError> {
    if let Some(s) = sparse {
        if s.block_rows > rows || s.block_cols > cols {
            return Err(invalid(
                "block",
                format!(
                    "block {}x{} is larger than the {what} weight matrix {rows}x{cols}",
                    s.block_rows, s.block_cols
                ),
            ));
        }
    }
    Ok(())
}

fn check_elements(key: &str, dims: &[usize]) -> Result<(), SpecError> {
    let mut n: usize = 1;
    for d in dims {
        n = n.saturating_mul(*d);
    }
    if n > MAX_ELEMENTS {
        return Err(invalid(
            key,
            format!("a tensor of {dims:?} has more than {MAX_ELEMENTS} elements"),
        ));
    }
    Ok(())
}

const FC_KEYS: &[&str] = &["M", "K", "N", "bias", "act", "seed"];
const CONV_KEYS: &[&str] = &[
    "C", "O", "H", "W", "k", "kh", "kw", "batch", "stride", "pad", "dilation", "bias", "act",
    "seed",
];
const RNN_KEYS: &[&str] = &["hidden", "input", "batch", "seed"];
const SPARSE_KEYS: &[&str] = &["block", "sparsity", "spread"];

fn with_sparse(keys: &[&'static str], sparse: bool) -> Vec<&'static str> {
    let mut v = keys.to_vec();
    if sparse {
        v.extend_from_slice(SPARSE_KEYS);
    }
    v
}

impl FromStr for WorkloadSpec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<WorkloadSpec, SpecError> {
        let text = text.trim();
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| SpecError::MissingColon(text.to_string()))?;
        let kind = kind.trim().to_string();
        let mut map = BTreeMap::new();
        for item in rest.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| SpecError::BadItem(item.to_string()))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(SpecError::BadItem(item.to_string()));
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(SpecError::DuplicateKey(k.to_string()));
            }
        }
        let (base, sparse) = match kind.strip_prefix("bcr-") {
            Some(b) => (b, true),
            None => (kind.as_str(), false),
        };
        let mut it = Items {
            kind: kind.clone(),
            map,
        };
        match (base, sparse) {
            ("fc", _) => {
                let m = it.dim("M")?;
                let k = it.dim("K")?;
                let n = it.dim("N")?;
                let bias = it.bias()?;
                let act = it.act("act", Some(Activation::None))?;
                let sparse = it.sparse(sparse)?;
                let seed = it.seed()?;
                it.finish(&with_sparse(FC_KEYS, sparse.is_some()))?;
                check_block(&sparse, m, k, "M x K")?;
                check_elements("M", &[m, k])?;
                check_elements("N", &[k, n])?;
                check_elements("N", &[m, n])?;
                Ok(WorkloadSpec::Fc(FcSpec {
                    m,
                    k,
                    n,
                    bias,
                    act,
                    sparse,
                    seed,
                }))
            }
            ("conv2d", _) => {
                let c = it.dim("C")?;
                let o = it.dim("O")?;
                let h = it.dim("H")?;
                let w = it.dim("W")?;
                let k = match it.take("k") {
                    Some(v) => Some(parse_dim("k", &v)?),
                    None => None,
                };
                let kh = match it.take("kh") {
                    Some(v) => parse_dim("kh", &v)?,
                    None => match k {
                        Some(k) => k,
                        None => return Err(missing_k(&kind)),
                    },
                };
                let kw = match it.take("kw") {
                    Some(v) => parse_dim("kw", &v)?,
                    None => match k {
                        Some(k) => k,
                        None => return Err(missing_k(&kind)),
                    },
                };
                let batch = it.opt_dim("batch", 1)?;
                let stride = it.opt_dim("stride", 1)?;
                let pad = it.opt_count("pad", 0)?;
                let dilation = it.opt_dim("dilation", 1)?;
                if pad > MAX_DIM {
                    return Err(bad("pad", &pad.to_string(), &format!("at most {MAX_DIM}")));
                }
                let bias = it.bias()?;
                let act = it.act("act", Some(Activation::None))?;
                let sparse = it.sparse(sparse)?;
                let seed = it.seed()?;
                it.finish(&with_sparse(CONV_KEYS, sparse.is_some()))?;
                let spec = Conv2dSpec {
                    batch,
                    c,
                    o,
                    h,
                    w,
                    kh,
                    kw,
                    stride,
                    pad,
                    dilation,
                    bias,
                    act,
                    sparse,
                    seed,
                };
                let cols = c
                    .checked_mul(kh)
                    .and_then(|v| v.checked_mul(kw))
                    .unwrap_or(usize::MAX);
                check_elements("C", &[o, cols])?;
                check_elements("H", &[batch, c, h, w])?;
                let oh = spec.out_h().ok_or_else(|| {
                    invalid(
                        "kh",
                        "kernel (with dilation) is larger than the padded input height",
                    )
                })?;
                let ow = spec.out_w().ok_or_else(|| {
                    invalid(
                        "kw",
                        "kernel (with dilation) is larger than the padded input width",
                    )
                })?;
                check_elements("O", &[batch, o, oh, ow])?;
                check_block(&spec.sparse, o, cols, "O x (C*kh*kw)")?;
                Ok(WorkloadSpec::Conv2d(spec))
            }
            ("gru", _) | ("lstm", _) => {
                let cell = if base == "gru" {
                    RnnCell::Gru
                } else {
                    RnnCell::Lstm
                };
                let hidden = it.dim("hidden")?;
                let input = it.dim("input")?;
                let batch = it.opt_dim("batch", 1)?;
                let sparse = it.sparse(sparse)?;
                let seed = it.seed()?;
                it.finish(&with_sparse(RNN_KEYS, sparse.is_some()))?;
                let rows = cell.gates() * hidden;
                check_elements("hidden", &[rows, input.max(hidden)])?;
                check_elements("batch", &[rows, batch])?;
                check_elements("batch", &[input, batch])?;
                check_block(&sparse, rows, input, "input")?;
                check_block(&sparse, rows, hidden, "recurrent")?;
                Ok(WorkloadSpec::Rnn(RnnSpec {
                    cell,
                    hidden,
                    input,
                    batch,
                    sparse,
                    seed,
                }))
            }
            ("bias-add", false) => {
                let m = it.dim("M")?;
                let n = it.dim("N")?;
                let seed = it.seed()?;
                it.finish(&["M", "N", "seed"])?;
                check_elements("M", &[m, n])?;
                Ok(WorkloadSpec::BiasAdd { m, n, seed })
            }
            ("activation", false) => {
                let func = it.act("fn", None)?;
                let m = it.dim("M")?;
                let n = it.dim("N")?;
                it.finish(&["fn", "M", "N"])?;
                check_elements("M", &[m, n])?;
                Ok(WorkloadSpec::Activation { func, m, n })
            }
            _ => Err(SpecError::UnknownKind(kind)),
        }
    }
}

fn write_sparse(f: &mut fmt::Formatter<'_>, s: &Option<SparseSpec>) -> fmt::Result {
    if let Some(s) = s {
        write!(
            f,
            ",block={}x{},sparsity={}",
            s.block_rows, s.block_cols, s.sparsity
        )?;
        if s.spread != Spread::Uniform {
            write!(f, ",spread={}", s.spread.name())?;
        }
    }
    Ok(())
}

fn prefix(s: &Option<SparseSpec>) -> &'static str {
    if s.is_some() {
        "bcr-"
    } else {
        ""
    }
}

impl fmt::Display for WorkloadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadSpec::Fc(s) => {
                write!(f, "{}fc:M={},K={},N={}", prefix(&s.sparse), s.m, s.k, s.n)?;
                write!(f, ",bias={},act={}", s.bias as u8, s.act.name())?;
                write_sparse(f, &s.sparse)?;
                write!(f, ",seed={}", s.seed)
            }
            WorkloadSpec::Conv2d(s) => {
                write!(
                    f,
                    "{}conv2d:C={},O={},H={},W={},kh={},kw={},batch={},stride={},pad={},dilation={}",
                    prefix(&s.sparse),
                    s.c,
                    s.o,
                    s.h,
                    s.w,
                    s.kh,
                    s.kw,
                    s.batch,
                    s.stride,
                    s.pad,
                    s.dilation
                )?;
                write!(f, ",bias={},act={}", s.bias as u8, s.act.name())?;
                write_sparse(f, &s.sparse)?;
                write!(f, ",seed={}", s.seed)
            }
            WorkloadSpec::Rnn(s) => {
                let name = match s.cell {
                    RnnCell::Gru => "gru",
                    RnnCell::Lstm => "lstm",
                };
                write!(
                    f,
                    "{}{}:hidden={},input={},batch={}",
                    prefix(&s.sparse),
                    name,
                    s.hidden,
                    s.input,
                    s.batch
                )?;
                write_sparse(f, &s.sparse)?;
                write!(f, ",seed={}", s.seed)
            }
            WorkloadSpec::BiasAdd { m, n, seed } => write!(f, "bias-add:M={m},N={n},seed={seed}"),
            WorkloadSpec::Activation { func, m, n } => {
                write!(f, "activation:fn={},M={m},N={n}", func.name())
            }
        }
    }
}

impl WorkloadSpec {
    /// The kind as written in a spec (`bcr-fc`, `conv2d`, ...).
    pub fn kind(&self) -> String {
        let s = self.to_string();
        s.split(':').next().unwrap_or_default().to_string()
    }

    /// The same layer computed densely (the spec without its BCR parameters), for
    /// `bcr-` kinds; `None` for dense kinds.
    pub fn dense_form(&self) -> Option<WorkloadSpec> {
        let mut d = self.clone();
        match &mut d {
            WorkloadSpec::Fc(s) => s.sparse.take()?,
            WorkloadSpec::Conv2d(s) => s.sparse.take()?,
            WorkloadSpec::Rnn(s) => s.sparse.take()?,
            WorkloadSpec::BiasAdd { .. } | WorkloadSpec::Activation { .. } => return None,
        };
        Some(d)
    }

    /// The BCR pruning parameters, for `bcr-` kinds.
    pub fn sparse(&self) -> Option<SparseSpec> {
        match self {
            WorkloadSpec::Fc(s) => s.sparse,
            WorkloadSpec::Conv2d(s) => s.sparse,
            WorkloadSpec::Rnn(s) => s.sparse,
            WorkloadSpec::BiasAdd { .. } | WorkloadSpec::Activation { .. } => None,
        }
    }
}
