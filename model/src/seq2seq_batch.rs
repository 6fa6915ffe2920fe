//! Teacher-forced forward and backward passes of the GRU encoder-decoder
//! ([`Seq2SeqTrainable`]) for several words at once.
//!
//! One word's pass multiplies each packed weight matrix by one vector per step, in
//! dot products a few columns long (a BCR block's kept columns); `n` words in lock
//! step multiply it by `n` vectors ([`KeptBlocks::matmat`]), so each kept weight
//! meets a contiguous run of `n` inputs and the work vectorizes. Words differ in
//! length: at a step past its end a word is inactive, its state is carried over
//! unchanged (and its gradient passed back unchanged), it gets no logits and adds no
//! gradient, so every word's result is the one of its own pass
//! ([`Seq2SeqTrainable::forward`]), up to the order of float additions.
//!
//! Layouts: a batch of vectors of length `d` is `[d, n]` row-major (word `b` is
//! column `b`).

use crate::backprop::{activation_backward, GruGrads};
use crate::error::ModelError;
use crate::kept_blocks::KeptBlocks;
use crate::trainable_seq2seq::{Seq2SeqTrainable, DEC, ENC, OUT};
use crate::Array;
use tir::spec::Activation;

fn sigmoid(v: f32) -> f32 {
    Activation::Sigmoid.apply(v)
}

/// One GRU cell's packed weights and biases.
struct Cell<'a> {
    w_ih: &'a [f32],
    k_ih: &'a KeptBlocks,
    w_hh: &'a [f32],
    k_hh: &'a KeptBlocks,
    b_ih: &'a [f32],
    b_hh: &'a [f32],
}

/// What one batched GRU step keeps for its backward pass (`[d, n]` layouts).
#[derive(Debug, Clone)]
struct Step {
    x: Vec<f32>,
    h: Vec<f32>,
    r: Vec<f32>,
    z: Vec<f32>,
    c: Vec<f32>,
    ghn: Vec<f32>,
    out: Vec<f32>,
    active: Vec<bool>,
}

/// The batched GRU step: `h' = (1 − z) ⊙ c + z ⊙ h` for active words, `h' = h` for
/// the others (as [`crate::backprop::gru_forward`] per word).
fn step_forward(w: &Cell<'_>, x: Vec<f32>, h: &[f32], n: usize, active: Vec<bool>) -> Step {
    let hid = h.len() / n.max(1);
    let mut gi = w.k_ih.matmat(w.w_ih, &x, n);
    let mut gh = w.k_hh.matmat(w.w_hh, h, n);
    for (g, (&bi, &bh)) in w.b_ih.iter().zip(w.b_hh).enumerate() {
        gi[g * n..(g + 1) * n].iter_mut().for_each(|v| *v += bi);
        gh[g * n..(g + 1) * n].iter_mut().for_each(|v| *v += bh);
    }
    let len = hid * n;
    let (mut r, mut z, mut c, mut out) = (
        vec![0.0f32; len],
        vec![0.0f32; len],
        vec![0.0f32; len],
        vec![0.0f32; len],
    );
    let ghn = gh[2 * len..3 * len].to_vec();
    for i in 0..len {
        r[i] = sigmoid(gi[i] + gh[i]);
        z[i] = sigmoid(gi[len + i] + gh[len + i]);
        c[i] = (gi[2 * len + i] + r[i] * ghn[i]).tanh();
        out[i] = if active[i % n] {
            (1.0 - z[i]) * c[i] + z[i] * h[i]
        } else {
            h[i]
        };
    }
    Step {
        x,
        h: h.to_vec(),
        r,
        z,
        c,
        ghn,
        out,
        active,
    }
}

/// The backward pass of [`step_forward`]: adds the weight and bias gradients and
/// returns the gradient of the previous states.
fn step_backward(w: &Cell<'_>, s: &Step, dout: &[f32], n: usize, g: &mut GruGrads<'_>) -> Vec<f32> {
    let len = s.h.len();
    let mut dgi = vec![0.0f32; 3 * len];
    let mut dgh = vec![0.0f32; 3 * len];
    let mut dh = vec![0.0f32; len];
    for i in 0..len {
        if !s.active[i % n] {
            dh[i] = dout[i];
            continue;
        }
        let (r, z) = (s.r[i], s.z[i]);
        dh[i] = dout[i] * z;
        let grads = crate::backprop::gru_gate_grads(dout[i], r, z, s.c[i], s.h[i], s.ghn[i]);
        crate::backprop::store_gate_grads(&mut dgi, &mut dgh, i, r, grads);
    }
    for (k, (bi, bh)) in g.b_ih.iter_mut().zip(g.b_hh.iter_mut()).enumerate() {
        *bi += dgi[k * n..(k + 1) * n].iter().sum::<f32>();
        *bh += dgh[k * n..(k + 1) * n].iter().sum::<f32>();
    }
    w.k_ih.matmat_backward(w.w_ih, &s.x, n, &dgi, g.w_ih, None);
    w.k_hh
        .matmat_backward(w.w_hh, &s.h, n, &dgh, g.w_hh, Some(&mut dh));
    dh
}

/// What a batched teacher-forced forward pass keeps.
#[derive(Debug, Clone)]
pub struct BatchTape {
    n: usize,
    enc: Vec<Step>,
    dec: Vec<Step>,
    /// The logits of every decoder step, `[classes, n]` (zero for inactive words).
    logits: Vec<Vec<f32>>,
    classes: usize,
    dec_len: Vec<usize>,
}

impl BatchTape {
    /// Word `b`'s logits, one vector per decoder step of that word.
    pub fn word_logits(&self, b: usize) -> Vec<Vec<f32>> {
        let len = self.dec_len.get(b).copied().unwrap_or(0);
        self.logits[..len]
            .iter()
            .map(|z| (0..self.classes).map(|k| z[k * self.n + b]).collect())
            .collect()
    }
}

impl Seq2SeqTrainable {
    fn cell(&self, base: usize) -> Result<Cell<'_>, ModelError> {
        Ok(Cell {
            w_ih: &self.tensors[base],
            k_ih: self.kept(base)?,
            w_hh: &self.tensors[base + 1],
            k_hh: self.kept(base + 1)?,
            b_ih: &self.tensors[base + 2],
            b_hh: &self.tensors[base + 3],
        })
    }

    /// Embedding rows of `ids` at step `t` as a `[width, n]` batch (zero for words
    /// shorter than `t + 1`), and which words are active.
    fn embed_batch(
        table: &Array,
        ids: &[&[usize]],
        t: usize,
    ) -> Result<(Vec<f32>, Vec<bool>), ModelError> {
        let n = ids.len();
        let width = table.shape().get(1).copied().unwrap_or(0);
        let mut x = vec![0.0f32; width * n];
        let mut active = vec![false; n];
        for (b, w) in ids.iter().enumerate() {
            if let Some(&id) = w.get(t) {
                let row = table
                    .data()
                    .get(id * width..(id + 1) * width)
                    .ok_or_else(|| ModelError::exec("embedding", format!("no row {id}")))?;
                for (c, &v) in row.iter().enumerate() {
                    x[c * n + b] = v;
                }
                active[b] = true;
            }
        }
        Ok((x, active))
    }

    /// Runs the teacher-forced pass of every word `(encoder input, decoder input)`
    /// together (see the [module docs](self)).
    pub fn forward_batch(&self, words: &[(&[usize], &[usize])]) -> Result<BatchTape, ModelError> {
        let n = words.len();
        let (enc_w, dec_w) = (self.cell(ENC)?, self.cell(DEC)?);
        let out_k = self.kept(OUT)?;
        let enc_ids: Vec<&[usize]> = words.iter().map(|w| w.0).collect();
        let dec_ids: Vec<&[usize]> = words.iter().map(|w| w.1).collect();
        let max = |v: &[&[usize]]| v.iter().map(|w| w.len()).max().unwrap_or(0);
        let mut h = vec![0.0f32; self.hidden * n];
        let mut enc = Vec::new();
        for t in 0..max(&enc_ids) {
            let (x, active) = Self::embed_batch(&self.s.enc_emb, &enc_ids, t)?;
            let s = step_forward(&enc_w, x, &h, n, active);
            h.clone_from(&s.out);
            enc.push(s);
        }
        let classes = out_k.rows();
        let mut dec = Vec::new();
        let mut logits = Vec::new();
        for t in 0..max(&dec_ids) {
            let (x, active) = Self::embed_batch(&self.s.dec_emb, &dec_ids, t)?;
            let s = step_forward(&dec_w, x, &h, n, active);
            h.clone_from(&s.out);
            let mut z = out_k.matmat(&self.tensors[OUT], &h, n);
            for (k, &bias) in self.tensors[OUT + 1].iter().enumerate() {
                for b in 0..n {
                    let v = &mut z[k * n + b];
                    *v = if s.active[b] {
                        self.out_act.apply(*v + bias)
                    } else {
                        0.0
                    };
                }
            }
            logits.push(z);
            dec.push(s);
        }
        Ok(BatchTape {
            n,
            enc,
            dec,
            logits,
            classes,
            dec_len: dec_ids.iter().map(|w| w.len()).collect(),
        })
    }

    /// Adds the gradient of the loss to `grads` given, per word, the gradient with
    /// respect to each of its steps' logits (backpropagation through time).
    pub fn backward_batch(
        &self,
        tape: &BatchTape,
        d_logits: &[Vec<Vec<f32>>],
        grads: &mut [Vec<f32>],
    ) -> Result<(), ModelError> {
        let n = tape.n;
        if grads.len() != self.tensors.len()
            || d_logits.len() != n
            || d_logits
                .iter()
                .zip(&tape.dec_len)
                .any(|(d, &l)| d.len() != l || d.iter().any(|v| v.len() != tape.classes))
        {
            return Err(ModelError::exec("seq2seq", "gradients do not fit the tape"));
        }
        let (enc_w, dec_w) = (self.cell(ENC)?, self.cell(DEC)?);
        let out_k = self.kept(OUT)?;
        let (rnn_grads, out_grads) = grads.split_at_mut(OUT);
        let (enc_g, dec_g) = rnn_grads.split_at_mut(DEC);
        let [gw, gb] = out_grads else {
            return Err(ModelError::exec("output", "two tensors"));
        };
        if enc_g.len() != 4 || dec_g.len() != 4 {
            return Err(ModelError::exec("seq2seq", "four GRU tensors"));
        }
        let mut dh = vec![0.0f32; self.hidden * n];
        {
            let mut g = GruGrads::of(dec_g)?;
            for t in (0..tape.dec.len()).rev() {
                let mut dz = vec![0.0f32; tape.classes * n];
                for (b, d) in d_logits.iter().enumerate() {
                    if let Some(dt) = d.get(t) {
                        for (k, &v) in dt.iter().enumerate() {
                            dz[k * n + b] = v;
                        }
                    }
                }
                activation_backward(self.out_act, &tape.logits[t], &mut dz);
                for (k, bias) in gb.iter_mut().enumerate() {
                    *bias += dz[k * n..(k + 1) * n].iter().sum::<f32>();
                }
                out_k.matmat_backward(
                    &self.tensors[OUT],
                    &tape.dec[t].out,
                    n,
                    &dz,
                    gw,
                    Some(&mut dh),
                );
                dh = step_backward(&dec_w, &tape.dec[t], &dh, n, &mut g);
            }
        }
        let mut g = GruGrads::of(enc_g)?;
        for s in tape.enc.iter().rev() {
            dh = step_backward(&enc_w, s, &dh, n, &mut g);
        }
        Ok(())
    }
}
