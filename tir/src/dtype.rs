//! Element types of buffers and scalar types of expressions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The element type of a buffer.
///
/// `F32` holds weights, activations and BCR values; `I32` holds BCR index arrays
/// (block offsets, kept-row and kept-column indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 32-bit signed integer, used for index buffers.
    I32,
}

impl DType {
    /// The scalar type a load from a buffer of this element type produces.
    pub fn scalar(self) -> ScalarType {
        match self {
            DType::F32 => ScalarType::F32,
            DType::I32 => ScalarType::Int,
        }
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        4
    }

    /// The keyword used in the text format (`f32`, `i32`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of a scalar expression.
///
/// Index arithmetic is done in `Int` (64-bit in the interpreter; code generators pick
/// a width that fits the buffers), float arithmetic in `F32`, conditions in `Bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScalarType {
    /// Signed integer (indices, extents, loaded `i32` values).
    Int,
    /// 32-bit float.
    F32,
    /// Boolean (results of comparisons and logic).
    Bool,
}

impl ScalarType {
    /// The keyword used in the text format (`int`, `f32`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Int => "int",
            ScalarType::F32 => "f32",
            ScalarType::Bool => "bool",
        }
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
