//! Host tensors: the data bound to a function's buffers when it is interpreted or run.

use crate::dtype::DType;
use serde::{Deserialize, Serialize};

/// The elements of a tensor, by element type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TensorData {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `i32` elements.
    I32(Vec<i32>),
    /// `u8` elements.
    U8(Vec<u8>),
}

/// A dense row-major host tensor.
///
/// Invariant kept by the constructors: `data` holds exactly `shape.iter().product()`
/// elements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tensor {
    shape: Vec<usize>,
    data: TensorData,
}

/// The error returned when a tensor's data does not fit its shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tensor of shape {shape:?} needs {expected} elements, got {actual}")]
pub struct ShapeMismatch {
    /// The requested shape.
    pub shape: Vec<usize>,
    /// Elements the shape needs.
    pub expected: usize,
    /// Elements supplied.
    pub actual: usize,
}

impl Tensor {
    /// A tensor from its shape and data; fails when the sizes disagree.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor, ShapeMismatch> {
        let expected: usize = shape.iter().product();
        let actual = match &data {
            TensorData::F32(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::U8(v) => v.len(),
        };
        if expected != actual {
            return Err(ShapeMismatch {
                shape,
                expected,
                actual,
            });
        }
        Ok(Tensor { shape, data })
    }

    /// An `f32` tensor.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, TensorData::F32(data))
    }

    /// An `i32` tensor.
    pub fn i32(shape: Vec<usize>, data: Vec<i32>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, TensorData::I32(data))
    }

    /// A `u8` tensor.
    pub fn u8(shape: Vec<usize>, data: Vec<u8>) -> Result<Tensor, ShapeMismatch> {
        Tensor::new(shape, TensorData::U8(data))
    }

    /// A tensor of `dtype` and `shape` from little-endian bytes in the layout of
    /// [`Tensor::to_le_bytes`]; fails when the bytes do not hold exactly the shape's
    /// elements.
    pub fn from_le_bytes(
        dtype: DType,
        shape: Vec<usize>,
        bytes: &[u8],
    ) -> Result<Tensor, ShapeMismatch> {
        let expected: usize = shape.iter().product();
        if bytes.len() != expected * dtype.size_bytes() {
            return Err(ShapeMismatch {
                shape,
                expected,
                actual: bytes.len() / dtype.size_bytes(),
            });
        }
        let words = || bytes.chunks_exact(4).map(|b| [b[0], b[1], b[2], b[3]]);
        let data = match dtype {
            DType::F32 => TensorData::F32(words().map(f32::from_le_bytes).collect()),
            DType::I32 => TensorData::I32(words().map(i32::from_le_bytes).collect()),
            DType::U8 => TensorData::U8(bytes.to_vec()),
        };
        Tensor::new(shape, data)
    }

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        let data = match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
        };
        Tensor { shape, data }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I32(_) => DType::I32,
            TensorData::U8(_) => DType::U8,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor holds no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The address of the first element, whatever the element type: what a caller of
    /// generated code passes for a buffer of this tensor's type and length (the C side
    /// reads `len()` elements of `dtype()` from it).
    pub fn as_raw_ptr(&self) -> *const std::ffi::c_void {
        match &self.data {
            TensorData::F32(v) => v.as_ptr().cast(),
            TensorData::I32(v) => v.as_ptr().cast(),
            TensorData::U8(v) => v.as_ptr().cast(),
        }
    }

    /// The data, mutable (the length cannot change through this).
    pub fn data_mut(&mut self) -> TensorDataMut<'_> {
        match &mut self.data {
            TensorData::F32(v) => TensorDataMut::F32(v.as_mut_slice()),
            TensorData::I32(v) => TensorDataMut::I32(v.as_mut_slice()),
            TensorData::U8(v) => TensorDataMut::U8(v.as_mut_slice()),
        }
    }

    /// The elements as `f32`, or `None` for an integer tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            TensorData::I32(_) | TensorData::U8(_) => None,
        }
    }

    /// The elements as `i32`, or `None` for an `f32` or `u8` tensor.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Some(v),
            TensorData::F32(_) | TensorData::U8(_) => None,
        }
    }

    /// The elements as `u8`, or `None` for an `f32` or `i32` tensor.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match &self.data {
            TensorData::U8(v) => Some(v),
            TensorData::F32(_) | TensorData::I32(_) => None,
        }
    }

    /// The elements of an integer tensor (`i32` or `u8`) as `i64`, or `None` for an
    /// `f32` tensor.
    pub fn ints(&self) -> Option<Vec<i64>> {
        match &self.data {
            TensorData::I32(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            TensorData::U8(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            TensorData::F32(_) => None,
        }
    }

    /// The elements as little-endian bytes, in the layout generated code reads (4
    /// bytes per `f32`/`i32`, 1 per `u8`).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U8(v) => v.clone(),
        }
    }
}

/// Mutable view of a tensor's elements.
#[derive(Debug)]
pub enum TensorDataMut<'a> {
    /// `f32` elements.
    F32(&'a mut [f32]),
    /// `i32` elements.
    I32(&'a mut [i32]),
    /// `u8` elements.
    U8(&'a mut [u8]),
}
