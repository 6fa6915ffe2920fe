//! ONNX tensors (initializers, constants, test data) to and from plain arrays, with
//! every declared size checked against the bytes actually present before anything is
//! allocated.

use super::proto::{data_type, TensorProto};
use crate::array::Array;

/// Largest number of elements accepted in one tensor (the `tir` limit).
pub const MAX_ELEMENTS: usize = tir::spec::MAX_ELEMENTS;

/// The values of a decoded tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// FLOAT (and DOUBLE, narrowed) elements.
    F32(Vec<f32>),
    /// INT64 (and INT32, widened) elements.
    I64(Vec<i64>),
}

/// A decoded tensor: its shape and values (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The shape (`[]` for a scalar).
    pub shape: Vec<usize>,
    /// The values.
    pub values: Values,
}

impl Tensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::F32(v) => v.len(),
            Values::I64(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The float values, or an error saying the tensor holds integers.
    pub fn floats(&self) -> Result<&[f32], String> {
        match &self.values {
            Values::F32(v) => Ok(v),
            Values::I64(_) => Err("holds integers where floats are expected".to_string()),
        }
    }

    /// The integer values, or an error saying the tensor holds floats.
    pub fn ints(&self) -> Result<&[i64], String> {
        match &self.values {
            Values::I64(v) => Ok(v),
            Values::F32(_) => Err("holds floats where integers are expected".to_string()),
        }
    }

    /// The tensor as a float [`Array`] (a scalar becomes shape `[1]`).
    pub fn to_array(&self) -> Result<Array, String> {
        let shape = if self.shape.is_empty() {
            vec![1]
        } else {
            self.shape.clone()
        };
        Array::new(shape, self.floats()?.to_vec()).ok_or_else(|| "shape and size differ".into())
    }
}

/// The element count of `dims`, or why it is not acceptable.
fn element_count(dims: &[i64]) -> Result<usize, String> {
    let mut n = 1usize;
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| format!("has a negative dim {d} in {dims:?}"))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_ELEMENTS)
            .ok_or_else(|| {
                format!("declares shape {dims:?}, more than the {MAX_ELEMENTS}-element limit")
            })?;
    }
    Ok(n)
}

/// Checks that `have` stored elements (or `raw` bytes of `width`-byte elements) hold
/// exactly `n` elements, before they are copied.
fn check_len(n: usize, have: usize, raw: usize, width: usize) -> Result<(), String> {
    let ok = if raw > 0 {
        have == 0 && Some(raw) == n.checked_mul(width)
    } else {
        have == n
    };
    if ok {
        Ok(())
    } else {
        let held = if raw > 0 {
            format!("{raw} bytes of raw data")
        } else {
            format!("{have} elements")
        };
        Err(format!(
            "declares {n} elements ({} bytes) but holds {held}",
            n.saturating_mul(width)
        ))
    }
}

fn le_chunks<const W: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; W]> + '_ {
    raw.chunks_exact(W).map(|c| {
        let mut b = [0u8; W];
        b.copy_from_slice(c);
        b
    })
}

/// Decodes a tensor, or says why it cannot (the caller names the tensor and file).
pub fn decode(t: &TensorProto) -> Result<Tensor, String> {
    if t.segment.is_some() {
        return Err("is stored in segments, which grim does not read".to_string());
    }
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(
            "keeps its data in an external file, which grim does not read (save the model with its weights inside)"
                .to_string(),
        );
    }
    let n = element_count(&t.dims)?;
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let raw = &t.raw_data;
    let values = match t.data_type {
        data_type::FLOAT => {
            check_len(n, t.float_data.len(), raw.len(), 4)?;
            if raw.is_empty() {
                Values::F32(t.float_data.clone())
            } else {
                Values::F32(le_chunks::<4>(raw).map(f32::from_le_bytes).collect())
            }
        }
        data_type::DOUBLE => {
            check_len(n, t.double_data.len(), raw.len(), 8)?;
            if raw.is_empty() {
                Values::F32(t.double_data.iter().map(|&v| v as f32).collect())
            } else {
                Values::F32(
                    le_chunks::<8>(raw)
                        .map(|b| f64::from_le_bytes(b) as f32)
                        .collect(),
                )
            }
        }
        data_type::INT64 => {
            check_len(n, t.int64_data.len(), raw.len(), 8)?;
            if raw.is_empty() {
                Values::I64(t.int64_data.clone())
            } else {
                Values::I64(le_chunks::<8>(raw).map(i64::from_le_bytes).collect())
            }
        }
        data_type::INT32 => {
            check_len(n, t.int32_data.len(), raw.len(), 4)?;
            if raw.is_empty() {
                Values::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect())
            } else {
                Values::I64(
                    le_chunks::<4>(raw)
                        .map(|b| i64::from(i32::from_le_bytes(b)))
                        .collect(),
                )
            }
        }
        other => {
            return Err(format!(
                "has data type {} ({other}); grim reads FLOAT, DOUBLE, INT32 and INT64",
                data_type::name(other)
            ))
        }
    };
    Ok(Tensor { shape, values })
}

fn dims_of(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// A FLOAT tensor with its data as little-endian raw bytes.
pub fn f32_tensor(name: &str, shape: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims_of(shape),
        data_type: data_type::FLOAT,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An INT64 tensor with its data as little-endian raw bytes.
pub fn i64_tensor(name: &str, shape: &[usize], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: dims_of(shape),
        data_type: data_type::INT64,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_typed_fields_decode_alike() {
        let a = f32_tensor("a", &[2, 2], &[1.0, -2.0, 3.5, 0.0]);
        let b = TensorProto {
            dims: vec![2, 2],
            data_type: data_type::FLOAT,
            float_data: vec![1.0, -2.0, 3.5, 0.0],
            ..Default::default()
        };
        assert_eq!(decode(&a).unwrap(), decode(&b).unwrap());
        let i = i64_tensor("s", &[3], &[0, -1, 7]);
        assert_eq!(decode(&i).unwrap().ints().unwrap(), &[0, -1, 7]);
        let d = TensorProto {
            dims: vec![],
            data_type: data_type::DOUBLE,
            double_data: vec![0.25],
            ..Default::default()
        };
        let d = decode(&d).unwrap();
        assert_eq!(d.to_array().unwrap().shape(), [1]);
        assert_eq!(d.floats().unwrap(), &[0.25]);
    }

    #[test]
    fn declared_sizes_are_checked_before_allocating() {
        // Claims a billion elements but holds 8 bytes.
        let t = TensorProto {
            dims: vec![1000, 1000, 1000],
            data_type: data_type::FLOAT,
            raw_data: vec![0; 8],
            ..Default::default()
        };
        let e = decode(&t).unwrap_err();
        assert!(e.contains("limit"), "{e}");
        let t = TensorProto {
            dims: vec![1000, 1000],
            data_type: data_type::FLOAT,
            raw_data: vec![0; 8],
            ..Default::default()
        };
        let e = decode(&t).unwrap_err();
        assert!(
            e.contains("1000000 elements") && e.contains("8 bytes"),
            "{e}"
        );
        let t = TensorProto {
            dims: vec![i64::MAX, 4],
            data_type: data_type::FLOAT,
            ..Default::default()
        };
        assert!(decode(&t).is_err());
        let t = TensorProto {
            dims: vec![-3],
            data_type: data_type::FLOAT,
            ..Default::default()
        };
        assert!(decode(&t).unwrap_err().contains("negative"));
        let t = TensorProto {
            dims: vec![2],
            data_type: 10,
            int32_data: vec![1, 2],
            ..Default::default()
        };
        assert!(decode(&t).unwrap_err().contains("FLOAT16"));
    }
}
