//! A GRU encoder-decoder ([`Seq2Seq`], the g2p model) as trainable parameters:
//! a teacher-forced forward pass, backpropagation through time, and writing the
//! trained values back with the BCR structure unchanged; plus its fine-tuning
//! ([`finetune_seq2seq`]) with the shared loop of [`crate::finetune`].
//!
//! Teacher forcing: the decoder reads the reference output symbols (start symbol,
//! then the reference phonemes) and produces logits for the next symbol at every
//! step (the reference phonemes, then the end symbol); the teacher runs on the same
//! inputs, so student and teacher logits line up step by step. The embeddings are
//! not trained (they are not pruned); the GRU and output layers' kept weights and
//! biases are.
//!
//! The weight matrices are held as their kept blocks ([`KeptBlocks`]): the trained
//! tensors are the packed kept values, so the products, the backward passes and the
//! optimizer touch only kept weights (about a tenth of them at 10x), in short dense
//! runs; [`Seq2SeqTrainable::write_back`] unpacks them into the unchanged BCR
//! structure.

use crate::backprop::{self, GruGrads, GruStep, GruWeights, MatVec, Pattern};
use crate::data::cmudict::Entry;
use crate::distill::{log_prob, Distillation};
use crate::error::ModelError;
use crate::finetune::{check_options, train, FinetuneOptions, FinetuneReport, Student, Validation};
use crate::kept_blocks::KeptBlocks;
use crate::layer::Layer;
use crate::seq2seq::Seq2Seq;
use crate::trainable::write_layer;
use crate::{Array, Body, Model};
use rayon::prelude::*;
use tir::spec::{Activation, WorkloadSpec};
use tir::workload::GivenMatrix;

/// Tensor indices: encoder `W_ih, W_hh, b_ih, b_hh`, decoder the same, output `W, b`.
pub(crate) const ENC: usize = 0;
pub(crate) const DEC: usize = 4;
pub(crate) const OUT: usize = 8;

/// The trainable form of an encoder-decoder model.
#[derive(Debug, Clone)]
pub struct Seq2SeqTrainable {
    pub(crate) s: Seq2Seq,
    pub(crate) hidden: usize,
    pub(crate) out_act: Activation,
    /// The parameter tensors (see the constants above): weight matrices packed as
    /// their kept blocks ([`Seq2SeqTrainable::blocks`]), biases whole.
    pub tensors: Vec<Vec<f32>>,
    /// Which values train: `None` for all (the packed matrices and the biases).
    pub patterns: Vec<Option<Pattern>>,
    /// The kept blocks of each weight matrix (`None` for biases).
    pub blocks: Vec<Option<KeptBlocks>>,
}

/// What a teacher-forced forward pass keeps.
#[derive(Debug, Clone)]
pub struct Seq2SeqTape {
    enc: Vec<GruStep>,
    dec: Vec<GruStep>,
    /// The logits of every decoder step.
    pub logits: Vec<Vec<f32>>,
}

/// Weight matrix `i` of `layer`: its packed kept values and kept blocks.
fn matrix(layer: &Layer, i: usize) -> Result<(Vec<f32>, KeptBlocks), ModelError> {
    match layer.weights.matrices.get(i) {
        Some(GivenMatrix::Dense(m)) => {
            let kb = KeptBlocks::dense(m.rows(), m.cols());
            Ok((kb.pack(m.data()), kb))
        }
        Some(GivenMatrix::Bcr(b)) => {
            let kb = KeptBlocks::of_bcr(b);
            Ok((kb.pack(b.to_dense().data()), kb))
        }
        None => Err(ModelError::layer(
            &layer.name,
            format!("has no weight matrix {i}"),
        )),
    }
}

impl Seq2SeqTrainable {
    /// The trainable form of an encoder-decoder model.
    pub fn new(model: &Model) -> Result<Seq2SeqTrainable, ModelError> {
        let Body::Seq2Seq(s) = &model.body else {
            return Err(ModelError::Format {
                path: model.name.clone(),
                reason: "not an encoder-decoder model".to_string(),
            });
        };
        model.validate()?;
        let mut tensors = Vec::new();
        let mut patterns = Vec::new();
        let mut blocks = Vec::new();
        for l in [s.encoder, s.decoder] {
            let layer = &model.layers[l];
            for i in 0..2 {
                let (w, kb) = matrix(layer, i)?;
                tensors.push(w);
                patterns.push(None);
                blocks.push(Some(kb));
            }
            for i in 0..2 {
                tensors.push(layer.bias(i)?.to_vec());
                patterns.push(None);
                blocks.push(None);
            }
        }
        let out = &model.layers[s.output];
        let WorkloadSpec::Fc(fc) = &out.spec else {
            return Err(ModelError::layer(&out.name, "the output layer must be FC"));
        };
        let (w, kb) = matrix(out, 0)?;
        tensors.push(w);
        patterns.push(None);
        blocks.push(Some(kb));
        blocks.push(None);
        tensors.push(if fc.bias {
            out.bias(0)?.to_vec()
        } else {
            vec![0.0; fc.m]
        });
        patterns.push(if fc.bias {
            None
        } else {
            // No bias: nothing trains (an empty pattern keeps it zero).
            Some(Pattern::empty(1, fc.m))
        });
        Ok(Seq2SeqTrainable {
            s: s.clone(),
            hidden: fc.k,
            out_act: fc.act,
            tensors,
            patterns,
            blocks,
        })
    }

    pub(crate) fn kept(&self, i: usize) -> Result<&KeptBlocks, ModelError> {
        self.blocks
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| ModelError::exec("seq2seq", "weights without kept blocks"))
    }

    fn gru(&self, base: usize) -> Result<GruWeights<'_>, ModelError> {
        let pat = |i: usize| -> Result<&dyn MatVec, ModelError> { Ok(self.kept(base + i)?) };
        Ok(GruWeights {
            w_ih: &self.tensors[base],
            p_ih: pat(0)?,
            w_hh: &self.tensors[base + 1],
            p_hh: pat(1)?,
            b_ih: &self.tensors[base + 2],
            b_hh: &self.tensors[base + 3],
        })
    }

    fn embed(table: &Array, row: usize) -> Result<Vec<f32>, ModelError> {
        let width = table.shape().get(1).copied().unwrap_or(0);
        table
            .data()
            .get(row * width..(row + 1) * width)
            .map(|s| s.to_vec())
            .ok_or_else(|| ModelError::exec("embedding", format!("no row {row}")))
    }

    /// Runs the encoder over `input` (symbol indices, end symbol included) and the
    /// decoder teacher-forced over `dec_inputs` (start symbol first).
    pub fn forward(
        &self,
        input: &[usize],
        dec_inputs: &[usize],
    ) -> Result<Seq2SeqTape, ModelError> {
        let (enc_w, dec_w) = (self.gru(ENC)?, self.gru(DEC)?);
        let out_p = self.kept(OUT)?;
        let mut h = vec![0.0f32; self.hidden];
        let mut enc = Vec::with_capacity(input.len());
        for &id in input {
            let step = backprop::gru_forward(&enc_w, &Self::embed(&self.s.enc_emb, id)?, &h);
            h.clone_from(&step.out);
            enc.push(step);
        }
        let mut dec = Vec::with_capacity(dec_inputs.len());
        let mut logits = Vec::with_capacity(dec_inputs.len());
        for &id in dec_inputs {
            let step = backprop::gru_forward(&dec_w, &Self::embed(&self.s.dec_emb, id)?, &h);
            h.clone_from(&step.out);
            let mut z = out_p.matvec(&self.tensors[OUT], &h);
            for (v, b) in z.iter_mut().zip(&self.tensors[OUT + 1]) {
                *v = self.out_act.apply(*v + b);
            }
            logits.push(z);
            dec.push(step);
        }
        Ok(Seq2SeqTape { enc, dec, logits })
    }

    /// Adds the gradient of the loss to `grads` given the gradient with respect to
    /// every step's logits (backpropagation through time).
    pub fn backward(
        &self,
        tape: &Seq2SeqTape,
        d_logits: &[Vec<f32>],
        grads: &mut [Vec<f32>],
    ) -> Result<(), ModelError> {
        let (enc_w, dec_w) = (self.gru(ENC)?, self.gru(DEC)?);
        let out_p = self.kept(OUT)?;
        if grads.len() != self.tensors.len() || d_logits.len() != tape.dec.len() {
            return Err(ModelError::exec("seq2seq", "gradients do not fit the tape"));
        }
        let (rnn_grads, out_grads) = grads.split_at_mut(OUT);
        let (enc_g, dec_g) = rnn_grads.split_at_mut(DEC);
        let [gw, gb] = out_grads else {
            return Err(ModelError::exec("output", "two tensors"));
        };
        let mut dh = vec![0.0f32; self.hidden];
        {
            let mut g = GruGrads::of(dec_g)?;
            for t in (0..tape.dec.len()).rev() {
                let mut dz = d_logits[t].clone();
                backprop::activation_backward(self.out_act, &tape.logits[t], &mut dz);
                gb.iter_mut().zip(&dz).for_each(|(b, d)| *b += d);
                let h = &tape.dec[t].out;
                out_p.matvec_backward(&self.tensors[OUT], h, &dz, gw, Some(&mut dh));
                dh = backprop::gru_backward(&dec_w, &tape.dec[t], &dh, &mut g, false).0;
            }
        }
        let mut g = GruGrads::of(enc_g)?;
        for step in tape.enc.iter().rev() {
            dh = backprop::gru_backward(&enc_w, step, &dh, &mut g, false).0;
        }
        Ok(())
    }

    /// `layers` with the trained values written back (specs and BCR structure
    /// unchanged).
    pub fn write_back(&self, layers: &[Layer]) -> Result<Vec<Layer>, ModelError> {
        let mut out = layers.to_vec();
        for (l, base) in [(self.s.encoder, ENC), (self.s.decoder, DEC)] {
            let layer = out
                .get_mut(l)
                .ok_or_else(|| ModelError::layer(&format!("#{l}"), "no such layer"))?;
            let (w_ih, w_hh) = (self.unpacked(base)?, self.unpacked(base + 1)?);
            write_layer(
                layer,
                &[&w_ih, &w_hh],
                &[&self.tensors[base + 2], &self.tensors[base + 3]],
            )?;
        }
        let layer = out
            .get_mut(self.s.output)
            .ok_or_else(|| ModelError::layer("output", "no such layer"))?;
        let biases: Vec<&[f32]> = if layer.weights.biases.is_empty() {
            vec![]
        } else {
            vec![&self.tensors[OUT + 1]]
        };
        write_layer(layer, &[&self.unpacked(OUT)?], &biases)?;
        Ok(out)
    }

    /// Weight matrix tensor `i` in dense row-major form (zero where pruned).
    pub fn unpacked(&self, i: usize) -> Result<Vec<f32>, ModelError> {
        Ok(self.kept(i)?.unpack(&self.tensors[i]))
    }

    /// A word as (encoder input, decoder input, decoder targets), or `None` when a
    /// phoneme is not an output symbol.
    pub fn teacher_forced(&self, e: &Entry) -> Option<(Vec<usize>, Vec<usize>, Vec<usize>)> {
        let ids: Vec<usize> = e
            .phonemes
            .iter()
            .map(|p| self.s.output_symbols.iter().position(|o| o == p))
            .collect::<Option<_>>()?;
        let mut dec_in = vec![self.s.start];
        dec_in.extend(&ids);
        let mut targets = ids;
        targets.push(self.s.end);
        Some((self.s.encode_word(&e.word), dec_in, targets))
    }
}

impl Student for Seq2SeqTrainable {
    fn tensors(&self) -> &[Vec<f32>] {
        &self.tensors
    }
    fn tensors_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.tensors
    }
    fn patterns(&self) -> &[Option<Pattern>] {
        &self.patterns
    }
}

type Word = (Vec<usize>, Vec<usize>, Vec<usize>);

/// Words that go through one batched pass ([`crate::seq2seq_batch`]) in training
/// and validation: a fixed number, so results do not depend on the thread count.
const WORDS_PER_PASS: usize = 8;

/// Words prepared for fine-tuning: each one teacher-forced (encoder input, decoder
/// input, targets) with the teacher's logits of every decoder step, computed once
/// (the dense teacher costs more than the pruned student's forward and backward
/// passes together, so it is not run again every epoch, nor again for every stage of
/// gradual pruning).
#[derive(Debug, Clone)]
pub struct TeacherWords {
    words: Vec<Word>,
    /// Per word, the teacher's logits of every step, row after row.
    logits: Vec<Vec<f32>>,
    symbols: Vec<String>,
}

impl TeacherWords {
    /// Runs `teacher` over `entries` (in parallel); words with a phoneme the model
    /// does not know are left out.
    pub fn new(teacher: &Model, entries: &[Entry]) -> Result<TeacherWords, ModelError> {
        let t = Seq2SeqTrainable::new(teacher)?;
        let words: Vec<Word> = entries.iter().filter_map(|e| t.teacher_forced(e)).collect();
        let logits = words
            .par_iter()
            .map(|w| t.forward(&w.0, &w.1).map(|tape| tape.logits.concat()))
            .collect::<Result<_, ModelError>>()?;
        Ok(TeacherWords {
            words,
            logits,
            symbols: t.s.output_symbols.clone(),
        })
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there are no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The first `n` words (all when fewer).
    pub fn first(&self, n: usize) -> TeacherWords {
        let n = n.min(self.words.len());
        TeacherWords {
            words: self.words[..n].to_vec(),
            logits: self.logits[..n].to_vec(),
            symbols: self.symbols.clone(),
        }
    }
}

/// The distillation loss of one word (summed over its decoder steps), with the
/// right-symbol log-probabilities and hits, and the logit gradients; `teacher` holds
/// the teacher's logits of every step, row after row.
fn word_loss(
    student: &[Vec<f32>],
    teacher: &[f32],
    targets: &[usize],
    loss: &Distillation,
) -> (f64, f64, usize, Vec<Vec<f32>>) {
    let mut total = (0.0, 0.0, 0usize, Vec::with_capacity(targets.len()));
    let classes = student.first().map_or(1, Vec::len).max(1);
    for ((z, t), &y) in student.iter().zip(teacher.chunks(classes)).zip(targets) {
        let (l, d) = loss.loss(z, t, z.len(), Some(y));
        total.0 += l;
        total.1 += log_prob(z, y);
        let best = Array::new(vec![z.len()], z.clone()).and_then(|a| a.argmax());
        total.2 += usize::from(best == Some(y));
        total.3.push(d);
    }
    total
}

/// Fine-tunes the encoder-decoder `student` toward `teacher` on the words `fit`
/// (teacher-forced, with hard labels from the reference pronunciations), choosing
/// learning rate and epoch on `valid` (mean distillation loss per word); the shared
/// loop of [`crate::finetune::train`]. Words with a phoneme the model does not know
/// are left out.
pub fn finetune_seq2seq(
    student: &Model,
    teacher: &Model,
    fit: &[Entry],
    valid: &[Entry],
    opts: &FinetuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, FinetuneReport), ModelError> {
    let fit_w = TeacherWords::new(teacher, fit)?;
    let valid_w = TeacherWords::new(teacher, valid)?;
    finetune_seq2seq_on(student, &fit_w, &valid_w, opts, progress)
}

/// [`finetune_seq2seq`] on words whose teacher logits are already computed.
pub fn finetune_seq2seq_on(
    student: &Model,
    fit_w: &TeacherWords,
    valid_w: &TeacherWords,
    opts: &FinetuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<(Model, FinetuneReport), ModelError> {
    let start = Seq2SeqTrainable::new(student)?;
    check_options(&student.name, opts)?;
    for w in [fit_w, valid_w] {
        if w.symbols != start.s.output_symbols {
            return Err(ModelError::Format {
                path: student.name.clone(),
                reason: "the teacher's output symbols differ from the student's".to_string(),
            });
        }
    }
    if opts.epochs > 0 && (fit_w.is_empty() || valid_w.is_empty()) {
        return Err(ModelError::Format {
            path: student.name.clone(),
            reason: format!(
                "fine-tuning needs training and validation words, got {} and {}",
                fit_w.len(),
                valid_w.len()
            ),
        });
    }
    let loss = &opts.distillation;
    let grad = |net: &Seq2SeqTrainable, chunk: &[(usize, [u64; 2])], g: &mut [Vec<f32>]| {
        let words: Vec<(&[usize], &[usize])> = chunk
            .iter()
            .map(|&(i, _)| (&fit_w.words[i].0[..], &fit_w.words[i].1[..]))
            .collect();
        let tape = net.forward_batch(&words)?;
        let mut l = 0.0;
        let mut d = Vec::with_capacity(chunk.len());
        for (b, &(i, _)) in chunk.iter().enumerate() {
            let (wl, _, _, wd) = word_loss(
                &tape.word_logits(b),
                &fit_w.logits[i],
                &fit_w.words[i].2,
                loss,
            );
            l += wl;
            d.push(wd);
        }
        net.backward_batch(&tape, &d, g)?;
        Ok(l)
    };
    let check = |net: &Seq2SeqTrainable| -> Result<Validation, ModelError> {
        let idx: Vec<usize> = (0..valid_w.len()).collect();
        let per: Vec<(f64, f64, usize, usize)> = idx
            .par_chunks(WORDS_PER_PASS)
            .map(|chunk| {
                let words: Vec<(&[usize], &[usize])> = chunk
                    .iter()
                    .map(|&i| (&valid_w.words[i].0[..], &valid_w.words[i].1[..]))
                    .collect();
                let tape = net.forward_batch(&words)?;
                Ok(chunk
                    .iter()
                    .enumerate()
                    .map(|(b, &i)| {
                        let w = &valid_w.words[i];
                        let (l, lp, hits, _) =
                            word_loss(&tape.word_logits(b), &valid_w.logits[i], &w.2, loss);
                        (l, lp, hits, w.2.len())
                    })
                    .collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>, ModelError>>()?
            .into_iter()
            .flatten()
            .collect();
        let n = per.len().max(1) as f64;
        let steps = per.iter().map(|p| p.3).sum::<usize>().max(1) as f64;
        let mean_loss = per.iter().map(|p| p.0).sum::<f64>() / n;
        Ok(Validation {
            score: -mean_loss,
            loss: mean_loss,
            log_prob: Some(per.iter().map(|p| p.1).sum::<f64>() / steps),
            top1: Some(per.iter().map(|p| p.2).sum::<usize>() as f64 / steps),
        })
    };
    progress(&format!(
        "fine-tune: {} trained values, {} training and {} validation words (teacher-forced; \
         log-prob and top-1 per phoneme)",
        start.trained_values(),
        fit_w.len(),
        valid_w.len()
    ));
    let (net, report) = train(
        &start,
        fit_w.len(),
        WORDS_PER_PASS,
        &grad,
        &check,
        opts,
        progress,
    )?;
    let mut out = student.clone();
    out.layers = net.write_back(&student.layers)?;
    Ok((out, report))
}
