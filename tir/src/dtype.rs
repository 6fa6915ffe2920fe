//! Element types of buffers and scalar types of expressions.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The element type of a buffer.
///
/// `F32` holds weights, activations and BCR values; `I32` holds BCR index arrays
/// (block offsets, kept-row and kept-column indices); `U8` holds small index arrays
/// whose values fit a byte (block-row window selectors), a quarter of the bytes of
/// `I32` to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 32-bit signed integer, used for index buffers.
    I32,
    /// 8-bit unsigned integer (0 to 255), for index buffers of small values. Loads
    /// give `Int`; a store keeps the value modulo 256 (as C's `uint8_t` does).
    U8,
}

impl DType {
    /// The scalar type a load from a buffer of this element type produces.
    pub fn scalar(self) -> ScalarType {
        match self {
            DType::F32 => ScalarType::F32,
            DType::I32 | DType::U8 => ScalarType::Int,
        }
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::U8 => 1,
        }
    }

    /// The keyword used in the text format (`f32`, `i32`, `u8`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
            DType::U8 => "u8",
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
