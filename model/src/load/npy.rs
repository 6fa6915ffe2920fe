//! numpy `.npy` arrays (format versions 1-3): the header's dict literal is parsed
//! here; little-endian `f4` and `f8` (converted to `f32`) in C order are supported.

use crate::array::Array;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The fields of an npy header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// The dtype string, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The shape.
    pub shape: Vec<usize>,
}

/// Parses an `.npy` file's bytes into an `f32` array. Errors say what is wrong and
/// at which byte.
pub fn parse(bytes: &[u8]) -> Result<Array, String> {
    let (header, data_at) = parse_header(bytes)?;
    if header.fortran_order {
        return Err("Fortran-order (column-major) arrays are not supported".to_string());
    }
    let size = match header.descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        other => {
            return Err(format!(
                "dtype `{other}` is not supported (little-endian f4 or f8 only)"
            ))
        }
    };
    let n = header
        .shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= tir::spec::MAX_ELEMENTS)
        .ok_or_else(|| format!("shape {:?} is too large", header.shape))?;
    let data = &bytes[data_at..];
    if data.len() != n * size {
        return Err(format!(
            "shape {:?} of {} needs {} data bytes after the header at byte {data_at}, the file has {} (truncated?)",
            header.shape,
            header.descr,
            n * size,
            data.len()
        ));
    }
    let values: Vec<f32> = if size == 4 {
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        data.chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                f64::from_le_bytes(b) as f32
            })
            .collect()
    };
    Array::new(header.shape.clone(), values)
        .ok_or_else(|| format!("shape {:?} does not fit the data", header.shape))
}

/// Parses the header; returns it and the offset of the data.
pub fn parse_header(bytes: &[u8]) -> Result<(Header, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not an npy array (no \\x93NUMPY magic at byte 0)".to_string());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header length at byte 8".to_string());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("npy format version {v} at byte 6 is not supported")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            format!(
                "the header needs {len} bytes from byte {start}, the file has {} (truncated?)",
                bytes.len()
            )
        })?;
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|e| format!("header is not text at byte {}", start + e.valid_up_to()))?;
    let header = parse_dict(text).map_err(|e| format!("header `{}`: {e}", text.trim()))?;
    Ok((header, end))
}

/// A Python literal of the kinds an npy header uses.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(usize),
    Tuple(Vec<Lit>),
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.i += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected `{}` at column {}, found `{}`",
                c as char, self.i, x as char
            )),
            None => Err(format!("expected `{}`, the header ends", c as char)),
        }
    }

    fn lit(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > 8 {
            return Err("nested too deeply".to_string());
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != q {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string".to_string());
                }
                let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Lit::Str(v))
            }
            Some(b'(') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(b')') {
                        self.i += 1;
                        return Ok(Lit::Tuple(items));
                    }
                    items.push(self.lit(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b')') => {}
                        _ => return Err(format!("expected `,` or `)` at column {}", self.i)),
                    }
                }
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                let t = t.trim_end_matches('L');
                t.parse()
                    .map(Lit::Int)
                    .map_err(|_| format!("integer `{t}` out of range"))
            }
            Some(_) => {
                let rest = &self.s[self.i..];
                for (word, v) in [("True", true), ("False", false)] {
                    if rest.starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(Lit::Bool(v));
                    }
                }
                Err(format!("unexpected text at column {}", self.i))
            }
            None => Err("the header ends early".to_string()),
        }
    }
}

fn parse_dict(text: &str) -> Result<Header, String> {
    let mut lx = Lexer {
        s: text.as_bytes(),
        i: 0,
    };
    lx.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        if lx.peek() == Some(b'}') {
            break;
        }
        let key = match lx.lit(0)? {
            Lit::Str(k) => k,
            other => return Err(format!("a key is {other:?}, not a string")),
        };
        lx.expect(b':')?;
        let v = lx.lit(0)?;
        match (key.as_str(), v) {
            ("descr", Lit::Str(d)) => descr = Some(d),
            ("fortran_order", Lit::Bool(b)) => fortran = Some(b),
            ("shape", Lit::Tuple(items)) => {
                let dims = items
                    .into_iter()
                    .map(|d| match d {
                        Lit::Int(n) => Ok(n),
                        other => Err(format!("shape entry {other:?} is not an integer")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                shape = Some(dims);
            }
            (k @ ("descr" | "fortran_order" | "shape"), v) => {
                return Err(format!("`{k}` has the wrong kind of value {v:?}"))
            }
            _ => {}
        }
        match lx.peek() {
            Some(b',') => lx.i += 1,
            Some(b'}') => {}
            _ => return Err(format!("expected `,` or `}}` at column {}", lx.i)),
        }
    }
    Ok(Header {
        descr: descr.ok_or("no `descr`")?,
        fortran_order: fortran.ok_or("no `fortran_order`")?,
        shape: shape.ok_or("no `shape`")?,
    })
}

/// Serializes an `f32` array as a version-1 `.npy` file (for tests and tools).
pub fn to_bytes(a: &Array) -> Vec<u8> {
    let shape = match a.shape() {
        [d] => format!("({d},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend([1, 0]);
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    for v in a.data() {
        out.extend(v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_parses_numpy_headers() {
        let a = Array::new(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-3, 7.0]).unwrap();
        let b = to_bytes(&a);
        assert_eq!(b.len() % 64, 24);
        assert_eq!(parse(&b).unwrap(), a);
        let v = Array::new(vec![3], vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(parse(&to_bytes(&v)).unwrap(), v);
        let (h, _) = parse_header(&to_bytes(&v)).unwrap();
        assert_eq!(h.shape, vec![3]);
        // numpy's own spelling of a scalar and of a big-endian array.
        let h = parse_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (), }").unwrap();
        assert_eq!((h.descr.as_str(), h.shape.len()), (">f4", 0));
    }

    fn replace(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = b.windows(from.len()).position(|w| w == from).unwrap();
        [&b[..at], to, &b[at + from.len()..]].concat()
    }

    #[test]
    fn bad_arrays_say_what_is_wrong() {
        let a = Array::new(vec![4], vec![1.0; 4]).unwrap();
        let b = to_bytes(&a);
        let e = parse(&b[..b.len() - 1]).unwrap_err();
        assert!(
            e.contains("truncated") && e.contains("16 data bytes"),
            "{e}"
        );
        assert!(parse(&b[..20]).unwrap_err().contains("header"));
        assert!(parse(b"hello").unwrap_err().contains("magic"));
        let e = parse(&replace(&b, b"<f4", b"<i8")).unwrap_err();
        assert!(e.contains("`<i8`"), "{e}");
        let e = parse(&replace(&b, b"False", b"True ")).unwrap_err();
        assert!(e.contains("Fortran"), "{e}");
        for n in 0..b.len() {
            assert!(parse(&b[..n]).is_err());
        }
        for i in 0..80 {
            let mut c = b.clone();
            c[i] ^= 0x5a;
            let _ = parse(&c);
        }
    }
}
