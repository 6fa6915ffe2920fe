//! `tract-bench CASE_DIR THREADS REPEAT MIN_SAMPLE_MS`: loads `CASE_DIR/model.onnx`
//! (written by bench/py/baselines.py) with tract, feeds the case's inputs (raw `f32`
//! files named in `meta.json`), compares the output with the reference, times it with
//! the benchmark's protocol (one checked call, one warm-up, `number` doubled until a
//! sample lasts MIN_SAMPLE_MS, REPEAT samples, median) and prints one JSON result line.
//! THREADS > 1 runs tract's matrix products on a thread pool of that size.

use std::path::Path;
use std::time::Instant;
use tract_onnx::prelude::*;

fn read_f32(path: &Path) -> TractResult<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if bytes.len() % 4 != 0 {
        anyhow::bail!("{}: not a whole number of f32", path.display());
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn tensor_of(dir: &Path, tf: &serde_json::Value) -> TractResult<Tensor> {
    let file = tf["file"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("meta.json: tensor without `file`"))?;
    let shape: Vec<usize> = tf["shape"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("meta.json: tensor without `shape`"))?
        .iter()
        .map(|v| v.as_u64().unwrap_or(0) as usize)
        .collect();
    let data = read_f32(&dir.join(file))?;
    Tensor::from_shape(&shape, &data)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn run() -> TractResult<serde_json::Value> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        anyhow::bail!("usage: tract-bench CASE_DIR THREADS REPEAT MIN_SAMPLE_MS");
    }
    let dir = Path::new(&args[1]);
    let threads: usize = args[2].parse()?;
    let repeat: usize = args[3].parse()?;
    let min_ms: f64 = args[4].parse()?;
    if threads > 1 {
        tract_linalg::multithread::set_default_executor(
            tract_linalg::multithread::Executor::multithread(threads),
        );
    }
    let meta_path = dir.join("meta.json");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&meta_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", meta_path.display()))?,
    )?;
    let id = meta["case"]["id"].as_str().unwrap_or("?").to_string();
    // ONNX inputs are `x` (and `h` for a GRU), in that order.
    let mut inputs: TVec<TValue> = tvec![];
    for role in ["x", "h"] {
        if let Some(tf) = meta["inputs"].get(role) {
            inputs.push(tensor_of(dir, tf)?.into_tvalue());
        }
    }
    let want = tensor_of(dir, &meta["output"])?;
    let model = tract_onnx::onnx()
        .model_for_path(dir.join("model.onnx"))?
        .into_optimized()?
        .into_runnable()?;
    let mut state = model.spawn()?;
    let out = state.run(inputs.clone())?;
    let got = out[0].to_plain_array_view::<f32>()?;
    let want = want.to_plain_array_view::<f32>()?;
    let mut diff = 0f64;
    if got.len() != want.len() {
        diff = f64::INFINITY;
    } else {
        for (a, b) in got.iter().zip(want.iter()) {
            let d = (*a as f64 - *b as f64).abs();
            diff = if d.is_nan() {
                f64::INFINITY
            } else {
                diff.max(d)
            };
        }
    }
    let ok = diff <= 5e-3;
    let mut rec = serde_json::json!({
        "case": id, "system": "tract", "threads": threads,
        "median_ms": null, "min_ms": null, "repeat": 0, "number": 0,
        "max_abs_diff": if diff.is_finite() { serde_json::json!(diff) } else { serde_json::Value::Null },
        "ok": ok, "note": "tract-onnx 0.23, into_optimized",
    });
    if !ok {
        return Ok(rec);
    }
    state.run(inputs.clone())?; // warm-up
    let mut number = 1usize;
    loop {
        let t0 = Instant::now();
        for _ in 0..number {
            state.run(inputs.clone())?;
        }
        if t0.elapsed().as_secs_f64() * 1e3 >= min_ms || number >= 1 << 30 {
            break;
        }
        number *= 2;
    }
    let mut samples = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let t0 = Instant::now();
        for _ in 0..number {
            state.run(inputs.clone())?;
        }
        samples.push(t0.elapsed().as_secs_f64() / number as f64);
    }
    let min = samples.iter().cloned().fold(f64::MAX, f64::min);
    rec["median_ms"] = serde_json::json!(median(&mut samples) * 1e3);
    rec["min_ms"] = serde_json::json!(min * 1e3);
    rec["repeat"] = serde_json::json!(samples.len());
    rec["number"] = serde_json::json!(number);
    Ok(rec)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tract-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
