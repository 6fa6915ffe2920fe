//! Timing rounds (`bench/run --rounds N`): the records of one case, system and thread
//! count from several rounds become one, the median of the rounds' medians, and a wrong
//! output in any round fails it.

use grim_bench::results::{combine_rounds, ResultRecord};

fn rec(case: &str, system: &str, median: f64, min: f64, ok: bool, note: &str) -> ResultRecord {
    ResultRecord {
        case: case.into(),
        system: system.into(),
        threads: 1,
        median_ms: ok.then_some(median),
        min_ms: ok.then_some(min),
        repeat: 15,
        number: 100,
        max_abs_diff: Some(if ok { median * 1e-6 } else { 0.5 }),
        ok,
        note: note.into(),
    }
}

#[test]
fn rounds_become_the_median_of_their_medians() {
    let out = combine_rounds(vec![
        rec("fc", "grim-bcr", 0.070, 0.066, true, "tuned"),
        rec("fc", "onnxruntime", 0.60, 0.58, true, ""),
        rec("fc", "grim-bcr", 0.110, 0.068, true, "tuned"),
        rec("fc", "onnxruntime", 0.90, 0.59, true, ""),
        rec("fc", "grim-bcr", 0.072, 0.065, true, "tuned"),
        rec("fc", "onnxruntime", 0.62, 0.57, true, ""),
        rec("gru", "grim-bcr", 0.004, 0.0038, true, "once"),
    ]);
    assert_eq!(out.len(), 3);
    // First-appearance order.
    let keys: Vec<(&str, &str)> = out
        .iter()
        .map(|r| (r.case.as_str(), r.system.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("fc", "grim-bcr"),
            ("fc", "onnxruntime"),
            ("gru", "grim-bcr")
        ]
    );
    let g = &out[0];
    assert_eq!(g.median_ms, Some(0.072));
    assert_eq!(g.min_ms, Some(0.065));
    assert_eq!(g.repeat, 45);
    assert!(g.ok);
    assert_eq!(
        g.note,
        "tuned; median of 3 timing rounds (0.0700 / 0.1100 / 0.0720 ms)"
    );
    assert_eq!(out[1].median_ms, Some(0.62));
    assert_eq!(
        out[1].note,
        "median of 3 timing rounds (0.6000 / 0.9000 / 0.6200 ms)"
    );
    // A key measured once is unchanged.
    assert_eq!(out[2], rec("gru", "grim-bcr", 0.004, 0.0038, true, "once"));
    // Two rounds: the mean of the two.
    let two = combine_rounds(vec![
        rec("fc", "csr-c", 1.0, 0.9, true, ""),
        rec("fc", "csr-c", 2.0, 0.8, true, ""),
    ]);
    assert_eq!(two[0].median_ms, Some(1.5));
    assert_eq!(two[0].min_ms, Some(0.8));
}

#[test]
fn a_wrong_output_in_any_round_fails_the_system() {
    let out = combine_rounds(vec![
        rec("fc", "mnn", 0.5, 0.4, true, ""),
        rec("fc", "mnn", 0.5, 0.4, false, "max|diff| 0.5"),
        rec("fc", "mnn", 0.5, 0.4, true, ""),
    ]);
    assert_eq!(out.len(), 1);
    assert!(!out[0].ok);
    assert_eq!(out[0].median_ms, None);
    assert_eq!(
        out[0].note,
        "max|diff| 0.5 (failed in timing round(s) 2 of 3)"
    );
    assert_eq!(out[0].max_abs_diff, Some(0.5));
}
