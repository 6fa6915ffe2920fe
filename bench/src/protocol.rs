//! The timing protocol every system follows: one call whose output is checked, one
//! warm-up call, then `number` (doubled until one sample lasts `min_sample_ms`) calls
//! per sample, `repeat` samples, and the median of the per-call times. It is the
//! protocol of grim's measurement binary (`codegen::harness`); the Python baselines
//! and tract implement the same loop.

use serde::{Deserialize, Serialize};

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Samples.
    pub repeat: u64,
    /// Minimum duration of one sample, milliseconds.
    pub min_sample_ms: f64,
    /// Wall-clock limit of one measurement, seconds.
    pub timeout_s: u64,
}

impl Protocol {
    /// The full benchmark's protocol.
    pub fn full() -> Protocol {
        Protocol {
            repeat: 15,
            min_sample_ms: 20.0,
            timeout_s: 300,
        }
    }

    /// The quick smoke run's protocol.
    pub fn quick() -> Protocol {
        Protocol {
            repeat: 5,
            min_sample_ms: 5.0,
            timeout_s: 120,
        }
    }
}

/// Median of a non-empty sample (mean of the middle two for even sizes).
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    })
}
