//! The models section of the report: every `model:` record in a table, and one ratio
//! line per model's BCR row over grim's dense model and over the fastest dense
//! framework that ran the same dense model correctly at the same thread count.

use grim_bench::report::{self, Table};
use grim_bench::results::ResultRecord;
use std::path::Path;

fn rec(case: &str, system: &str, threads: u32, ms: Option<f64>, ok: bool) -> ResultRecord {
    ResultRecord {
        case: case.to_string(),
        system: system.to_string(),
        threads,
        median_ms: ms,
        min_ms: ms,
        repeat: 15,
        number: 8,
        max_abs_diff: Some(1e-5),
        ok,
        note: format!("{system} note"),
    }
}

#[test]
fn model_rows_get_ratios_over_grim_dense_and_the_fastest_framework() {
    let recs = vec![
        rec("model:cnn:dense", "grim", 1, Some(2.0), true),
        rec("model:cnn:bcr", "grim", 1, Some(0.25), true),
        rec("model:cnn:dense", "onnxruntime", 1, Some(0.5), true),
        rec("model:cnn:dense", "mnn", 1, Some(0.4), true),
        // Faster but wrong: never the fastest framework.
        rec("model:cnn:dense", "tract", 1, Some(0.1), false),
        // Another thread count does not count for the 1-thread row.
        rec("model:cnn:dense", "litert", 2, Some(0.05), true),
        // A model without framework rows.
        rec("model:rnn:dense", "grim", 1, Some(1.0), true),
        rec("model:rnn:bcr", "grim", 1, Some(0.5), true),
    ];
    let t = Table::new(Path::new("/nonexistent"), &[], recs).expect("table");
    let md = report::models_markdown(&t);
    assert!(
        md.contains("| model:cnn:dense | mnn | 1 | 0.4000 | yes | mnn note |"),
        "{md}"
    );
    assert!(
        md.contains("| model:cnn:dense | tract | 1 | 0.1000 | no |"),
        "{md}"
    );
    let lines = report::model_ratio_lines(&t);
    assert_eq!(
        lines,
        "- cnn, 1 thread(s): grim BCR 0.2500 ms, 8.00x over grim's dense model (2.00 ms); 1.60x over the fastest dense framework (mnn 0.4000 ms).\n\
         - rnn, 1 thread(s): grim BCR 0.5000 ms, 2.00x over grim's dense model (1.00 ms); no dense framework ran this model.\n"
    );
    assert!(md.ends_with(&lines), "{md}");
}

#[test]
fn no_model_rows_no_section() {
    let t = Table::new(
        Path::new("/nonexistent"),
        &[],
        vec![rec("fc-dense", "grim-dense", 1, Some(1.0), true)],
    )
    .expect("table");
    assert_eq!(report::models_markdown(&t), "");
    assert_eq!(report::model_ratio_lines(&t), "");
}
