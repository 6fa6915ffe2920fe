//! Code generation and build errors.

/// What went wrong generating, building or running a kernel.
#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The scheduled function uses something this backend cannot express.
    #[error("codegen: loop `{loop_name}`: {reason}")]
    Unsupported {
        /// The loop (or buffer) at fault.
        loop_name: String,
        /// Why.
        reason: String,
    },
    /// The function is not well formed.
    #[error("codegen: {0}")]
    Verify(#[from] tir::VerifyError),
    /// A required program is not installed.
    #[error("`{program}` not found: install the Debian package `{package}`")]
    MissingTool {
        /// The program.
        program: String,
        /// The package that provides it.
        package: String,
    },
    /// The compiler rejected the generated code.
    #[error("build failed ({program} exited with {status}):\n{stderr}")]
    BuildFailed {
        /// The compiler.
        program: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        stderr: String,
    },
    /// The compiler did not finish in time.
    #[error("build timed out after {0:?}")]
    BuildTimeout(std::time::Duration),
    /// The kernel binary failed.
    #[error("run failed: {0}")]
    RunFailed(String),
    /// The kernel binary did not finish in time.
    #[error("run timed out after {0:?}")]
    RunTimeout(std::time::Duration),
    /// The kernel's output files are malformed.
    #[error("bad output from kernel binary: {0}")]
    BadOutput(String),
    /// Arguments do not match the function's parameters.
    #[error("argument `{name}`: {reason}")]
    BadArgument {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}
