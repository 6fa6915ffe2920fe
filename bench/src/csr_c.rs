//! The plain C sparse baselines (`src/csr_kernel.c`): built with the host compiler and
//! the flags of grim's host kernels (`codegen::toolchain::compiler`), fed the case's
//! non-zeros in CSR form (`csr-c`) or, for a BCR FC case, its blocks (`bcr-c`: the
//! untuned loop the issue measures grim against: gather the kept inputs, dense dot
//! products, scatter), checked against the reference and timed with the common
//! protocol.

use crate::error::{io, BenchError};
use crate::export::{read_meta, read_tensor, transpose, write_f32, CaseMeta, Layer};
use crate::protocol::Protocol;
use crate::results::ResultRecord;
use codegen::toolchain::run_with_timeout;
use codegen::Target;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The kernel's C source.
pub const SOURCE: &str = include_str!("csr_kernel.c");

/// Builds the CSR benchmark binary into `dir`; returns its path.
pub fn build(dir: &Path) -> Result<PathBuf, BenchError> {
    crate::c_program::build(dir, "csr_bench", SOURCE, &Target::Host, ("-", "csr-c"))
}

/// `(row_ptr, col_idx, values)` of the non-zeros of a row-major `rows x cols` matrix.
pub fn to_csr(m: &[f32], rows: usize, cols: usize) -> (Vec<i32>, Vec<i32>, Vec<f32>) {
    let mut rp = Vec::with_capacity(rows + 1);
    let (mut ci, mut v) = (Vec::new(), Vec::new());
    rp.push(0);
    for r in 0..rows {
        for c in 0..cols {
            let x = m[r * cols + c];
            if x != 0.0 {
                ci.push(c as i32);
                v.push(x);
            }
        }
        rp.push(ci.len() as i32);
    }
    (rp, ci, v)
}

fn write_i32(path: &Path, data: &[i32]) -> Result<(), BenchError> {
    let mut bytes = Vec::with_capacity(4 * data.len());
    data.iter()
        .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    std::fs::write(path, bytes).map_err(io(path))
}

fn csr_files(
    work: &Path,
    name: &str,
    m: &[f32],
    rows: usize,
    cols: usize,
) -> Result<Vec<String>, BenchError> {
    let (rp, ci, v) = to_csr(m, rows, cols);
    let paths = [
        work.join(format!("{name}_rp.i32")),
        work.join(format!("{name}_ci.i32")),
        work.join(format!("{name}_v.f32")),
    ];
    write_i32(&paths[0], &rp)?;
    write_i32(&paths[1], &ci)?;
    write_f32(&paths[2], &v)?;
    Ok(paths.iter().map(|p| p.display().to_string()).collect())
}

/// The blocks of a matrix as the plain BCR loop reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct BcrArrays {
    /// `blocks + 1` offsets into `rows`.
    pub row_ptr: Vec<i32>,
    /// Global row of every kept row.
    pub rows: Vec<i32>,
    /// `blocks + 1` offsets into `cols`.
    pub col_ptr: Vec<i32>,
    /// Global column of every kept column.
    pub cols: Vec<i32>,
    /// Each block's kept rows x kept columns, row-major, block after block.
    pub values: Vec<f32>,
}

/// The BCR arrays of a row-major `rows x cols` matrix cut into `r x c` blocks, every
/// block of the grid in row-major block order (empty ones too): per block the global
/// rows and columns that hold a non-zero, and its kept sub-matrix.
pub fn to_bcr(m: &[f32], rows: usize, cols: usize, (r, c): (usize, usize)) -> BcrArrays {
    let (mut rp, mut ri, mut cp, mut ci, mut v) =
        (vec![0], Vec::new(), vec![0], Vec::new(), Vec::new());
    for r0 in (0..rows).step_by(r.max(1)) {
        for c0 in (0..cols).step_by(c.max(1)) {
            let (r1, c1) = ((r0 + r).min(rows), (c0 + c).min(cols));
            let nz = |i: usize, j: usize| m[i * cols + j] != 0.0;
            let kr: Vec<usize> = (r0..r1).filter(|&i| (c0..c1).any(|j| nz(i, j))).collect();
            let kc: Vec<usize> = (c0..c1).filter(|&j| (r0..r1).any(|i| nz(i, j))).collect();
            for &i in &kr {
                v.extend(kc.iter().map(|&j| m[i * cols + j]));
            }
            ri.extend(kr.iter().map(|&i| i as i32));
            ci.extend(kc.iter().map(|&j| j as i32));
            rp.push(ri.len() as i32);
            cp.push(ci.len() as i32);
        }
    }
    BcrArrays {
        row_ptr: rp,
        rows: ri,
        col_ptr: cp,
        cols: ci,
        values: v,
    }
}

fn tensor(dir: &Path, meta: &CaseMeta, role: &str, weight: bool) -> Result<Vec<f32>, BenchError> {
    let map = if weight { &meta.weights } else { &meta.inputs };
    let tf = map.get(role).ok_or_else(|| BenchError::BadFile {
        path: dir.join("meta.json").display().to_string(),
        message: format!("no tensor `{role}`"),
    })?;
    read_tensor(dir, tf)
}

/// Which kernel of the binary runs a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// CSR (`csr-c`): FC, conv (im2col) and GRU.
    Csr,
    /// The plain BCR loop (`bcr-c`): BCR FC cases only.
    BcrLoop,
}

impl Baseline {
    /// The system id of its result records (and the work folder under a case).
    pub fn id(self) -> &'static str {
        match self {
            Baseline::Csr => "csr-c",
            Baseline::BcrLoop => "bcr-c",
        }
    }
}

/// The command line (after the binary) for the case run by `baseline`, with its files
/// written to `work`; returns the arguments and the output file.
pub fn prepare(
    dir: &Path,
    meta: &CaseMeta,
    work: &Path,
    baseline: Baseline,
) -> Result<(Vec<String>, PathBuf), BenchError> {
    std::fs::create_dir_all(work).map_err(io(work))?;
    let out = work.join("y.f32");
    let x_path = work.join("x.f32");
    let mut args: Vec<String> = Vec::new();
    if baseline == Baseline::BcrLoop && !matches!(meta.layer, Layer::Fc { .. }) {
        return Err(BenchError::BadFile {
            path: dir.join("meta.json").display().to_string(),
            message: "the BCR loop baseline runs FC cases only".into(),
        });
    }
    match meta.layer {
        Layer::Fc { m, k, n } if baseline == Baseline::BcrLoop => {
            let Some(block) = meta.case.block else {
                return Err(BenchError::BadFile {
                    path: dir.join("meta.json").display().to_string(),
                    message: "the BCR loop needs a BCR case (this one is dense)".into(),
                });
            };
            let w = tensor(dir, meta, "w", true)?;
            let x = tensor(dir, meta, "x", false)?;
            write_f32(&x_path, &transpose(&x, n, k))?;
            let b = to_bcr(&w, m, k, block);
            args.extend(["fcbcr".into(), m.to_string(), k.to_string(), n.to_string()]);
            args.push(k.div_ceil(block.1.max(1)).to_string());
            for (name, data) in [
                ("rp", &b.row_ptr),
                ("ri", &b.rows),
                ("cp", &b.col_ptr),
                ("ci", &b.cols),
            ] {
                let p = work.join(format!("w_{name}.i32"));
                write_i32(&p, data)?;
                args.push(p.display().to_string());
            }
            let p = work.join("w_v.f32");
            write_f32(&p, &b.values)?;
            args.push(p.display().to_string());
            args.push(x_path.display().to_string());
        }
        Layer::Fc { m, k, n } => {
            let w = tensor(dir, meta, "w", true)?;
            let x = tensor(dir, meta, "x", false)?;
            write_f32(&x_path, &transpose(&x, n, k))?;
            args.extend(["fc".into(), m.to_string(), k.to_string(), n.to_string()]);
            args.extend(csr_files(work, "w", &w, m, k)?);
            args.push(x_path.display().to_string());
        }
        Layer::Conv {
            c,
            o,
            h,
            w: wd,
            kh,
            kw,
            stride,
            pad,
        } => {
            let w = tensor(dir, meta, "w", true)?;
            let x = tensor(dir, meta, "x", false)?;
            write_f32(&x_path, &x)?;
            args.push("conv".into());
            args.extend(
                [o, c, h, wd, kh, kw, stride, pad]
                    .iter()
                    .map(|v| v.to_string()),
            );
            args.extend(csr_files(work, "w", &w, o, c * kh * kw)?);
            args.push(x_path.display().to_string());
        }
        Layer::Gru { hidden, input } => {
            let w_ih = tensor(dir, meta, "w_ih", true)?;
            let w_hh = tensor(dir, meta, "w_hh", true)?;
            args.extend(["gru".into(), hidden.to_string(), input.to_string()]);
            args.extend(csr_files(work, "w_ih", &w_ih, 3 * hidden, input)?);
            args.extend(csr_files(work, "w_hh", &w_hh, 3 * hidden, hidden)?);
            for (role, weight) in [("b_ih", true), ("b_hh", true), ("x", false), ("h", false)] {
                let p = work.join(format!("{role}.f32"));
                write_f32(&p, &tensor(dir, meta, role, weight)?)?;
                args.push(p.display().to_string());
            }
        }
    }
    args.push(out.display().to_string());
    Ok((args, out))
}

/// Measures the C CSR kernel (and, for a BCR FC case, the plain BCR loop) on the case
/// folder `dir` at each thread count.
pub fn measure_case(
    bin: &Path,
    dir: &Path,
    threads: &[u32],
    protocol: &Protocol,
) -> Result<Vec<ResultRecord>, BenchError> {
    let meta = read_meta(dir)?;
    let want = read_tensor(dir, &meta.output)?;
    let mut baselines = vec![Baseline::Csr];
    if matches!(meta.layer, Layer::Fc { .. }) && meta.case.block.is_some() {
        baselines.push(Baseline::BcrLoop);
    }
    let mut recs = Vec::new();
    for b in baselines {
        let (args, out) = prepare(dir, &meta, &dir.join(b.id()), b)?;
        recs.extend(measure_system(
            bin,
            b.id(),
            &meta,
            &want,
            &args,
            &out,
            threads,
            protocol,
        ));
    }
    Ok(recs)
}

/// Times one system of the binary (`csr-c` or `bcr-c`) at each thread count.
#[allow(clippy::too_many_arguments)]
fn measure_system(
    bin: &Path,
    system: &str,
    meta: &CaseMeta,
    want: &[f32],
    args: &[String],
    out: &Path,
    threads: &[u32],
    protocol: &Protocol,
) -> Vec<ResultRecord> {
    let mut recs = Vec::new();
    for &t in threads {
        let _ = std::fs::remove_file(out);
        let mut cmd = Command::new(bin);
        cmd.env("OMP_NUM_THREADS", t.to_string())
            .args(args)
            .arg(protocol.repeat.to_string())
            .arg(protocol.min_sample_ms.to_string());
        let limit = Duration::from_secs(protocol.timeout_s);
        let result = run_with_timeout(&mut cmd, limit)
            .map_err(|e| e.to_string())
            .and_then(|f| f.ok_or_else(|| format!("timed out after {limit:?}")))
            .and_then(|f| {
                if f.code == Some(0) {
                    Ok(f)
                } else {
                    Err(format!("exit {:?}: {}", f.code, f.stderr.trim()))
                }
            })
            .and_then(|f| {
                let timing = codegen::run::parse_timing(&f.stdout).map_err(|e| e.to_string())?;
                let got = crate::export::read_f32(out).map_err(|e| e.to_string())?;
                let got = match meta.layer {
                    Layer::Fc { m, n, .. } => transpose(&got, m, n),
                    _ => got,
                };
                Ok((timing, crate::reference::max_abs_diff(&got, want)))
            });
        recs.push(match result {
            Ok((timing, diff)) => ResultRecord::measured(
                &meta.case.id,
                system,
                t,
                &timing,
                diff,
                format!("{} non-zeros", meta.stats.nonzeros),
            ),
            Err(note) => ResultRecord::failed(&meta.case.id, system, t, note),
        });
    }
    recs
}
