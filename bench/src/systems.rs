//! The systems of the benchmark, in table order, with what they are.

/// A benchmarked system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct System {
    /// Id used in result records.
    pub id: &'static str,
    /// Column title.
    pub title: &'static str,
    /// A dense framework (candidates for "the fastest dense framework").
    pub dense_framework: bool,
    /// A CSR kernel.
    pub csr: bool,
}

const fn sys(id: &'static str, title: &'static str, dense_framework: bool, csr: bool) -> System {
    System {
        id,
        title,
        dense_framework,
        csr,
    }
}

/// Every system, in the order of the tables.
pub const SYSTEMS: &[System] = &[
    sys("grim-bcr", "grim BCR", false, false),
    sys("grim-bcr-default", "grim BCR untuned", false, false),
    sys("grim-dense", "grim dense", false, false),
    sys("onnxruntime", "ONNX Runtime", true, false),
    sys("mnn", "MNN", true, false),
    sys("litert", "LiteRT", true, false),
    sys("tract", "tract", true, false),
    sys("tvm", "TVM", true, false),
    sys("litert-sparse", "LiteRT sparse FC 1x4", false, false),
    sys("litert-csr", "LiteRT sparse FC CSR", false, false),
    sys("mnn-sparse", "MNN sparse", false, false),
    sys("csr-scipy", "scipy CSR", false, true),
    sys("csr-c", "C CSR", false, true),
    sys("bcr-c", "C BCR loop", false, false),
];

/// The system with this id.
pub fn system(id: &str) -> Option<&'static System> {
    SYSTEMS.iter().find(|s| s.id == id)
}
