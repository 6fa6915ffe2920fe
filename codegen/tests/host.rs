//! Generated C for the host, compiled with `-Wall -Werror` and run natively, equals
//! the interpreter on the corpus.

mod corpus;

use codegen::toolchain::Runner;
use codegen::Target;

#[test]
fn corpus_on_host() {
    let names = corpus::check_corpus(&Target::Host, &Runner::Native, 1e-4);
    assert_eq!(names.len(), corpus::corpus().len());
}
