//! The benchmark's plumbing on small layers (what `bench/run --quick` relies on, in a
//! few seconds and with nothing beyond `scripts/test`'s packages): the exported
//! reference agrees with grim's interpreter, grim's rows and the C CSR kernel build,
//! run and match the reference, and the report, CSV and SVG figures are written.

use grim_bench::ceilings::{Ceilings, ReadCeiling};
use grim_bench::export::{export_case, read_f32, transpose, Layer};
use grim_bench::plan::Case;
use grim_bench::protocol::Protocol;
use grim_bench::report::{self, Table};
use grim_bench::results::{self, ResultRecord};
use grim_bench::{csr_c, grim_run, plot};
use std::path::Path;
use tir::workload::Workload;

fn case(
    id: &str,
    family: &str,
    spec: &str,
    dense: &str,
    s: f64,
    b: Option<(usize, usize)>,
) -> Case {
    Case {
        id: id.into(),
        family: family.into(),
        spec: spec.into(),
        dense_spec: dense.into(),
        sparsity: s,
        block: b,
    }
}

fn small_cases() -> Vec<Case> {
    vec![
        case(
            "fc-dense",
            "fc",
            "fc:M=48,K=64,N=3,seed=1",
            "fc:M=48,K=64,N=3,seed=1",
            0.0,
            None,
        ),
        case(
            "fc-s75-b16x16",
            "fc",
            "bcr-fc:M=48,K=64,N=3,block=16x16,sparsity=0.75,seed=1",
            "fc:M=48,K=64,N=3,seed=1",
            0.75,
            Some((16, 16)),
        ),
        case(
            "conv-s50-b8x8",
            "conv",
            "bcr-conv2d:C=4,O=8,H=6,W=5,k=3,stride=1,pad=1,block=8x8,sparsity=0.5,seed=1",
            "conv2d:C=4,O=8,H=6,W=5,k=3,stride=1,pad=1,seed=1",
            0.5,
            Some((8, 8)),
        ),
        case(
            "gru-s75-b8x8",
            "gru",
            "bcr-gru:hidden=16,input=8,batch=1,block=8x8,sparsity=0.75,seed=1",
            "gru:hidden=16,input=8,batch=1,seed=1",
            0.75,
            Some((8, 8)),
        ),
    ]
}

/// The exported reference output equals grim's interpreter on the same workload.
fn check_reference(c: &Case, dir: &Path) {
    let meta = export_case(c, dir).expect("export");
    let want = read_f32(&dir.join("y_ref.f32")).expect("y_ref");
    let w = Workload::from_spec_str(&c.spec).expect("workload");
    let out = w.interpret(&w.random_inputs(1)).expect("interpreter");
    let got = match meta.layer {
        Layer::Fc { m, n, .. } => transpose(out["Y"].as_f32().expect("f32"), m, n),
        Layer::Conv { .. } => out["Y"].as_f32().expect("f32").to_vec(),
        Layer::Gru { .. } => out["h_next"].as_f32().expect("f32").to_vec(),
    };
    let d = grim_bench::reference::max_abs_diff(&got, &want);
    assert!(
        d < 1e-5,
        "{}: reference differs from the interpreter by {d}",
        c.id
    );
    if !c.is_dense() {
        assert!(
            meta.stats.nonzeros < meta.stats.weights,
            "{}: not pruned",
            c.id
        );
        assert!(meta.stats.bcr_values >= meta.stats.nonzeros);
    }
}

#[test]
fn export_grim_csr_and_report_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cases_dir = tmp.path().join("cases");
    let cs = small_cases();
    for c in &cs {
        check_reference(c, &cases_dir.join(&c.id));
    }
    let ids: Vec<String> = cs.iter().map(|c| c.id.clone()).collect();
    std::fs::write(
        cases_dir.join("plan.json"),
        serde_json::to_string(&ids).expect("json"),
    )
    .expect("plan");

    // grim (no tuning records: default schedules, said so) and the C CSR kernel.
    let protocol = Protocol {
        repeat: 3,
        min_sample_ms: 1.0,
        timeout_s: 60,
    };
    let db = tuning_logs::Database::open(&tmp.path().join("db")).expect("db");
    let csr = csr_c::build(&tmp.path().join("csr-build")).expect("csr build");
    let raw = tmp.path().join("raw");
    for c in &cs {
        let dir = cases_dir.join(&c.id);
        let g = grim_run::measure_case(&db, &dir, &[1], &protocol).expect("grim");
        let systems: Vec<&str> = g.iter().map(|r| r.system.as_str()).collect();
        if c.is_dense() {
            assert_eq!(systems, ["grim-dense"]);
        } else {
            assert_eq!(systems, ["grim-bcr", "grim-bcr-default", "grim-dense"]);
        }
        for r in &g {
            assert!(r.ok, "{} {}: {}", c.id, r.system, r.note);
            assert!(r.median_ms.is_some_and(|v| v > 0.0));
            assert!(r.note.contains("UNTUNED") || r.system == "grim-bcr-default");
        }
        results::append(&raw.join("grim.jsonl"), &g).expect("append");
        let k = csr_c::measure_case(&csr, &dir, &[1], &protocol).expect("csr");
        assert!(k.iter().all(|r| r.ok), "{}: {:?}", c.id, k);
        // The plain BCR loop runs the BCR FC case, checked against the reference.
        let systems: Vec<&str> = k.iter().map(|r| r.system.as_str()).collect();
        if c.family == "fc" && !c.is_dense() {
            assert_eq!(systems, ["csr-c", "bcr-c"]);
            assert!(k[1].max_abs_diff.is_some_and(|d| d < 1e-4), "{:?}", k[1]);
        } else {
            assert_eq!(systems, ["csr-c"]);
        }
        results::append(&raw.join("csr-c.jsonl"), &k).expect("append");
    }

    // Everything recorded is read back: grim dense + CSR on the dense case, grim's
    // three rows + CSR on each of the three sparse cases, and the BCR loop on the FC.
    let recs: Vec<ResultRecord> = results::read_all(&raw).expect("read");
    assert_eq!(recs.len(), 2 + 3 * 4 + 1);

    let t = Table::new(&cases_dir, &ids, recs).expect("table");
    let md = report::markdown_table(&t, 1);
    assert!(md.contains("| fc | 75% | 16x16 |"), "{md}");
    assert!(md.contains("C CSR") && md.contains("C BCR loop"), "{md}");
    // Every sparse row has grim BCR in bold and a ratio for C CSR.
    for line in md
        .lines()
        .filter(|l| l.contains("x8 |") || l.contains("16x16 |"))
    {
        assert!(line.contains("**"), "{line}");
        assert!(line.contains("x)"), "{line}");
    }
    let csv = report::csv(&t);
    assert_eq!(csv.lines().count(), 1 + 1 + 3 * 3 + 4 + 1);
    let roof = report::roofline_markdown(&t, 1, None);
    assert!(roof.contains("fc-s75-b16x16"), "{roof}");
    assert!(roof.contains("No measured ceilings"), "{roof}");
    // With ceilings, the bound is the longer of the kept multiply-adds at the peak and
    // the kept values read at the case's bandwidth: here 1 GFLOP/s and 1 GB/s, so
    // compute decides (2 flops per multiply-add against 4 bytes per value, times the
    // layer's reuse of each weight).
    let sparse = t
        .cases
        .iter()
        .find(|c| c.case.id == "fc-s75-b16x16")
        .expect("case");
    let ms = t.ms("fc-s75-b16x16", "grim-bcr", 1).expect("timed");
    let c = Ceilings {
        threads: 1,
        fma_gflops: 1.0,
        read: vec![ReadCeiling {
            label: "fc-s75-b16x16".into(),
            bytes: 4 * sparse.stats.bcr_values,
            gbs: 1.0,
        }],
        measured_utc: "2026-11-30 21:09".into(),
    };
    let roof = report::roofline_markdown(&t, 1, Some(&c));
    assert!(roof.contains("multiply-add peak 1.0 GFLOP/s"), "{roof}");
    let values = sparse.stats.bcr_values as f64;
    let bound_ms = (2.0 * values * sparse.layer.reuse() as f64).max(4.0 * values) / 1e9 * 1e3;
    let row = roof
        .lines()
        .find(|l| l.starts_with("| fc-s75-b16x16 |"))
        .expect("row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[9], "1.0", "{row}");
    let shown: f64 = cells[11].parse().expect("bound");
    assert!(
        (shown - bound_ms).abs() <= 1e-4 * bound_ms.max(1.0),
        "{row}: {bound_ms}"
    );
    assert_eq!(cells[12], format!("{:.0}%", 100.0 * bound_ms / ms), "{row}");
    let svg = tmp.path().join("speedup.svg");
    plot::speedup_vs_sparsity(&t, 1, &svg).expect("plot");
    plot::latency_per_system(&t, 1, &tmp.path().join("latency.svg")).expect("plot");
    let text = std::fs::read_to_string(&svg).expect("svg");
    assert!(text.starts_with("<svg"), "not an SVG");
}

#[test]
fn a_bad_result_line_is_an_error_naming_file_and_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("x.jsonl");
    std::fs::write(
        &p,
        "{\"case\":\"a\",\"system\":\"b\",\"threads\":1}\nnot json\n",
    )
    .expect("write");
    let e = results::read_all(tmp.path()).expect_err("must fail");
    assert!(e.to_string().contains("x.jsonl:2"), "{e}");
}

/// The BCR arrays of the plain loop hold exactly the matrix's non-zeros, block by
/// block (partial edge blocks included).
#[test]
fn bcr_arrays_of_the_plain_loop_rebuild_the_matrix() {
    let (rows, cols) = (11, 9);
    let m: Vec<f32> = (0..rows * cols)
        .map(|i| {
            if (i * 7) % 5 < 2 {
                0.0
            } else {
                i as f32 - 40.0
            }
        })
        .collect();
    let csr_c::BcrArrays {
        row_ptr: rp,
        rows: ri,
        col_ptr: cp,
        cols: ci,
        values: v,
    } = csr_c::to_bcr(&m, rows, cols, (4, 4));
    assert_eq!(rp.len(), 3 * 3 + 1, "every block of the 3x3 grid");
    let mut back = vec![0.0f32; rows * cols];
    let mut at = 0;
    for b in 0..rp.len() - 1 {
        let (rs, cs) = (
            &ri[rp[b] as usize..rp[b + 1] as usize],
            &ci[cp[b] as usize..cp[b + 1] as usize],
        );
        for &r in rs {
            for &c in cs {
                back[r as usize * cols + c as usize] = v[at];
                at += 1;
            }
        }
    }
    assert_eq!(at, v.len());
    assert_eq!(back, m);
}
