//! Generated NEON C for aarch64, cross-compiled statically with `-Wall -Werror` and run
//! under `qemu-aarch64 -cpu cortex-a76`, equals the interpreter on the corpus.

mod corpus;

use codegen::toolchain::Runner;
use codegen::Target;

#[test]
fn corpus_on_aarch64_under_qemu() {
    let target = Target::Aarch64Neon {
        mcpu: "cortex-a76".into(),
    };
    let names = corpus::check_corpus(
        &target,
        &Runner::Qemu {
            cpu: "cortex-a76".into(),
        },
        1e-4,
    );
    assert_eq!(names.len(), corpus::corpus().len());
}
