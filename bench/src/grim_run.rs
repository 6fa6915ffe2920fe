//! grim's rows: the BCR kernel with its tuned schedule from the tuning database, the
//! same BCR workload with the default (untuned) schedule, and grim's dense kernel with
//! its tuned schedule run on the case's effective dense weights. Tuned rows at N
//! threads use the schedules tuned at N threads (`host -threads=N`). Each is built into one
//! measurement binary (`codegen::harness`), run natively with `OMP_NUM_THREADS`, its
//! output compared with the case's reference, and timed with the common protocol.

use crate::error::{io, BenchError};
use crate::export::{read_meta, read_tensor, transpose, Layer, INPUT_SEED};
use crate::protocol::Protocol;
use crate::results::ResultRecord;
use codegen::harness::{measurement_source, Candidate};
use codegen::run::{parse_timing, read_outputs, write_inputs};
use codegen::toolchain::{build_binary, run_with_timeout};
use codegen::Target;
use schedule::Schedule;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tir::workload::Workload;
use tir::{Function, Tensor};
use tuning_logs::{apply_best, ApplyBest, Database, DeviceIdentity};

/// One kernel to measure.
struct Kernel {
    system: &'static str,
    func: Function,
    args: BTreeMap<String, Tensor>,
    note: String,
    /// The thread count it was tuned for and is timed at (`None`: every count).
    threads: Option<u32>,
}

fn werr(case: &str, m: impl std::fmt::Display) -> BenchError {
    BenchError::Workload {
        case: case.into(),
        message: m.to_string(),
    }
}

/// The schedule of `w` tuned on this machine at `threads` OpenMP threads (target
/// `host -threads=N`), else one tuned without a thread count (`host`, said in the
/// note), else the default schedule with a note saying so.
fn tuned(
    db: &Database,
    w: &Workload,
    case: &str,
    threads: u32,
) -> Result<(Schedule, String), BenchError> {
    let host = tuning_logs::Target::HOST;
    let counted = host.clone().with_threads(Some(threads));
    let mut last = None;
    for target in [&counted, &host] {
        match apply_best(db, w, target, &DeviceIdentity::host()) {
            Ok(ApplyBest::Tuned { schedule, record }) => {
                let median = record.record.median_s().unwrap_or(f64::NAN);
                let older = if record.record.is_current() {
                    String::new()
                } else {
                    format!(
                        " (measured by grim {}: code older than this build's)",
                        record.record.grim_version
                    )
                };
                return Ok((
                    *schedule,
                    format!(
                        "tuned for `{target}`: {} trace instructions, {:.1} us when tuned{older}",
                        record.record.trace.instructions.len(),
                        median * 1e6
                    ),
                ));
            }
            Ok(ApplyBest::NoRecord(n)) => last = Some(n),
            Err(e) => return Err(werr(case, e)),
        }
    }
    let s = Schedule::from_workload(w).map_err(|e| werr(case, e))?;
    let why = last.map_or(String::new(), |n| n.to_string());
    Ok((s, format!("UNTUNED: {why}")))
}

/// Replaces the dense weights of `w` (an unpruned workload of the case's family) by the
/// case's effective weights, so grim's dense kernel computes exactly the case's matrix.
fn with_case_weights(
    mut w: Workload,
    dir: &Path,
    meta: &crate::export::CaseMeta,
) -> Result<Workload, BenchError> {
    let names: &[(&str, &str)] = match meta.layer {
        Layer::Gru { .. } => &[
            ("w_ih", "W_ih"),
            ("w_hh", "W_hh"),
            ("b_ih", "b_ih"),
            ("b_hh", "b_hh"),
        ],
        _ => &[("w", "W")],
    };
    for (role, param) in names {
        let tf = meta
            .weights
            .get(*role)
            .ok_or_else(|| werr(&meta.case.id, format!("meta.json has no weight `{role}`")))?;
        let data = read_tensor(dir, tf)?;
        let old = w.weights.get(*param).ok_or_else(|| {
            werr(
                &meta.case.id,
                format!("dense workload has no weight `{param}`"),
            )
        })?;
        let t = Tensor::f32(old.shape().to_vec(), data).map_err(|e| werr(&meta.case.id, e))?;
        w.weights.insert((*param).to_string(), t);
    }
    Ok(w)
}

/// grim's output in the frameworks' layout.
fn framework_layout(layer: &Layer, outputs: &BTreeMap<String, Tensor>) -> Option<Vec<f32>> {
    match *layer {
        Layer::Fc { m, n, .. } => Some(transpose(outputs.get("Y")?.as_f32()?, m, n)),
        Layer::Conv { .. } => Some(outputs.get("Y")?.as_f32()?.to_vec()),
        Layer::Gru { .. } => Some(outputs.get("h_next")?.as_f32()?.to_vec()),
    }
}

/// Measures grim's kernels of the case folder `dir` at each thread count, with the
/// tuned schedules of `db`. Failures become records with `ok = false`.
pub fn measure_case(
    db: &Database,
    dir: &Path,
    threads: &[u32],
    protocol: &Protocol,
) -> Result<Vec<ResultRecord>, BenchError> {
    let meta = read_meta(dir)?;
    let id = meta.case.id.clone();
    let want = read_tensor(dir, &meta.output)?;
    let mut kernels = Vec::new();
    // One kernel per thread count, with the schedule tuned at that count.
    let tuned_kernels = |system: &'static str,
                         w: &Workload,
                         inputs: &BTreeMap<String, Tensor>|
     -> Result<Vec<Kernel>, BenchError> {
        let mut out = Vec::new();
        for &t in threads {
            let (s, note) = tuned(db, w, &id, t)?;
            let mut args = inputs.clone();
            args.extend(s.weights().clone());
            out.push(Kernel {
                system,
                func: tuner::pipeline::optimize(s.func()),
                args,
                note,
                threads: Some(t),
            });
        }
        Ok(out)
    };
    if !meta.case.is_dense() {
        let w = Workload::from_spec_str(&meta.case.spec).map_err(|e| werr(&id, e))?;
        let inputs = w.random_inputs(INPUT_SEED);
        kernels.extend(tuned_kernels("grim-bcr", &w, &inputs)?);
        let d = Schedule::from_workload(&w).map_err(|e| werr(&id, e))?;
        let mut args = inputs;
        args.extend(d.weights().clone());
        kernels.push(Kernel {
            system: "grim-bcr-default",
            func: tuner::pipeline::optimize(d.func()),
            args,
            note: "default schedule (untuned)".into(),
            threads: None,
        });
    }
    let dw = Workload::from_spec_str(&meta.case.dense_spec).map_err(|e| werr(&id, e))?;
    let dw = with_case_weights(dw, dir, &meta)?;
    kernels.extend(tuned_kernels(
        "grim-dense",
        &dw,
        &dw.random_inputs(INPUT_SEED),
    )?);

    let work = dir.join("grim");
    let cands: Vec<Candidate<'_>> = kernels
        .iter()
        .map(|k| Candidate { func: &k.func })
        .collect();
    let src = measurement_source(&cands, &Target::Host).map_err(|e| werr(&id, e))?;
    let bin = build_binary(&src, &work, &Target::Host, Duration::from_secs(600)).map_err(|e| {
        BenchError::Run {
            case: id.clone(),
            system: "grim".into(),
            message: e.to_string(),
        }
    })?;
    let mut out = Vec::new();
    for (i, k) in kernels.iter().enumerate() {
        for &t in threads
            .iter()
            .filter(|t| k.threads.is_none_or(|kt| kt == **t))
        {
            let rec = match run_one(&bin, i, k, t, protocol, &work) {
                Ok((outputs, timing)) => {
                    let diff = framework_layout(&meta.layer, &outputs)
                        .map(|got| crate::reference::max_abs_diff(&got, &want))
                        .unwrap_or(f64::INFINITY);
                    ResultRecord::measured(&id, k.system, t, &timing, diff, k.note.clone())
                }
                Err(message) => ResultRecord::failed(&id, k.system, t, message),
            };
            out.push(rec);
        }
    }
    Ok(out)
}

fn run_one(
    bin: &Path,
    index: usize,
    k: &Kernel,
    threads: u32,
    protocol: &Protocol,
    work: &Path,
) -> Result<(BTreeMap<String, Tensor>, codegen::run::Timing), String> {
    std::fs::create_dir_all(work).map_err(|e| io(work)(e).to_string())?;
    let input = work.join(format!("in{index}.bin"));
    let output = work.join(format!("out{index}.bin"));
    let _ = std::fs::remove_file(&output);
    write_inputs(&k.func, &k.args, &input).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.env("OMP_NUM_THREADS", threads.to_string())
        .arg(index.to_string())
        .arg(&input)
        .arg(&output)
        .arg("1")
        .arg(protocol.repeat.to_string())
        .arg(protocol.min_sample_ms.to_string());
    let limit = Duration::from_secs(protocol.timeout_s);
    let fin = run_with_timeout(&mut cmd, limit)
        .map_err(|e| format!("{}: {e}", bin.display()))?
        .ok_or_else(|| format!("timed out after {limit:?}"))?;
    if fin.code != Some(0) {
        return Err(format!(
            "exit status {:?}, signal {:?}: {}",
            fin.code,
            fin.signal,
            fin.stderr.trim()
        ));
    }
    let outputs = read_outputs(&k.func, &output).map_err(|e| e.to_string())?;
    let timing = parse_timing(&fin.stdout).map_err(|e| e.to_string())?;
    codegen::run::check_threads(&timing, Some(threads)).map_err(|e| e.to_string())?;
    Ok((outputs, timing))
}
