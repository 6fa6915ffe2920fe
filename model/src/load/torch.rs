//! PyTorch checkpoints written by `torch.save(model.state_dict(), path)` in the zip
//! format (PyTorch 1.6 and later): `<name>/data.pkl` is a pickle of an
//! `OrderedDict` of tensors, each rebuilt by `torch._utils._rebuild_tensor_v2` from a
//! storage given as a persistent id, whose bytes are the entry `<name>/data/<key>`.
//!
//! Only plain data is read: the pickle runs on the bounded VM of [`super::pickle`],
//! which calls nothing but the two tensor-rebuilding functions below. Storages may be
//! `Float` (read as is), `Double`, `Half`, `BFloat16`, `Long` or `Int` (converted to
//! `f32`), little-endian; tensors must be contiguous (row-major strides, any offset).
//! The legacy (pre-1.6, non-zip) format is refused with a message saying so.

use super::archive::{read_file, Zip};
use super::pickle::{self, Container, Limits, Resolver, Value};
use super::{Tensors, MAX_FILE_BYTES};
use crate::array::Array;
use crate::error::ModelError;
use std::path::Path;

/// Largest `data.pkl` accepted, in bytes.
pub const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// Element types of storages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32,
    F64,
    F16,
    Bf16,
    I64,
    I32,
}

impl Dtype {
    fn of_storage(name: &str) -> Option<Dtype> {
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F16 | Dtype::Bf16 => 2,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Dtype::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            Dtype::F64 => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
            Dtype::I64 => {
                i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
            Dtype::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
            Dtype::Bf16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        }
    }
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

#[derive(Debug, Clone)]
enum Ext {
    Storage {
        dtype: Dtype,
        key: String,
        numel: usize,
    },
    Tensor {
        storage: usize,
        offset: usize,
        size: Vec<usize>,
        stride: Vec<usize>,
    },
}

#[derive(Default)]
struct TorchResolver {
    ext: Vec<Ext>,
}

fn int(v: &Value, what: &str) -> Result<usize, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as usize),
        other => Err(format!(
            "{what} is {}, not a non-negative integer",
            other.describe()
        )),
    }
}

fn ints(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) if items.len() <= 16 => items.iter().map(|i| int(i, what)).collect(),
        other => Err(format!(
            "{what} is {}, not a tuple of at most 16 integers",
            other.describe()
        )),
    }
}

impl Resolver for TorchResolver {
    fn reduce(
        &mut self,
        callable: &Value,
        args: &[Value],
        _: &[Container],
    ) -> Result<Value, String> {
        let Value::Global { module, name } = callable else {
            return Err("the callable is not a class or function".to_string());
        };
        match (&**module, &**name) {
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                if args.len() < 4 {
                    return Err(format!("takes at least 4 arguments, got {}", args.len()));
                }
                let storage = match &args[0] {
                    Value::Ext(i) if matches!(self.ext.get(*i), Some(Ext::Storage { .. })) => *i,
                    other => return Err(format!("storage is {}", other.describe())),
                };
                let offset = int(&args[1], "the storage offset")?;
                let size = ints(&args[2], "the size")?;
                let stride = ints(&args[3], "the stride")?;
                if size.len() != stride.len() {
                    return Err(format!(
                        "size {size:?} and stride {stride:?} differ in rank"
                    ));
                }
                self.ext.push(Ext::Tensor {
                    storage,
                    offset,
                    size,
                    stride,
                });
                Ok(Value::Ext(self.ext.len() - 1))
            }
            ("torch._utils", "_rebuild_parameter")
            | ("torch._utils", "_rebuild_parameter_with_state") => match args.first() {
                Some(v @ Value::Ext(i)) if matches!(self.ext.get(*i), Some(Ext::Tensor { .. })) => {
                    Ok(v.clone())
                }
                _ => Err("the parameter's data is not a tensor".to_string()),
            },
            _ => Err(
                "not supported (this reader loads state_dicts of plain tensors only)".to_string(),
            ),
        }
    }

    fn persistent_load(&mut self, pid: &Value, _: &[Container]) -> Result<Value, String> {
        let Value::Tuple(t) = pid else {
            return Err("not a tuple".to_string());
        };
        match &t[..] {
            [Value::Str(tag), Value::Global { module, name }, Value::Str(key), _location, numel]
                if &**tag == "storage" =>
            {
                let dtype = Dtype::of_storage(name)
                    .filter(|_| &**module == "torch")
                    .ok_or_else(|| format!("storage type {module}.{name} is not supported"))?;
                if key.is_empty()
                    || key.len() > 64
                    || key.contains(['/', '\\'])
                    || key.contains("..")
                {
                    return Err(format!("storage key {key:?} is not a plain name"));
                }
                let numel = int(numel, "the storage size")?;
                self.ext.push(Ext::Storage {
                    dtype,
                    key: key.to_string(),
                    numel,
                });
                Ok(Value::Ext(self.ext.len() - 1))
            }
            _ => Err("not a (\"storage\", type, key, location, size) tuple".to_string()),
        }
    }
}

/// Reads the tensors of a `torch.save` zip checkpoint of a `state_dict`.
pub fn read_state_dict(path: &Path) -> Result<Tensors, ModelError> {
    let bytes = read_file(path, MAX_FILE_BYTES)?;
    state_dict_from_bytes(bytes, &path.display().to_string())
}

/// Reads the tensors of a `torch.save` zip checkpoint held in `bytes` (read from
/// `path`).
pub fn state_dict_from_bytes(bytes: Vec<u8>, path: &str) -> Result<Tensors, ModelError> {
    let bad = |reason: String| ModelError::Format {
        path: path.to_string(),
        reason,
    };
    if bytes.first() == Some(&0x80) {
        return Err(bad(
            "a legacy (pre-1.6, non-zip) torch.save file; save it again with a current PyTorch"
                .to_string(),
        ));
    }
    let mut zip = Zip::new(bytes, path, "PyTorch zip checkpoint")?;
    let names = zip.names();
    let pkl = names
        .iter()
        .find(|n| *n == "data.pkl" || (n.ends_with("/data.pkl") && n.matches('/').count() == 1))
        .cloned()
        .ok_or_else(|| {
            bad("has no `<name>/data.pkl` entry (not a torch.save checkpoint?)".to_string())
        })?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let order = format!("{prefix}byteorder");
    if names.contains(&order) {
        let b = zip.read(&order, 16)?;
        if b.trim_ascii() != b"little" {
            return Err(bad(format!(
                "entry `{order}`: byte order `{}`, only little-endian is supported",
                String::from_utf8_lossy(&b)
            )));
        }
    }
    let data = zip.read(&pkl, MAX_PICKLE_BYTES)?;
    let mut resolver = TorchResolver::default();
    let pickled = pickle::unpickle(&data, &mut resolver, Limits::default())
        .map_err(|e| bad(format!("entry `{pkl}`: {e}")))?;
    let items = pickled
        .dict_items(&pickled.root)
        .ok_or_else(|| {
            bad(format!(
                "entry `{pkl}` holds a {}, not a state_dict (a dict of tensors)",
                pickled.root.describe()
            ))
        })?
        .to_vec();
    let mut entries = Vec::with_capacity(items.len());
    for (k, v) in items {
        let name = match k {
            Value::Str(s) => s.to_string(),
            other => return Err(bad(format!("a state_dict key is {}", other.describe()))),
        };
        let tensor = match v {
            Value::Ext(i) => resolver.ext.get(i).cloned(),
            _ => None,
        };
        let Some(Ext::Tensor {
            storage,
            offset,
            size,
            stride,
        }) = tensor
        else {
            return Err(bad(format!("`{name}` is {}, not a tensor", v.describe())));
        };
        let Some(Ext::Storage { dtype, key, numel }) = resolver.ext.get(storage).cloned() else {
            return Err(bad(format!("tensor `{name}`: its storage is missing")));
        };
        let terr = |reason: String| bad(format!("tensor `{name}`: {reason}"));
        let count = size
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= tir::spec::MAX_ELEMENTS)
            .ok_or_else(|| terr(format!("size {size:?} is too large")))?;
        let mut expect = 1usize;
        for (d, (&sz, &st)) in size.iter().zip(&stride).enumerate().rev() {
            if sz > 1 && st != expect {
                return Err(terr(format!(
                    "stride {stride:?} of size {size:?} is not contiguous (dim {d}); only contiguous tensors are supported"
                )));
            }
            expect = expect.saturating_mul(sz);
        }
        if offset.checked_add(count).is_none_or(|end| end > numel) {
            return Err(terr(format!(
                "offset {offset} + {count} elements overrun its storage of {numel}"
            )));
        }
        let entry = format!("{prefix}data/{key}");
        let esize = dtype.size();
        let want = numel
            .checked_mul(esize)
            .filter(|&b| b as u64 <= MAX_FILE_BYTES)
            .ok_or_else(|| terr(format!("storage of {numel} elements is too large")))?;
        let raw = zip.read(&entry, want as u64)?;
        if raw.len() != want {
            return Err(terr(format!(
                "storage entry `{entry}` holds {} bytes, {numel} elements need {want}",
                raw.len()
            )));
        }
        let values: Vec<f32> = raw[offset * esize..(offset + count) * esize]
            .chunks_exact(esize)
            .map(|c| dtype.decode(c))
            .collect();
        let array = Array::new(size.clone(), values)
            .ok_or_else(|| terr(format!("size {size:?} does not fit its data")))?;
        entries.push((name, array));
    }
    Ok(Tensors {
        path: path.to_string(),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(Dtype::Bf16.decode(&[0x80, 0x3f]), 1.0);
    }
}
