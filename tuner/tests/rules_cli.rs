//! `grim-tune rules ...` as a user runs it: exit codes, output and error messages.

use std::path::PathBuf;
use std::process::Command;

fn grim_tune(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_grim-tune"))
        .args(args)
        .output()
        .expect("run grim-tune");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tir_rules(name: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "tir",
        "tests",
        "rules",
        name,
    ]
    .iter()
    .collect();
    p.display().to_string()
}

/// A file `name` holding `text` in a fresh temporary directory (removed when the
/// returned guard is dropped), and its path.
fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::Builder::new()
        .prefix("grim-rules-cli-")
        .tempdir()
        .unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    let path = p.display().to_string();
    (dir, path)
}

#[test]
fn check_passes_on_the_shipped_rules() {
    let (ok, out, err) = grim_tune(&["rules", "check"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("ok       add-zero (tir/rules/index.rules:10): 1000 bindings"));
    assert!(out.contains("ok       bcr-block (tir/rules/bcr.rules:"));
    assert!(out.contains("rules checked on 1000 random bindings each"));
    assert!(out.contains("0 unsound or vacuous"));
    assert!(out.contains("relative tolerance of 1e-4"));
}

#[test]
fn check_fails_with_counterexamples_on_unsound_rules() {
    let file = tir_rules("unsound.rules");
    let (ok, out, err) = grim_tune(&["rules", "check", &file]);
    assert!(!ok);
    assert_eq!(err.trim(), "grim-tune: error: 9 rule(s) unsound or vacuous");
    for name in [
        "bad-div-distrib",
        "bad-mod-small",
        "bad-mul-div",
        "bad-drop-cols",
        "bad-block-dup",
    ] {
        assert!(
            out.contains(&format!("UNSOUND  {name} ({file}:")),
            "{name}: {out}"
        );
    }
    assert!(out.contains("counterexample: ?a = "), "{out}");
    assert!(out.contains("left:  error (division by zero in "), "{out}");
}

#[test]
fn list_shows_every_rule_with_file_and_line() {
    let file = tir_rules("researcher.rules");
    let (ok, out, err) = grim_tune(&["rules", "list", "--rules", &file]);
    assert!(ok, "{err}");
    assert!(out.starts_with("66 rules (tir/rules/index.rules: 32, tir/rules/algebra.rules: 16, tir/rules/bcr.rules: 17, "));
    assert!(
        out.contains("tir/rules/index.rules:10  add-zero\n    # x + 0 == x\n    (+ ?a 0) => ?a\n")
    );
    assert!(out.contains(&format!("{file}:4  min-left-when-le")));
}

#[test]
fn explain_reports_fired_rules_and_costs() {
    let (ok, out, err) = grim_tune(&[
        "rules",
        "explain",
        "--workload",
        "bcr-conv2d:C=4,H=6,W=6,O=8,kh=1,kw=1,stride=1,pad=0,block=4x4,sparsity=0.5,seed=1",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("cost before:   ops 17 (div/mod 4), loads 10, weighted cost 109"),
        "{out}"
    );
    assert!(
        out.contains("cost after:    ops 11 (div/mod 0), loads 10, weighted cost 91"),
        "{out}"
    );
    assert!(out.contains("div-one x2"), "{out}");
    assert!(out.contains("interpreter outputs bit-identical"), "{out}");
    assert!(out.contains("stop reasons:  saturated x"), "{out}");
    let (ok, out, err) = grim_tune(&[
        "rules",
        "explain",
        "--workload",
        "bcr-fc:M=64,K=64,N=1,block=16x16,sparsity=0.9,seed=1",
        "--time-limit",
        "60",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "BCR compute form of W (times X): 16 blocks, 80 kept rows; start: per-row form"
        ),
        "{out}"
    );
    assert!(
        out.contains("cost before:   2992 (80 gathers of X rows)"),
        "{out}"
    );
    assert!(
        out.contains("cost after:    1840 (16 gathers of X rows)"),
        "{out}"
    );
    assert!(out.contains("start: masked dense matmul"), "{out}");
    assert!(
        out.contains("cost before:   8320 (0 gathers of X rows)"),
        "{out}"
    );
    assert!(out.contains("iteration limit (12) hit"), "{out}");
    assert!(out.contains("bcr-block x16"), "{out}");
    assert!(!out.contains("max relative difference inf"), "{out}");
    assert!(out.contains("share-gather x"), "{out}");
    assert!(
        out.contains("extracted term vs interpreter output: max relative difference"),
        "{out}"
    );
}

#[test]
fn explain_reports_a_hit_limit() {
    let (ok, out, err) = grim_tune(&[
        "rules",
        "explain",
        "--workload",
        "bcr-fc:M=16,K=16,N=1,block=4x4,sparsity=0.5,seed=1",
        "--node-limit",
        "20",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("node limit ("), "{out}");
    assert!(out.contains("WARNING: "), "{out}");
}

#[test]
fn bad_rule_files_are_errors_with_file_line_column() {
    let (_dir, f) = temp_file(
        "bad_op.rules",
        "# fine\nok: (+ ?a 0) => ?a\nbad: (frob ?a) => ?a\n",
    );
    let (ok, _, err) = grim_tune(&["rules", "check", &f]);
    assert!(!ok);
    assert!(
        err.starts_with(&format!(
            "grim-tune: error: {f}:3:7: unknown operator `frob`"
        )),
        "{err}"
    );

    let (_dir, f) = temp_file("unbound.rules", "x: (* ?a 1) => ?b\n");
    let (ok, _, err) = grim_tune(&["rules", "list", "--rules", &f]);
    assert!(!ok);
    assert_eq!(
        err.trim(),
        format!("grim-tune: error: {f}:1:16: variable `?b` on the right is not bound on the left")
    );

    let (_dir, f) = temp_file("cond.rules", "x: (/ ?a ?c) => 0 if (< ?a\n");
    let (ok, _, err) = grim_tune(&[
        "rules",
        "explain",
        "--workload",
        "fc:M=4,K=4,N=1,seed=1",
        "--rules",
        &f,
    ]);
    assert!(!ok);
    assert!(
        err.starts_with(&format!("grim-tune: error: {f}:1:22: unclosed `(`")),
        "{err}"
    );

    let (_dir, f) = temp_file("form.rules", "x (+ ?a 0) => ?a\n");
    let (ok, _, err) = grim_tune(&["rules", "check", &f]);
    assert!(!ok);
    assert!(
        err.contains(
            ":1:3: expected `:` after the rule name; expected form: NAME [approx]: LHS => RHS"
        ),
        "{err}"
    );

    let (ok, _, err) = grim_tune(&["rules", "check", "/nonexistent/x.rules"]);
    assert!(!ok);
    assert!(
        err.starts_with("grim-tune: error: cannot read rule file /nonexistent/x.rules"),
        "{err}"
    );
}
