//! Exports a case for every system: its effective dense weights (pruned entries are
//! zero), its inputs and the reference output, as raw little-endian `f32` files in the
//! frameworks' layout (see [`crate::reference`]), plus `meta.json` describing them.
//!
//! The inputs are grim's own (`Workload::random_inputs(1)`), so grim, the frameworks
//! and the CSR kernels all see exactly the same numbers.

use crate::error::{io, BenchError};
use crate::plan::Case;
use crate::reference::{self, ConvShape, GruWeights};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tir::spec::WorkloadSpec;
use tir::workload::Workload;

/// The seed of the inputs of every case.
pub const INPUT_SEED: u64 = 1;

/// The layer a case computes, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Layer {
    /// `y [N, M] = x [N, K] · Wᵀ`.
    Fc {
        /// Output features.
        m: usize,
        /// Input features.
        k: usize,
        /// Batch columns.
        n: usize,
    },
    /// Conv2d NCHW, batch 1, no bias.
    Conv {
        /// Input channels.
        c: usize,
        /// Output channels.
        o: usize,
        /// Input height.
        h: usize,
        /// Input width.
        w: usize,
        /// Kernel height.
        kh: usize,
        /// Kernel width.
        kw: usize,
        /// Stride.
        stride: usize,
        /// Zero padding.
        pad: usize,
    },
    /// One GRU step, batch 1.
    Gru {
        /// Hidden size.
        hidden: usize,
        /// Input size.
        input: usize,
    },
}

impl Layer {
    /// The conv shape, for conv layers.
    pub fn conv_shape(&self) -> Option<ConvShape> {
        match *self {
            Layer::Conv {
                c,
                o,
                h,
                w,
                kh,
                kw,
                stride,
                pad,
            } => Some(ConvShape {
                c,
                o,
                h,
                w,
                kh,
                kw,
                stride,
                pad,
            }),
            _ => None,
        }
    }

    /// Multiply-accumulates of one dense call.
    pub fn dense_macs(&self) -> u64 {
        match *self {
            Layer::Fc { m, k, n } => (m * k * n) as u64,
            Layer::Conv { .. } => self
                .conv_shape()
                .map(|s| (s.o * s.c * s.kh * s.kw * s.oh() * s.ow()) as u64)
                .unwrap_or(0),
            Layer::Gru { hidden, input } => (3 * hidden * (input + hidden)) as u64,
        }
    }

    /// Output positions each weight is applied at (FC: N; conv: OH·OW; GRU: 1).
    pub fn reuse(&self) -> u64 {
        match *self {
            Layer::Fc { n, .. } => n as u64,
            Layer::Conv { .. } => self
                .conv_shape()
                .map(|s| (s.oh() * s.ow()) as u64)
                .unwrap_or(1),
            Layer::Gru { .. } => 1,
        }
    }
}

/// A tensor file of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorFile {
    /// File name inside the case folder (raw little-endian `f32`).
    pub file: String,
    /// Row-major shape.
    pub shape: Vec<usize>,
}

/// Sizes of the sparse forms of a case's weights.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SparseStats {
    /// Weights of the dense matrices.
    pub weights: u64,
    /// Non-zero weights (what CSR stores).
    pub nonzeros: u64,
    /// Values grim's BCR format stores.
    pub bcr_values: u64,
    /// Bytes of grim's BCR index arrays (kept rows and columns, per-block offsets).
    pub bcr_index_bytes: u64,
    /// Bytes of grim's BCR format, values and indices.
    pub bcr_bytes: u64,
    /// Bytes of CSR (values, 4-byte column indices, 4-byte row pointers).
    pub csr_bytes: u64,
}

/// `meta.json` of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseMeta {
    /// The case.
    pub case: Case,
    /// The layer and its sizes.
    pub layer: Layer,
    /// Inputs by role (`x`, and `h` for GRU).
    pub inputs: BTreeMap<String, TensorFile>,
    /// Weights by role (`w`; GRU: `w_ih`, `w_hh`, `b_ih`, `b_hh`).
    pub weights: BTreeMap<String, TensorFile>,
    /// The reference output.
    pub output: TensorFile,
    /// Sparse storage sizes.
    pub stats: SparseStats,
}

/// Reads a raw `f32` file.
pub fn read_f32(path: &Path) -> Result<Vec<f32>, BenchError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    if bytes.len() % 4 != 0 {
        return Err(BenchError::BadFile {
            path: path.display().to_string(),
            message: format!("{} bytes is not a whole number of f32", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Writes a raw `f32` file.
pub fn write_f32(path: &Path, data: &[f32]) -> Result<(), BenchError> {
    let mut bytes = Vec::with_capacity(4 * data.len());
    data.iter()
        .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    std::fs::write(path, bytes).map_err(io(path))
}

/// Reads `meta.json` of the case folder `dir`.
pub fn read_meta(dir: &Path) -> Result<CaseMeta, BenchError> {
    let p = dir.join("meta.json");
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    serde_json::from_str(&text).map_err(|e| BenchError::BadFile {
        path: p.display().to_string(),
        message: e.to_string(),
    })
}

/// Reads tensor `t` of the case folder `dir`, checking its length against its shape.
pub fn read_tensor(dir: &Path, t: &TensorFile) -> Result<Vec<f32>, BenchError> {
    let p = dir.join(&t.file);
    let v = read_f32(&p)?;
    let want: usize = t.shape.iter().product();
    if v.len() != want {
        return Err(BenchError::BadFile {
            path: p.display().to_string(),
            message: format!("{} values, shape {:?} needs {want}", v.len(), t.shape),
        });
    }
    Ok(v)
}

/// The layer of a workload spec.
pub fn layer_of(spec: &WorkloadSpec) -> Option<Layer> {
    match spec {
        WorkloadSpec::Fc(s) => Some(Layer::Fc {
            m: s.m,
            k: s.k,
            n: s.n,
        }),
        WorkloadSpec::Conv2d(s) if s.batch == 1 && s.dilation == 1 && !s.bias => {
            Some(Layer::Conv {
                c: s.c,
                o: s.o,
                h: s.h,
                w: s.w,
                kh: s.kh,
                kw: s.kw,
                stride: s.stride,
                pad: s.pad,
            })
        }
        WorkloadSpec::Rnn(s) if s.cell == tir::spec::RnnCell::Gru && s.batch == 1 => {
            Some(Layer::Gru {
                hidden: s.hidden,
                input: s.input,
            })
        }
        _ => None,
    }
}

/// `x [K, N]` (grim) to `[N, K]` (frameworks), and back with the sizes swapped.
pub fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

fn stats_of(w: &Workload) -> SparseStats {
    let mut s = SparseStats::default();
    for m in &w.matrices {
        let d = m.dense.data();
        s.weights += d.len() as u64;
        let nz = d.iter().filter(|v| **v != 0.0).count() as u64;
        s.nonzeros += nz;
        s.csr_bytes += 8 * nz + 4 * (m.dense.rows() as u64 + 1);
        if let Some(b) = &m.bcr {
            s.bcr_values += b.nnz() as u64;
            s.bcr_bytes += b.storage_bytes() as u64;
            s.bcr_index_bytes += (b.storage_bytes() - 4 * b.nnz()) as u64;
        }
    }
    s
}

/// Builds `case`'s workload and writes its folder `dir` (created); returns its meta.
pub fn export_case(case: &Case, dir: &Path) -> Result<CaseMeta, BenchError> {
    let werr = |message: String| BenchError::Workload {
        case: case.id.clone(),
        message,
    };
    let w = Workload::from_spec_str(&case.spec).map_err(|e| werr(e.to_string()))?;
    let layer = layer_of(&w.spec).ok_or_else(|| werr("not an FC, conv or GRU layer".into()))?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let inputs = w.random_inputs(INPUT_SEED);
    let get = |name: &str| -> Result<Vec<f32>, BenchError> {
        inputs
            .get(name)
            .and_then(|t| t.as_f32())
            .map(|v| v.to_vec())
            .ok_or_else(|| werr(format!("no f32 input `{name}`")))
    };
    let matrix = |name: &str| -> Result<Vec<f32>, BenchError> {
        w.matrix(name)
            .map(|m| m.dense.data().to_vec())
            .ok_or_else(|| werr(format!("no weight matrix `{name}`")))
    };
    let weight = |name: &str| -> Result<Vec<f32>, BenchError> {
        w.weights
            .get(name)
            .and_then(|t| t.as_f32())
            .map(|v| v.to_vec())
            .ok_or_else(|| werr(format!("no f32 weight `{name}`")))
    };
    let mut files: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let (in_names, w_names, out): (&[&str], &[&str], Vec<f32>);
    let out_shape: Vec<usize>;
    match layer {
        Layer::Fc { m, k, n } => {
            let x = transpose(&get("X")?, k, n);
            let wd = matrix("W")?;
            let y = reference::fc(&wd, &x, m, k, n);
            files.push(("x".into(), vec![n, k], x));
            files.push(("w".into(), vec![m, k], wd));
            in_names = &["x"];
            w_names = &["w"];
            out_shape = vec![n, m];
            out = y;
        }
        Layer::Conv { .. } => {
            let s = layer
                .conv_shape()
                .ok_or_else(|| werr("conv shape".into()))?;
            let x = get("X")?;
            let wd = matrix("W")?;
            let y = reference::conv2d(&wd, &x, &s);
            files.push(("x".into(), vec![1, s.c, s.h, s.w], x));
            files.push(("w".into(), vec![s.o, s.c, s.kh, s.kw], wd));
            in_names = &["x"];
            w_names = &["w"];
            out_shape = vec![1, s.o, s.oh(), s.ow()];
            out = y;
        }
        Layer::Gru { hidden, input } => {
            let x = get("x")?;
            let h = get("h_prev")?;
            let (w_ih, w_hh) = (matrix("W_ih")?, matrix("W_hh")?);
            let (b_ih, b_hh) = (weight("b_ih")?, weight("b_hh")?);
            let g = GruWeights {
                w_ih: &w_ih,
                w_hh: &w_hh,
                b_ih: &b_ih,
                b_hh: &b_hh,
            };
            let y = reference::gru(&g, &x, &h, hidden, input);
            files.push(("x".into(), vec![1, input], x));
            files.push(("h".into(), vec![1, hidden], h));
            files.push(("w_ih".into(), vec![3 * hidden, input], w_ih));
            files.push(("w_hh".into(), vec![3 * hidden, hidden], w_hh));
            files.push(("b_ih".into(), vec![3 * hidden], b_ih));
            files.push(("b_hh".into(), vec![3 * hidden], b_hh));
            in_names = &["x", "h"];
            w_names = &["w_ih", "w_hh", "b_ih", "b_hh"];
            out_shape = vec![1, hidden];
            out = y;
        }
    }
    let mut meta = CaseMeta {
        case: case.clone(),
        layer,
        inputs: BTreeMap::new(),
        weights: BTreeMap::new(),
        output: TensorFile {
            file: "y_ref.f32".into(),
            shape: out_shape,
        },
        stats: stats_of(&w),
    };
    for (name, shape, data) in files {
        let file = format!("{name}.f32");
        write_f32(&dir.join(&file), &data)?;
        let tf = TensorFile { file, shape };
        if in_names.contains(&name.as_str()) {
            meta.inputs.insert(name, tf);
        } else if w_names.contains(&name.as_str()) {
            meta.weights.insert(name, tf);
        }
    }
    write_f32(&dir.join("y_ref.f32"), &out)?;
    let p = dir.join("meta.json");
    let text = serde_json::to_string_pretty(&meta).map_err(|e| werr(e.to_string()))?;
    std::fs::write(&p, text + "\n").map_err(io(&p))?;
    Ok(meta)
}
