//! One function per fuzz target: feed the bytes to the parser or loader, and (where a
//! parse succeeds) to what consumes its result next. A target returns normally on any
//! error (returning whether the input was accepted); a panic is a bug.

use std::collections::BTreeMap;
use std::path::Path;
use tir::workload::Workload;

/// Fixtures the targets need (workloads to replay traces on and to decode outputs of).
pub struct Fixtures {
    workloads: Vec<Workload>,
    reference: Vec<BTreeMap<String, tir::Tensor>>,
}

impl Fixtures {
    /// Builds the fixtures (a few small workloads and their reference outputs).
    pub fn new() -> Fixtures {
        let workloads = crate::corpus::workloads();
        let reference = workloads
            .iter()
            .map(|w| w.interpret(&w.random_inputs(1)).unwrap_or_default())
            .collect();
        Fixtures {
            workloads,
            reference,
        }
    }

    fn pick(&self, data: &[u8]) -> usize {
        data.len() % self.workloads.len().max(1)
    }
}

impl Default for Fixtures {
    fn default() -> Self {
        Fixtures::new()
    }
}

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// IR text: parse, and when it parses, verify it and check that it prints to text
/// that parses back to the same function.
pub fn tir_text(data: &[u8], _: &Fixtures) -> bool {
    let Ok(f) = tir::parse_function(&text(data)) else {
        return false;
    };
    {
        let _ = tir::verify(&f);
        let printed = tir::print_function(&f);
        match tir::parse_function(&printed) {
            Ok(g) => assert_eq!(
                tir::print_function(&g),
                printed,
                "printing is not stable after a round trip"
            ),
            Err(e) => panic!("printed IR does not parse back: {e}\n{printed}"),
        }
    }
    true
}

/// Workload spec strings: parse, and a parsed spec prints to a canonical string that
/// parses back to the same spec.
pub fn spec(data: &[u8], _: &Fixtures) -> bool {
    let Ok(s) = text(data).parse::<tir::WorkloadSpec>() else {
        return false;
    };
    let canon = s.to_string();
    match canon.parse::<tir::WorkloadSpec>() {
        Ok(t) => assert_eq!(t.to_string(), canon, "canonical spec is not stable"),
        Err(e) => panic!("canonical spec `{canon}` does not parse back: {e}"),
    }
    true
}

/// Rule files: parse; a parsed set also builds its egg rewrites.
pub fn rules(data: &[u8], _: &Fixtures) -> bool {
    let Ok(set) = tir::egraph::rules::RuleSet::parse(&text(data), "fuzz.rules") else {
        return false;
    };
    let _ = set.rewrites(tir::egraph::lang::Level::Index);
    let _ = set.counts_by_file();
    true
}

/// Trace JSON: parse, then replay on a workload (a bad trace must be an error).
pub fn trace_json(data: &[u8], fx: &Fixtures) -> bool {
    let Ok(t) = schedule::Trace::from_json(&text(data)) else {
        return false;
    };
    let _ = t.to_json();
    if let Some(w) = fx.workloads.get(fx.pick(data)) {
        let _ = t.replay(&w.func, &w.weights);
    }
    true
}

/// Database import files: read and validate every line, then merge what was read.
pub fn db_import(data: &[u8], _: &Fixtures) -> bool {
    let path = Path::new("fuzz.jsonl");
    // A small line cap so that long lines exercise the cap, not the allocator.
    let Ok(parsed) = tuning_logs::export::read_from(path, data, 1 << 16) else {
        return false;
    };
    let records: Vec<_> = parsed.records.into_iter().map(|(_, r)| r).collect();
    for r in &records {
        let _ = r.cost();
        let _ = r.trace_json();
    }
    let _ = tuning_logs::export::merge_records(records);
    parsed.bad.is_empty()
}

/// The `GRIM-TIMING` line of a measurement binary's standard output.
pub fn timing_output(data: &[u8], _: &Fixtures) -> bool {
    let Ok(t) = codegen::run::parse_timing(&text(data)) else {
        return false;
    };
    assert!(t.median.is_finite() && t.min >= 0.0, "accepted {t:?}");
    true
}

/// A measurement binary's output file: decode, then compare with the reference.
pub fn outputs_file(data: &[u8], fx: &Fixtures) -> bool {
    let i = usize::from(data.first().copied().unwrap_or(0)) % fx.workloads.len().max(1);
    let Some(w) = fx.workloads.get(i) else {
        return false;
    };
    let Ok(outs) = codegen::run::outputs_from_bytes(&w.func, data, "out.bin") else {
        return false;
    };
    let _ = codegen::run::max_error(&outs, &fx.reference[i]);
    true
}

/// Everything grim reads from adb and the device (`tuner::adb::parse`), each parser on
/// the same text: the device list, the identity probe, thermal readings, `get-state`,
/// and a candidate run's pid line, exit status and timing line. The first byte also
/// serves as an exit status. Checks what the callers rely on: listed devices have a
/// serial without whitespace and a state; the probed identity is valid for the
/// database (non-empty names, at least one core) with one frequency slot per core;
/// temperatures are finite.
pub fn adb_output(data: &[u8], _: &Fixtures) -> bool {
    use tuner::adb::parse;
    let t = text(data);
    let devices = parse::parse_devices(&t);
    for d in &devices {
        assert!(
            !d.serial.is_empty() && !d.serial.contains(char::is_whitespace),
            "bad serial {d:?}"
        );
        assert!(!d.state.is_empty(), "empty state {d:?}");
    }
    let p = parse::parse_probe(&t, "fuzz-serial");
    if let Err(e) = p.identity.validate() {
        panic!("probe gave an invalid identity {:?}: {e}", p.identity);
    }
    assert_eq!(p.max_khz.len(), p.cores.len());
    assert!(p.identity.model.chars().count() <= parse::MAX_PROP_CHARS);
    assert!(p.identity.abi.chars().count() <= parse::MAX_PROP_CHARS);
    let _ = p.identity.id_hex();
    let temp = parse::max_temperature_c(&t);
    if let Some(c) = temp {
        assert!(c.is_finite(), "temperature {c}");
    }
    let code = data.first().map(|b| i32::from(*b) - 128);
    let signal = data.get(1).filter(|b| **b < 32).map(|b| i32::from(*b));
    let state = parse::state_text(code, &t, &t);
    assert!(!state.is_empty());
    let status = parse::run_status(code, signal, &t);
    assert_eq!(status.is_ok(), code == Some(0));
    let pid = parse::parse_pid(&t);
    let timing = codegen::run::parse_timing(&t);
    !devices.is_empty()
        || p.identity.model != "unknown"
        || !p.cores.is_empty()
        || temp.is_some()
        || pid.is_some()
        || timing.is_ok()
}

/// Model files: the same bytes to the grim model-file parser, the ONNX importer, the
/// `.npz` reader and the PyTorch checkpoint reader; a model that loads is validated
/// again and (when it is a graph) exported to ONNX and imported back.
pub fn model_file(data: &[u8], _: &Fixtures) -> bool {
    let mut accepted = false;
    if let Ok(m) = model::file::from_bytes(data, "fuzz.bcr") {
        accepted = true;
        if let Err(e) = m.validate() {
            panic!("a loaded model does not validate: {e}");
        }
    }
    let opts = model::onnx::ImportOptions::default();
    if let Ok(m) = model::onnx::import_bytes(data, "fuzz.onnx", "fuzz", &opts) {
        accepted = true;
        if let Ok(p) = model::onnx::to_proto(&m) {
            let _ = p;
        }
    }
    if model::load::npz::from_bytes(data.to_vec(), "fuzz.npz").is_ok() {
        accepted = true;
    }
    if model::load::torch::state_dict_from_bytes(data.to_vec(), "fuzz.pth").is_ok() {
        accepted = true;
    }
    accepted
}
