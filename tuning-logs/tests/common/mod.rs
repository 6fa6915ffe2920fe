//! Record builders shared by the integration tests.
#![allow(dead_code)]

use schedule::{Instruction, Trace};
use tuning_logs::{
    DeviceIdentity, ErrorKind, Failure, Measurement, Outcome, Record, Target, WorkloadRef,
};

/// A workload reference with a made-up key (records need not be built from a real
/// workload for database tests).
pub fn workload(n: u64) -> WorkloadRef {
    WorkloadRef {
        structure: format!("{:016x}", 0xa000 + n),
        pattern: format!("{:016x}", 0xb000 + n),
        spec: format!("fc:M={},K=8,N=1,bias=0,act=none,seed=0", 8 + n),
    }
}

/// A device by model name.
pub fn device(model: &str) -> DeviceIdentity {
    DeviceIdentity {
        model: model.into(),
        soc: "Tensor G2".into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: None,
        serial: Some(format!("{model}-serial")),
    }
}

/// The ARM target.
pub fn a76() -> Target {
    Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
        threads: None,
    }
}

/// A trace distinguished by `tag` (empty for tag 0: the default schedule).
pub fn trace(tag: i64) -> Trace {
    let mut t = Trace::new();
    if tag != 0 {
        t.instructions.push(Instruction::SampleCategorical {
            candidates: vec![tag, tag + 1],
            probs: vec![0.25, 0.75],
            decision: 1,
        });
    }
    t
}

/// Times with a given median.
pub fn measured(median_s: f64) -> Outcome {
    Outcome::Measured(Measurement {
        median_s,
        min_s: median_s * 0.5,
        mean_s: median_s * 1.1,
        stddev_s: median_s / 3.0,
        number: 10,
        repeat: 3,
        instructions: None,
    })
}

/// A failure.
pub fn failed(kind: ErrorKind) -> Outcome {
    Outcome::Error(Failure {
        kind,
        message: "cc: error: \"x\" undeclared\n\tat line 3".into(),
    })
}

/// A record with a fixed time (so files are reproducible).
pub fn record(w: u64, target: Target, dev: &DeviceIdentity, tag: i64, result: Outcome) -> Record {
    let mut r = Record::new(workload(w), target, dev.clone(), trace(tag), result);
    r.time_unix_ms = 1_700_000_000_000 + tag as u64;
    r
}
