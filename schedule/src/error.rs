//! The error every schedule primitive and trace replay returns.

use tir::VerifyError;

/// Why a primitive could not be applied. A failed primitive leaves the schedule
/// unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// No loop has this name.
    #[error("{primitive}: no loop named `{loop_name}`")]
    NoSuchLoop {
        /// The primitive.
        primitive: &'static str,
        /// The name asked for.
        loop_name: String,
    },
    /// The function binds a loop name more than once, so loops cannot be addressed by
    /// name.
    #[error("loop name `{0}` is bound more than once; schedules address loops by unique names")]
    DuplicateLoopName(String),
    /// The primitive's preconditions do not hold.
    #[error("{primitive}: loop `{loop_name}`: {reason}")]
    Illegal {
        /// The primitive.
        primitive: &'static str,
        /// The loop (or buffer) at fault.
        loop_name: String,
        /// Why.
        reason: String,
    },
    /// The function is not well formed (before scheduling, or after a primitive, which
    /// is a bug in the primitive and reported rather than hidden).
    #[error("function is not well formed: {0}")]
    Verify(#[from] VerifyError),
    /// A trace instruction failed during replay.
    #[error("trace instruction {index} ({op}): {source}")]
    Replay {
        /// Position in the trace.
        index: usize,
        /// The instruction's name.
        op: String,
        /// What went wrong.
        source: Box<ScheduleError>,
    },
    /// A trace does not parse.
    #[error("trace JSON: {0}")]
    TraceFormat(String),
}

impl ScheduleError {
    /// An [`ScheduleError::Illegal`] error.
    pub fn illegal(primitive: &'static str, loop_name: &str, reason: impl Into<String>) -> Self {
        ScheduleError::Illegal {
            primitive,
            loop_name: loop_name.to_string(),
            reason: reason.into(),
        }
    }
}
