//! A GRU encoder-decoder with greedy decoding (the g2p model's architecture): embed
//! the input symbols, run the encoder GRU over them, start the decoder GRU from the
//! encoder's last state with the start symbol, and repeatedly take the argmax of the
//! output layer, feeding it back, until the end symbol or `max_len` symbols.

use crate::array::Array;
use crate::error::ModelError;
use crate::exec::LayerExec;
use crate::layer::Layer;
use serde::{Deserialize, Serialize};
use tir::spec::{RnnCell, WorkloadSpec};

/// The wiring of an encoder-decoder model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seq2Seq {
    /// Input symbols (the index is the embedding row).
    pub input_symbols: Vec<String>,
    /// Output symbols (the index is the embedding row and the logit).
    pub output_symbols: Vec<String>,
    /// Encoder embedding `[input symbols, emb]`.
    pub enc_emb: Array,
    /// Decoder embedding `[output symbols, emb]`.
    pub dec_emb: Array,
    /// The encoder GRU layer.
    pub encoder: usize,
    /// The decoder GRU layer.
    pub decoder: usize,
    /// The output FC layer (`M` = output symbols, `K` = hidden, `N` = 1).
    pub output: usize,
    /// Index of the input symbol appended after every input (end of input).
    pub input_end: usize,
    /// Index of the input symbol for unknown characters.
    pub input_unknown: usize,
    /// Output start symbol.
    pub start: usize,
    /// Output end symbol.
    pub end: usize,
    /// Most output symbols per input.
    pub max_len: usize,
}

fn rnn_of<'l>(
    layers: &'l [Layer],
    i: usize,
    what: &str,
) -> Result<&'l tir::spec::RnnSpec, ModelError> {
    match layers.get(i).map(|l| &l.spec) {
        Some(WorkloadSpec::Rnn(s)) if s.cell == RnnCell::Gru && s.batch == 1 => Ok(s),
        _ => Err(ModelError::Format {
            path: "seq2seq".to_string(),
            reason: format!("the {what} (layer {i}) must be a batch-1 GRU layer"),
        }),
    }
}

impl Seq2Seq {
    /// Checks that the layers and embeddings fit together.
    pub fn validate(&self, layers: &[Layer]) -> Result<(), ModelError> {
        let bad = |reason: String| ModelError::Format {
            path: "seq2seq".to_string(),
            reason,
        };
        let enc = rnn_of(layers, self.encoder, "encoder")?;
        let dec = rnn_of(layers, self.decoder, "decoder")?;
        let fc = match layers.get(self.output).map(|l| &l.spec) {
            Some(WorkloadSpec::Fc(s)) if s.n == 1 => s,
            _ => return Err(bad("the output layer must be an N=1 FC layer".to_string())),
        };
        if self.enc_emb.shape() != [self.input_symbols.len(), enc.input] {
            return Err(bad(format!(
                "encoder embedding {:?} does not fit",
                self.enc_emb.shape()
            )));
        }
        if self.dec_emb.shape() != [self.output_symbols.len(), dec.input] {
            return Err(bad(format!(
                "decoder embedding {:?} does not fit",
                self.dec_emb.shape()
            )));
        }
        if dec.hidden != enc.hidden || fc.k != dec.hidden || fc.m != self.output_symbols.len() {
            return Err(bad("hidden sizes / output layer do not match".to_string()));
        }
        let n_in = self.input_symbols.len();
        let n_out = self.output_symbols.len();
        if self.input_end >= n_in
            || self.input_unknown >= n_in
            || self.start >= n_out
            || self.end >= n_out
        {
            return Err(bad("a special symbol index is out of range".to_string()));
        }
        Ok(())
    }

    /// Input symbol indices of a word (unknown characters map to `input_unknown`),
    /// followed by the end symbol.
    pub fn encode_word(&self, word: &str) -> Vec<usize> {
        let mut ids: Vec<usize> = word
            .chars()
            .map(|ch| {
                let s = ch.to_string();
                self.input_symbols
                    .iter()
                    .position(|g| *g == s)
                    .unwrap_or(self.input_unknown)
            })
            .collect();
        ids.push(self.input_end);
        ids
    }

    fn embed(table: &Array, row: usize) -> Vec<f32> {
        let width = table.shape().get(1).copied().unwrap_or(0);
        table
            .data()
            .get(row * width..(row + 1) * width)
            .map(|s| s.to_vec())
            .unwrap_or_default()
    }

    /// Greedy decoding of one input sequence; returns output symbol indices (without
    /// start and end).
    pub fn predict(
        &self,
        layers: &[Layer],
        input: &[usize],
        exec: &mut dyn LayerExec,
    ) -> Result<Vec<usize>, ModelError> {
        let enc = rnn_of(layers, self.encoder, "encoder")?;
        let mut h = vec![0.0f32; enc.hidden];
        for &s in input {
            let x = Self::embed(&self.enc_emb, s);
            h = exec
                .run(layers, self.encoder, &[&x, &h])?
                .into_iter()
                .next()
                .unwrap_or_default();
        }
        let mut out = Vec::new();
        let mut prev = self.start;
        for _ in 0..self.max_len {
            let x = Self::embed(&self.dec_emb, prev);
            h = exec
                .run(layers, self.decoder, &[&x, &h])?
                .into_iter()
                .next()
                .unwrap_or_default();
            let logits = exec
                .run(layers, self.output, &[&h])?
                .into_iter()
                .next()
                .unwrap_or_default();
            let best = Array::new(vec![logits.len()], logits)
                .and_then(|a| a.argmax())
                .ok_or_else(|| ModelError::exec("output", "empty logits"))?;
            if best == self.end {
                break;
            }
            out.push(best);
            prev = best;
        }
        Ok(out)
    }
}
