//! `grim-tune convert`: a model written for other tools, and optionally its test
//! samples as raw tensors.
//!
//! - The model (any form [`load_model`] reads) is written as ONNX when the output ends
//!   in `.onnx` (a BCR layer becomes its effective dense weights, pruned entries zero:
//!   [`model::onnx::export`]), else as a grim model file. Only graph models can be
//!   ONNX; the g2p encoder-decoder decodes greedily and is refused with the reason.
//! - `--samples-out DIR` also writes the test split of `--data` (after the calibration
//!   samples, as `grim-tune run` takes it) for image classifiers: every input as one
//!   `f32` tensor, the labels, and the outputs of grim's plain-Rust dense reference
//!   ([`model::Reference`]) on each, with a `meta.json` naming files and shapes. Other
//!   frameworks run the ONNX file on these inputs and are checked against those
//!   outputs (bench/py/model_baselines.py times ONNX Runtime, MNN and tract on them).

use crate::model_cmd::load_model;
use model::standalone::f32_bytes;
use model::task::{data_path, Task};
use model::{Body, Model};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Everything `grim-tune convert` takes.
#[derive(Debug, Clone)]
pub struct ConvertArgs {
    /// The model to convert (a shipped name, a checkpoint, ONNX or a grim model file).
    pub model: String,
    /// Where shipped models and data live.
    pub models_dir: PathBuf,
    /// The output file: ONNX when it ends in `.onnx`, else a grim model file.
    pub out: PathBuf,
    /// Test samples to write next to it, when wanted.
    pub samples: Option<SamplesArgs>,
}

/// Which test samples `convert` writes, and where.
#[derive(Debug, Clone)]
pub struct SamplesArgs {
    /// Test data (`mnist` or a path), split as `grim-tune run` splits it.
    pub data: String,
    /// Calibration samples at the start of the data, skipped.
    pub calib_size: usize,
    /// At most this many test samples.
    pub limit: Option<usize>,
    /// The directory written (created when absent).
    pub dir: PathBuf,
}

/// One tensor file of a samples directory.
#[derive(Debug, Clone, Serialize)]
pub struct TensorFile {
    /// File name inside the directory.
    pub file: String,
    /// Its shape; the first dimension counts samples.
    pub shape: Vec<usize>,
    /// Element type and byte order (`f32le` or `u8`).
    pub dtype: String,
}

/// `meta.json` of a samples directory.
#[derive(Debug, Clone, Serialize)]
pub struct SamplesMeta {
    /// The model's name.
    pub model: String,
    /// The converted model file, as given to `--out`.
    pub model_file: String,
    /// The test data file the samples come from.
    pub data: String,
    /// Calibration samples skipped at its start.
    pub calib_size: usize,
    /// The inputs, one sample per row of the first dimension.
    pub inputs: TensorFile,
    /// The class label of each sample.
    pub labels: TensorFile,
    /// grim's dense reference outputs (logits) on each input.
    pub outputs: TensorFile,
    /// Top-1 accuracy of those outputs on the labels.
    pub reference_top1: f64,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the model file; returns what was written, in words.
fn write_model(m: &Model, out: &Path) -> Result<String, String> {
    let onnx = out.extension().and_then(|e| e.to_str()) == Some("onnx");
    if onnx {
        model::onnx::export(m, out).map_err(|e| e.to_string())?;
        Ok(format!(
            "wrote {} (ONNX; BCR layers as their effective dense weights)",
            out.display()
        ))
    } else {
        model::file::save(m, out).map_err(|e| e.to_string())?;
        Ok(format!("wrote {} (grim model file)", out.display()))
    }
}

/// The test samples of an image classifier with grim's reference outputs, in memory
/// (read before anything is written, so that bad data writes nothing).
struct Samples {
    /// The model's name.
    model: String,
    /// The data file they come from.
    data: PathBuf,
    /// Each input, batch dimension 1.
    xs: Vec<model::Array>,
    /// grim's dense reference logits of each.
    ys: Vec<model::Array>,
    /// Each label.
    labels: Vec<u8>,
    /// How many of `ys` pick their label.
    correct: usize,
}

/// Reads the test split of `s.data` and computes the reference outputs.
fn collect_samples(m: &Model, a: &ConvertArgs, s: &SamplesArgs) -> Result<Samples, String> {
    let data = data_path(&s.data, &a.models_dir);
    let mut task = Task::load(m, &data, s.calib_size).map_err(|e| e.to_string())?;
    let n = s.limit.unwrap_or(usize::MAX).min(task.test_len());
    task.limit_test(n);
    let Task::Mnist { test, .. } = &task else {
        return Err(format!("{}: not image data", data.display()));
    };
    if test.is_empty() {
        return Err(format!(
            "{}: no test images after {} calibration images",
            data.display(),
            s.calib_size
        ));
    }
    let mut exec = model::Reference::default();
    let (mut xs, mut ys) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut correct = 0usize;
    for i in 0..test.len() {
        let x = test
            .input(i)
            .ok_or_else(|| format!("{}: test image {i} is missing", data.display()))?;
        let y = model::evaluate::logits(m, &x, &mut exec).map_err(|e| e.to_string())?;
        if y.argmax() == Some(usize::from(test.labels[i])) {
            correct += 1;
        }
        xs.push(x);
        ys.push(y);
    }
    Ok(Samples {
        model: m.name.clone(),
        data,
        xs,
        ys,
        labels: test.labels.clone(),
        correct,
    })
}

/// Writes collected samples into `s.dir` with their `meta.json`.
fn write_samples(samples: &Samples, a: &ConvertArgs, s: &SamplesArgs) -> Result<String, String> {
    let Samples {
        model,
        data,
        xs,
        ys,
        labels,
        correct,
    } = samples;
    let (Some(x0), Some(y0)) = (xs.first(), ys.first()) else {
        return Err(format!("{}: no test samples", data.display()));
    };
    let (in_shape, out_len) = (x0.shape().to_vec(), y0.data().len());
    std::fs::create_dir_all(&s.dir).map_err(|e| format!("{}: {e}", s.dir.display()))?;
    let xs_data: Vec<&[f32]> = xs.iter().map(|x| x.data()).collect();
    let ys_data: Vec<&[f32]> = ys.iter().map(|y| y.data()).collect();
    write_file(&s.dir.join("x.f32"), &f32_bytes(&xs_data))?;
    write_file(&s.dir.join("y_ref.f32"), &f32_bytes(&ys_data))?;
    write_file(&s.dir.join("labels.u8"), labels)?;
    let count = labels.len();
    // Each input carries its own batch dimension of 1: the samples stack along it.
    let mut inputs_shape = vec![count];
    inputs_shape.extend(in_shape.iter().skip(1));
    let top1 = *correct as f64 / count as f64;
    let meta = SamplesMeta {
        model: model.clone(),
        model_file: a.out.display().to_string(),
        data: data.display().to_string(),
        calib_size: s.calib_size,
        inputs: TensorFile {
            file: "x.f32".into(),
            shape: inputs_shape,
            dtype: "f32le".into(),
        },
        labels: TensorFile {
            file: "labels.u8".into(),
            shape: vec![count],
            dtype: "u8".into(),
        },
        outputs: TensorFile {
            file: "y_ref.f32".into(),
            shape: vec![count, out_len],
            dtype: "f32le".into(),
        },
        reference_top1: top1,
    };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| e.to_string())?;
    write_file(&s.dir.join("meta.json"), json.as_bytes())?;
    Ok(format!(
        "wrote {count} test samples of {} to {} (grim's dense reference: {:.2}% top-1)",
        data.display(),
        s.dir.display(),
        top1 * 100.0
    ))
}

/// Runs `grim-tune convert`; returns the lines to print.
pub fn convert(a: &ConvertArgs) -> Result<String, String> {
    let m = load_model(&a.model, &a.models_dir)?;
    if a.samples.is_some() && matches!(m.body, Body::Seq2Seq(_)) {
        return Err(format!(
            "--samples-out: model `{}` is an encoder-decoder that decodes words step by step; only image classifiers' samples can be written as tensors",
            m.name
        ));
    }
    let samples = match &a.samples {
        Some(s) => Some((collect_samples(&m, a, s)?, s)),
        None => None,
    };
    let mut lines = vec![write_model(&m, &a.out)?];
    if let Some((samples, s)) = &samples {
        lines.push(write_samples(samples, a, s)?);
    }
    Ok(lines.join("\n") + "\n")
}
