//! Glue ops between layers, in plain Rust: activations, pooling, softmax, reshapes,
//! additions and concatenation. Each returns a message on bad shapes; the caller names
//! the node.

use crate::array::Array;

fn nchw(x: &Array) -> Result<[usize; 4], String> {
    match *x.shape() {
        [n, c, h, w] => Ok([n, c, h, w]),
        ref s => Err(format!("expects an NCHW (4-D) input, got shape {s:?}")),
    }
}

/// Applies `f` to every element.
pub fn map(x: &Array, f: impl Fn(f32) -> f32) -> Array {
    let mut y = x.clone();
    for v in y.data_mut() {
        *v = f(*v);
    }
    y
}

fn pool_out(
    size: usize,
    k: usize,
    stride: usize,
    pad0: usize,
    pad1: usize,
) -> Result<usize, String> {
    let padded = size + pad0 + pad1;
    if k == 0 || stride == 0 || padded < k {
        return Err(format!(
            "window {k} stride {stride} does not fit size {padded}"
        ));
    }
    Ok((padded - k) / stride + 1)
}

/// Max or average pooling over the last two axes.
pub fn pool(
    x: &Array,
    kernel: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 4],
    max: bool,
) -> Result<Array, String> {
    let [n, c, h, w] = nchw(x)?;
    let oh = pool_out(h, kernel[0], stride[0], pad[0], pad[2])?;
    let ow = pool_out(w, kernel[1], stride[1], pad[1], pad[3])?;
    let mut y = Array::zeros(vec![n, c, oh, ow]);
    let xd = x.data();
    let yd = y.data_mut();
    for plane in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = if max { f32::NEG_INFINITY } else { 0.0 };
                let mut count = 0usize;
                for i in 0..kernel[0] {
                    let iy = (oy * stride[0] + i) as isize - pad[0] as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for j in 0..kernel[1] {
                        let ix = (ox * stride[1] + j) as isize - pad[1] as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let v = xd[(plane * h + iy as usize) * w + ix as usize];
                        if max {
                            acc = acc.max(v);
                        } else {
                            acc += v;
                        }
                        count += 1;
                    }
                }
                yd[(plane * oh + oy) * ow + ox] = if max { acc } else { acc / count.max(1) as f32 };
            }
        }
    }
    Ok(y)
}

/// Mean over the last two axes.
pub fn global_avg_pool(x: &Array) -> Result<Array, String> {
    let [n, c, h, w] = nchw(x)?;
    let plane = (h * w).max(1);
    let data = x
        .data()
        .chunks(plane)
        .map(|p| p.iter().sum::<f32>() / plane as f32)
        .collect();
    Array::new(vec![n, c, 1, 1], data).ok_or_else(|| "empty input".to_string())
}

/// Flattens to `[prod(shape[..axis]), prod(shape[axis..])]`.
pub fn flatten(x: Array, axis: usize) -> Result<Array, String> {
    if axis > x.shape().len() {
        return Err(format!("axis {axis} beyond rank {}", x.shape().len()));
    }
    let outer: usize = x.shape()[..axis].iter().product();
    let inner: usize = x.shape()[axis..].iter().product();
    x.reshape(vec![outer, inner])
        .ok_or_else(|| "flatten changed the element count".to_string())
}

/// Reshape with ONNX semantics (`0` copies a dim, one `-1` is inferred).
pub fn reshape(x: Array, shape: &[i64]) -> Result<Array, String> {
    let mut dims = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &d) in shape.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                dims.push(1);
            }
            0 => dims.push(*x.shape().get(i).ok_or("0 beyond the input rank")?),
            d if d > 0 => dims.push(d as usize),
            d => return Err(format!("bad target dim {d}")),
        }
    }
    if let Some(i) = infer {
        let known: usize = dims.iter().product();
        if known == 0 || x.len() % known != 0 {
            return Err(format!(
                "cannot infer -1 for {} elements into {shape:?}",
                x.len()
            ));
        }
        dims[i] = x.len() / known;
    }
    let from = x.shape().to_vec();
    x.reshape(dims)
        .ok_or_else(|| format!("cannot reshape {from:?} to {shape:?}"))
}

/// Softmax along `axis`.
pub fn softmax(x: &Array, axis: usize) -> Result<Array, String> {
    let s = x.shape();
    if axis >= s.len() {
        return Err(format!("axis {axis} beyond rank {}", s.len()));
    }
    let len = s[axis];
    let inner: usize = s[axis + 1..].iter().product();
    let outer: usize = s[..axis].iter().product();
    let mut y = x.clone();
    let d = y.data_mut();
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| (o * len + k) * inner + i;
            let m = (0..len).map(|k| d[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for k in 0..len {
                d[at(k)] = (d[at(k)] - m).exp();
                sum += d[at(k)];
            }
            for k in 0..len {
                d[at(k)] /= sum;
            }
        }
    }
    Ok(y)
}

/// `a + b` for equal shapes, a one-element `b`, or `b` with one value per channel
/// of an NCHW `a` (`[C]` or `[1, C, 1, 1]`).
pub fn add(a: &Array, b: &Array) -> Result<Array, String> {
    let mut y = a.clone();
    if a.shape() == b.shape() {
        for (v, w) in y.data_mut().iter_mut().zip(b.data()) {
            *v += w;
        }
    } else if b.len() == 1 {
        let w = b.data()[0];
        y.data_mut().iter_mut().for_each(|v| *v += w);
    } else if a.shape().len() == 4 && b.len() == a.shape()[1] {
        let [_, c, h, w] = nchw(a)?;
        for (i, v) in y.data_mut().iter_mut().enumerate() {
            *v += b.data()[(i / (h * w)) % c];
        }
    } else {
        return Err(format!(
            "cannot add shapes {:?} and {:?}",
            a.shape(),
            b.shape()
        ));
    }
    Ok(y)
}

/// Concatenation along `axis`.
pub fn concat(xs: &[&Array], axis: usize) -> Result<Array, String> {
    let first = xs.first().ok_or("no inputs")?;
    let rank = first.shape().len();
    if axis >= rank {
        return Err(format!("axis {axis} beyond rank {rank}"));
    }
    for x in xs {
        let same = x.shape().len() == rank
            && (0..rank).all(|i| i == axis || x.shape()[i] == first.shape()[i]);
        if !same {
            return Err(format!(
                "shapes {:?} and {:?} differ off the axis",
                first.shape(),
                x.shape()
            ));
        }
    }
    let outer: usize = first.shape()[..axis].iter().product();
    let inner: usize = first.shape()[axis + 1..].iter().product();
    let mut data = Vec::new();
    for o in 0..outer {
        for x in xs {
            let chunk = x.shape()[axis] * inner;
            data.extend_from_slice(&x.data()[o * chunk..(o + 1) * chunk]);
        }
    }
    let mut shape = first.shape().to_vec();
    shape[axis] = xs.iter().map(|x| x.shape()[axis]).sum();
    Array::new(shape, data).ok_or_else(|| "concat size".to_string())
}
