//! Column-decoding tables in generated C: a register-tiled conv whose kept columns are
//! decoded once per entry into an `i32` table builds for the host, runs natively and
//! gives the interpreter's outputs; the tile's loop reads the table and does not divide.

mod native;

use codegen::harness::{measurement_source, Candidate};
use codegen::Target;
use schedule::Schedule;
use tir::workload::Workload;

#[test]
fn a_tiled_conv_with_a_decoding_table_matches_the_interpreter() {
    let spec = "bcr-conv2d:C=16,O=32,H=20,W=20,k=3,pad=1,bias=1,block=16x16,sparsity=0.8,seed=9";
    let w = Workload::from_spec_str(spec).unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.register_tile("W", 4, 16).unwrap();
    s.tabulate_column_decoding("W").unwrap();
    s.specialize_offsets("W").unwrap();
    let f = s.func();
    let src = measurement_source(&[Candidate { func: f }], &Target::Host).unwrap();
    // The table on the stack, filled by plain division of the (non-negative) column.
    assert!(src.contains("int32_t b_coldec["), "{src}");
    assert!(src.contains("(v_col_dec / 9LL)"), "{src}");
    assert!(!src.contains("(v_col / 9LL)"), "{src}");
    let mut args = w.random_inputs(11);
    args.extend(s.weights().clone());
    let (got, want) = native::run_and_interpret(f, &src, &args);
    for (name, t) in &want {
        if f.param(name)
            .is_some_and(|p| p.kind == tir::ParamKind::Output)
        {
            let (g, e) = (got[name].as_f32().unwrap(), t.as_f32().unwrap());
            assert_eq!(g.len(), e.len());
            for (a, b) in g.iter().zip(e) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{name}: {a} vs {b}"
                );
            }
        }
    }
    // And the interpreter's run of the scheduled function is the workload's reference.
    let reference = w.interpret(&w.random_inputs(11)).unwrap();
    for (name, t) in &reference {
        for (a, b) in want[name].as_f32().unwrap().iter().zip(t.as_f32().unwrap()) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
}
