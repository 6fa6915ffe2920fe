//! Per-word cost of g2p fine-tuning, old path against new, in one process on the
//! same words (run on one thread: `RAYON_NUM_THREADS=1 cargo run --release -p model
//! --example finetune_speed [WORDS]`; needs models/ from scripts/fetch-models.sh or
//! $GRIM_MODELS_DIR).
//!
//! The g2p model pruned at the 10x rates `grim-tune prune` chooses (encoder 0.925,
//! decoder 0.9, fc 0.5, 16x16 blocks; magnitude only: the values do not change the
//! cost). For each path, forward and backward through time of every word:
//!
//! - `masked`: the masked dense matrices of `backprop` (`Pattern` runs), one word at
//!   a time: the path fine-tuning used before the kept blocks;
//! - `teacher`: the dense teacher's forward pass on the masked path, which the old
//!   loop ran for every training word in every epoch (now computed once);
//! - `kept`: [`Seq2SeqTrainable::forward`]/`backward` (packed kept blocks), one word
//!   at a time;
//! - `batched`: [`Seq2SeqTrainable::forward_batch`]/`backward_batch`, 8 words per
//!   pass.
//!
//! Prints milliseconds per word (median of 5 interleaved rounds) and the ratios.

use model::backprop::{self, GruGrads, GruWeights, Pattern};
use model::data::cmudict;
use model::finetune::Student;
use model::rates::apply_rates;
use model::trainable_seq2seq::Seq2SeqTrainable;
use model::{Body, Model};
use std::time::Instant;
use tir::bcr::BlockShape;
use tir::workload::GivenMatrix;

/// A weight matrix in dense row-major form with its pattern.
fn masked(m: &GivenMatrix) -> (Vec<f32>, Pattern) {
    match m {
        GivenMatrix::Dense(d) => (d.data().to_vec(), Pattern::dense(d.rows(), d.cols())),
        GivenMatrix::Bcr(b) => (b.to_dense().data().to_vec(), Pattern::of_bcr(b)),
    }
}

/// A masked matrix: dense row-major values and the pattern.
type MaskedMatrix = (Vec<f32>, Pattern);

/// One GRU layer on the masked path: `(W_ih, W_hh, b_ih, b_hh)`.
type MaskedGru = (MaskedMatrix, MaskedMatrix, Vec<f32>, Vec<f32>);

/// The masked-path model: the GRU layers and the output.
struct Masked {
    gru: Vec<MaskedGru>,
    out: (Vec<f32>, Pattern),
    out_b: Vec<f32>,
    s: model::Seq2Seq,
}

impl Masked {
    fn new(m: &Model) -> Masked {
        let Body::Seq2Seq(s) = &m.body else {
            panic!("not a seq2seq model")
        };
        let gru = [s.encoder, s.decoder]
            .iter()
            .map(|&l| {
                let w = &m.layers[l].weights;
                (
                    masked(&w.matrices[0]),
                    masked(&w.matrices[1]),
                    w.biases[0].clone(),
                    w.biases[1].clone(),
                )
            })
            .collect();
        let o = &m.layers[s.output].weights;
        Masked {
            gru,
            out: masked(&o.matrices[0]),
            out_b: o.biases.first().cloned().unwrap_or_default(),
            s: s.clone(),
        }
    }

    fn weights(&self, i: usize) -> GruWeights<'_> {
        let g = &self.gru[i];
        GruWeights {
            w_ih: &g.0 .0,
            p_ih: &g.0 .1,
            w_hh: &g.1 .0,
            p_hh: &g.1 .1,
            b_ih: &g.2,
            b_hh: &g.3,
        }
    }

    fn embed(t: &model::Array, id: usize) -> Vec<f32> {
        let w = t.shape()[1];
        t.data()[id * w..(id + 1) * w].to_vec()
    }

    /// Forward (and backward when `grads`) of one word, as the old
    /// `Seq2SeqTrainable` did; returns a checksum.
    fn word(&self, input: &[usize], dec_in: &[usize], grads: Option<&mut [Vec<f32>]>) -> f32 {
        let (enc_w, dec_w) = (self.weights(0), self.weights(1));
        let hid = self.gru[0].3.len() / 3;
        let mut h = vec![0.0f32; hid];
        let mut enc = Vec::new();
        for &id in input {
            let s = backprop::gru_forward(&enc_w, &Self::embed(&self.s.enc_emb, id), &h);
            h.clone_from(&s.out);
            enc.push(s);
        }
        let mut dec = Vec::new();
        let mut sum = 0.0;
        for &id in dec_in {
            let s = backprop::gru_forward(&dec_w, &Self::embed(&self.s.dec_emb, id), &h);
            h.clone_from(&s.out);
            let z = backprop::matmul(&self.out.0, &self.out.1, &h, 1);
            sum += z.iter().zip(&self.out_b).map(|(a, b)| a + b).sum::<f32>();
            dec.push(s);
        }
        let Some(g) = grads else { return sum };
        let (rnn, out) = g.split_at_mut(8);
        let (eg, dg) = rnn.split_at_mut(4);
        let classes = self.out.1.rows();
        let dz = vec![0.01f32; classes];
        let mut dh = vec![0.0f32; hid];
        {
            let mut gg = GruGrads::of(dg).expect("four decoder GRU tensors");
            for s in dec.iter().rev() {
                backprop::matmul_backward(
                    &self.out.0,
                    &self.out.1,
                    &s.out,
                    1,
                    &dz,
                    &mut out[0],
                    Some(&mut dh),
                );
                dh = backprop::gru_backward(&dec_w, s, &dh, &mut gg, false).0;
            }
        }
        let mut gg = GruGrads::of(eg).expect("four encoder GRU tensors");
        for s in enc.iter().rev() {
            dh = backprop::gru_backward(&enc_w, s, &dh, &mut gg, false).0;
        }
        sum + dh[0]
    }

    fn zero_grads(&self) -> Vec<Vec<f32>> {
        let mut g = Vec::new();
        for l in &self.gru {
            g.extend([
                vec![0.0; l.0 .0.len()],
                vec![0.0; l.1 .0.len()],
                vec![0.0; l.2.len()],
                vec![0.0; l.3.len()],
            ]);
        }
        g.push(vec![0.0; self.out.0.len()]);
        g.push(vec![0.0; self.out_b.len()]);
        g
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(400);
    let dir = model::zoo::default_dir();
    let dense = model::zoo::g2p::load(&dir)?;
    let lex = cmudict::load(&dir)?;
    let words = lex.split(cmudict::TEST_WORDS, n).calibration;
    let block = BlockShape { rows: 16, cols: 16 };
    let pruned = apply_rates(
        &dense,
        block,
        &[0.925, 0.9, 0.5],
        None,
        &[],
        model::rates::MaskRule::default(),
    )?;
    let student = Seq2SeqTrainable::new(&pruned)?;
    let data: Vec<_> = words
        .iter()
        .filter_map(|e| student.teacher_forced(e))
        .collect();
    let (old_student, old_teacher) = (Masked::new(&pruned), Masked::new(&dense));
    let words_n = data.len() as f64;
    let mut times: [Vec<f64>; 4] = Default::default();
    let mut check = 0.0f32;
    for _round in 0..5 {
        let t = Instant::now();
        let mut g = old_student.zero_grads();
        for w in &data {
            check += old_student.word(&w.0, &w.1, Some(&mut g));
        }
        times[0].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for w in &data {
            check += old_teacher.word(&w.0, &w.1, None);
        }
        times[1].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut g = student.zero_grads();
        for w in &data {
            let tape = student.forward(&w.0, &w.1)?;
            let d: Vec<Vec<f32>> = tape.logits.iter().map(|z| vec![0.01; z.len()]).collect();
            student.backward(&tape, &d, &mut g)?;
        }
        times[2].push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut g = student.zero_grads();
        for chunk in data.chunks(8) {
            let pairs: Vec<(&[usize], &[usize])> =
                chunk.iter().map(|w| (&w.0[..], &w.1[..])).collect();
            let tape = student.forward_batch(&pairs)?;
            let d: Vec<Vec<Vec<f32>>> = (0..chunk.len())
                .map(|b| {
                    tape.word_logits(b)
                        .iter()
                        .map(|z| vec![0.01; z.len()])
                        .collect()
                })
                .collect();
            student.backward_batch(&tape, &d, &mut g)?;
        }
        times[3].push(t.elapsed().as_secs_f64());
    }
    let ms: Vec<f64> = times
        .into_iter()
        .map(|t| 1e3 * median(t) / words_n)
        .collect();
    println!(
        "{} words, 10.22x (16x16), ms per word (median of 5 rounds):",
        data.len()
    );
    println!("  masked path, student forward+backward: {:.3}", ms[0]);
    println!("  masked path, dense teacher forward:    {:.3}", ms[1]);
    println!("  kept blocks, one word per pass:        {:.3}", ms[2]);
    println!("  kept blocks, 8 words per pass:         {:.3}", ms[3]);
    println!(
        "old training step per word (student + teacher) / new (batched student): {:.1}x",
        (ms[0] + ms[1]) / ms[3]
    );
    println!(
        "student only: masked / kept {:.1}x, masked / batched {:.1}x (checksum {check:.3})",
        ms[0] / ms[2],
        ms[0] / ms[3]
    );
    Ok(())
}
