//! Golden IR of a fully scheduled BCR FC: row reordering, load-redundancy
//! elimination, split + vectorize of the output columns, tail split + unroll of the
//! kept rows. Checked against the interpreter, replayed from JSON, and compared with
//! `tests/golden/bcr_fc_full.tir` (regenerate with `GRIM_BLESS=1 cargo test -p schedule
//! --test golden_full` and review the diff).

mod common;

use schedule::{Remainder, RowOrder, Schedule, Trace};
use tir::print_function;
use tir::workload::Workload;

#[test]
fn fully_scheduled_bcr_fc() {
    let w = Workload::from_spec_str(
        "bcr-fc:M=32,K=32,N=8,block=8x8,sparsity=0.75,bias=1,act=relu,seed=1",
    )
    .unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    let groups = s.reorder_rows("W", RowOrder::BlockColumn).unwrap();
    assert!(groups.after <= groups.before);
    s.eliminate_redundant_loads("W").unwrap();
    s.split("n", &[None, Some(4)], Remainder::Exact).unwrap();
    s.vectorize("n_1").unwrap();
    let rows = s.split("i", &[None, Some(2)], Remainder::Tail).unwrap();
    s.unroll(&rows[1]).unwrap();
    s.parallel("init_m").unwrap();

    // Same results as the lowered function.
    common::assert_close_seed(&w, &s, 3);

    // Replay from JSON gives the same function and weights.
    let t = Trace::from_json(&s.trace().to_json()).unwrap();
    let r = t.replay(&w.func, &w.weights).unwrap();
    assert_eq!(r.func(), s.func());
    assert_eq!(r.weights(), s.weights());

    let text = format!(
        "# {}\n# trace: {}\n{}",
        w.spec,
        s.trace().to_json(),
        print_function(s.func())
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/bcr_fc_full.tir");
    if std::env::var_os("GRIM_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).expect("golden file (GRIM_BLESS=1 to create)");
    assert_eq!(golden, text, "golden IR differs (GRIM_BLESS=1 to accept)");
    assert!(
        text.contains("vectorized for (n_1, 0, 4)") && text.contains("unrolled for"),
        "{text}"
    );
}
