//! Functions: the unit the compiler schedules, generates code for and tunes.

use crate::dtype::DType;
use crate::stmt::Stmt;
use serde::{Deserialize, Serialize};

/// What a function parameter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ParamKind {
    /// Read-only activation input (changes from call to call).
    Input,
    /// Written by the function. Outputs are zero-initialised by callers.
    Output,
    /// Read-only constant data fixed by the workload: dense weights, biases, BCR values
    /// and BCR index arrays. Code generators may bake weights into the binary.
    Weight,
}

impl ParamKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ParamKind; 3] = [ParamKind::Input, ParamKind::Output, ParamKind::Weight];

    /// The keyword used in the text format (`in`, `out`, `weight`).
    pub fn name(self) -> &'static str {
        match self {
            ParamKind::Input => "in",
            ParamKind::Output => "out",
            ParamKind::Weight => "weight",
        }
    }

    /// Looks a kind up by its keyword.
    pub fn from_name(name: &str) -> Option<ParamKind> {
        ParamKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A buffer parameter of a function: a dense row-major array.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Param {
    /// Name used by loads and stores.
    pub name: String,
    /// Role of the buffer.
    pub kind: ParamKind,
    /// Element type.
    pub dtype: DType,
    /// Shape; a dimension may be 0 (an empty index or value array).
    pub shape: Vec<usize>,
}

impl Param {
    /// A parameter.
    pub fn new(name: impl Into<String>, kind: ParamKind, dtype: DType, shape: Vec<usize>) -> Self {
        Param {
            name: name.into(),
            kind,
            dtype,
            shape,
        }
    }

    /// Number of elements (product of the shape).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the buffer holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A function of the loop-level IR: named buffer parameters and a body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// Name (not part of the workload key).
    pub name: String,
    /// Buffer parameters, in calling order.
    pub params: Vec<Param>,
    /// Body.
    pub body: Stmt,
}

impl Function {
    /// Looks a parameter up by name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}
