//! Running a candidate of a measurement binary and reading its results back.

use crate::error::CodegenError;
use crate::toolchain::{command, run_with_timeout, Runner};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tir::{Function, ParamKind, Tensor};

/// Timing of a candidate, in seconds per run.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Median over the samples.
    pub median: f64,
    /// Fastest sample.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub stddev: f64,
    /// Runs per sample.
    pub number: u64,
    /// Samples.
    pub repeat: u64,
    /// OpenMP threads available to parallel loops during the run, when the binary
    /// reports them (CPU measurement binaries do; the OpenCL harness does not).
    pub threads: Option<u32>,
}

/// How many runs to time.
#[derive(Debug, Clone, PartialEq)]
pub struct Protocol {
    /// Runs per sample (grown until a sample lasts `min_repeat_ms`).
    pub number: u64,
    /// Samples.
    pub repeat: u64,
    /// Minimum duration of one sample, in milliseconds.
    pub min_repeat_ms: f64,
    /// Wall-clock limit of the whole run.
    pub timeout: Duration,
    /// OpenMP threads of the run (`OMP_NUM_THREADS` of the process); `None` leaves
    /// the environment's setting.
    pub threads: Option<u32>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            number: 1,
            repeat: 5,
            min_repeat_ms: 5.0,
            timeout: Duration::from_secs(60),
            threads: None,
        }
    }
}

/// Outputs and timing of one run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The output parameters, by name.
    pub outputs: BTreeMap<String, Tensor>,
    /// The timing.
    pub timing: Timing,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodegenError + '_ {
    move |source| CodegenError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes every parameter of `f`, in order, from `args` (outputs may be absent: they
/// are written as zeros).
pub fn write_inputs(
    f: &Function,
    args: &BTreeMap<String, Tensor>,
    path: &Path,
) -> Result<(), CodegenError> {
    let mut bytes = Vec::new();
    for p in &f.params {
        match args.get(&p.name) {
            Some(t) => {
                if t.shape() != p.shape.as_slice() || t.dtype() != p.dtype {
                    return Err(CodegenError::BadArgument {
                        name: p.name.clone(),
                        reason: format!(
                            "expected {} {:?}, got {} {:?}",
                            p.dtype,
                            p.shape,
                            t.dtype(),
                            t.shape()
                        ),
                    });
                }
                bytes.extend_from_slice(&t.to_le_bytes());
            }
            None if p.kind == ParamKind::Output => {
                bytes.resize(bytes.len() + p.dtype.size_bytes() * p.len(), 0)
            }
            None => {
                return Err(CodegenError::BadArgument {
                    name: p.name.clone(),
                    reason: "missing".into(),
                })
            }
        }
    }
    std::fs::write(path, bytes).map_err(io(path))
}

/// Reads the output parameters of `f` from `path`.
pub fn read_outputs(f: &Function, path: &Path) -> Result<BTreeMap<String, Tensor>, CodegenError> {
    // The file may come from a device: check its size before reading it whole.
    let want = output_bytes(f);
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len != want as u64 {
        return Err(CodegenError::BadOutput(format!(
            "{}: {len} bytes, expected {want}",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(io(path))?;
    outputs_from_bytes(f, &bytes, &path.display().to_string())
}

/// The size of `f`'s output file: every output parameter's elements, 4 bytes each
/// (1 for `u8`).
fn output_bytes(f: &Function) -> usize {
    f.params
        .iter()
        .filter(|p| p.kind == ParamKind::Output)
        .map(|p| p.dtype.size_bytes() * p.len())
        .sum()
}

/// Decodes the output parameters of `f` from the bytes of an output file (`what` names
/// it in errors). A file of the wrong length (truncated, or with trailing garbage) is
/// a [`CodegenError::BadOutput`]; any bit pattern of the right length decodes (a NaN
/// is caught later by the comparison with the reference).
pub fn outputs_from_bytes(
    f: &Function,
    bytes: &[u8],
    what: &str,
) -> Result<BTreeMap<String, Tensor>, CodegenError> {
    let want = output_bytes(f);
    if bytes.len() != want {
        return Err(CodegenError::BadOutput(format!(
            "{what}: {} bytes, expected {want}",
            bytes.len()
        )));
    }
    let mut out = BTreeMap::new();
    let mut at = 0;
    for p in f.params.iter().filter(|p| p.kind == ParamKind::Output) {
        let n = p.len() * p.dtype.size_bytes();
        let chunk = &bytes[at..at + n];
        at += n;
        let t = Tensor::from_le_bytes(p.dtype, p.shape.clone(), chunk)
            .map_err(|e| CodegenError::BadOutput(e.to_string()))?;
        out.insert(p.name.clone(), t);
    }
    Ok(out)
}

/// Parses the `GRIM-TIMING` line of the binary's standard output.
pub fn parse_timing(stdout: &str) -> Result<Timing, CodegenError> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("GRIM-TIMING "))
        .ok_or_else(|| CodegenError::BadOutput("no GRIM-TIMING line".into()))?;
    let f: Vec<&str> = line.split_whitespace().skip(1).collect();
    let bad = || CodegenError::BadOutput(format!("malformed timing line `{line}`"));
    if f.len() != 6 && f.len() != 7 {
        return Err(bad());
    }
    let num = |s: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(bad)
    };
    let int = |s: &str| s.parse::<u64>().map_err(|_| bad());
    Ok(Timing {
        median: num(f[0])?,
        min: num(f[1])?,
        mean: num(f[2])?,
        stddev: num(f[3])?,
        number: int(f[4])?,
        repeat: int(f[5])?,
        threads: match f.get(6) {
            Some(t) => Some(t.parse::<u32>().map_err(|_| bad())?),
            None => None,
        },
    })
}

/// Checks that a run used the OpenMP thread count it was asked for (`want`): a
/// device whose OpenMP ignores `OMP_NUM_THREADS`, or a binary built without OpenMP,
/// would otherwise store single-threaded times under a multi-threaded target.
pub fn check_threads(timing: &Timing, want: Option<u32>) -> Result<(), CodegenError> {
    match (want, timing.threads) {
        (Some(w), Some(got)) if got != w => Err(CodegenError::RunFailed(format!(
            "asked for {w} OpenMP thread(s) (OMP_NUM_THREADS), the run had {got}"
        ))),
        (Some(w), None) => Err(CodegenError::RunFailed(format!(
            "asked for {w} OpenMP thread(s), the binary did not report its thread count"
        ))),
        _ => Ok(()),
    }
}

/// Runs candidate `index` of the binary `bin` on `args` (parameters of `f`, the
/// candidate's scheduled function), in a scratch directory `dir`.
pub fn run_candidate(
    bin: &Path,
    runner: &Runner,
    index: usize,
    f: &Function,
    args: &BTreeMap<String, Tensor>,
    protocol: &Protocol,
    dir: &Path,
) -> Result<RunResult, CodegenError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let input = dir.join(format!("in{index}.bin"));
    let output = dir.join(format!("out{index}.bin"));
    let _ = std::fs::remove_file(&output);
    write_inputs(f, args, &input)?;
    let mut cmd = command(bin, runner)?;
    cmd.arg(index.to_string())
        .arg(&input)
        .arg(&output)
        .arg(protocol.number.to_string())
        .arg(protocol.repeat.to_string())
        .arg(protocol.min_repeat_ms.to_string());
    if let Some(n) = protocol.threads {
        cmd.env("OMP_NUM_THREADS", n.to_string());
    }
    let fin = run_with_timeout(&mut cmd, protocol.timeout)
        .map_err(io(bin))?
        .ok_or(CodegenError::RunTimeout(protocol.timeout))?;
    if fin.code != Some(0) {
        return Err(CodegenError::RunFailed(match fin.signal {
            Some(s) => format!("killed by signal {s}; stderr: {}", fin.stderr.trim()),
            None => format!("exit status {:?}; stderr: {}", fin.code, fin.stderr.trim()),
        }));
    }
    let outputs = read_outputs(f, &output)?;
    let timing = parse_timing(&fin.stdout)?;
    check_threads(&timing, protocol.threads)?;
    Ok(RunResult { outputs, timing })
}

/// The largest absolute and relative differences between two sets of outputs
/// (relative to `max(|want|, 1)`); `None` when names or shapes differ.
pub fn max_error(
    got: &BTreeMap<String, Tensor>,
    want: &BTreeMap<String, Tensor>,
) -> Option<(f64, f64)> {
    if got.len() != want.len() {
        return None;
    }
    let (mut abs, mut rel) = (0f64, 0f64);
    for (k, w) in want {
        let g = got.get(k)?;
        if g.shape() != w.shape() {
            return None;
        }
        let (gv, wv) = (g.as_f32()?, w.as_f32()?);
        for (a, b) in gv.iter().zip(wv) {
            let d = (*a as f64 - *b as f64).abs();
            if d.is_nan() {
                return Some((f64::INFINITY, f64::INFINITY));
            }
            abs = abs.max(d);
            rel = rel.max(d / (b.abs() as f64).max(1.0));
        }
    }
    Some((abs, rel))
}
