//! Paired calibration: the inputs every weight matrix of a (partly) pruned model sees
//! on calibration data, each paired with the input the dense model's same matrix saw
//! at the same point of the same sample (a paired [`Gram`]).
//!
//! The sequential refit ([`crate::rates::prune_model`]) refits layer after layer on
//! these pairs, so each refit layer reproduces the *dense* model's outputs from the
//! inputs the pruned layers before it really hand it, undoing part of their error
//! instead of only matching the dense layer on shifted inputs.
//!
//! Per sample, the dense model runs first under a [`Tape`], which records every layer
//! call; the pruned model then runs under a [`PairRecorder`] following that tape call
//! by call. A model whose control flow depends on its outputs (greedy decoding) would
//! leave the tape after its first different decision, so the recorder can force one
//! layer (the decoder's output layer) to return the dense model's recorded outputs:
//! the pruned model then takes the dense model's decisions, while every layer still
//! computes on the pruned model's own states.

use crate::calibrate::{layer_input_vectors, Gram};
use crate::error::ModelError;
use crate::exec::{LayerExec, Reference};
use crate::layer::Layer;
use std::collections::BTreeMap;

/// One layer call of the dense model.
#[derive(Debug, Clone)]
struct Call {
    index: usize,
    inputs: Vec<Vec<f32>>,
    outputs: Vec<Vec<f32>>,
}

/// Runs layers like [`Reference`] and records every call (layer, inputs, outputs),
/// for a [`PairRecorder`] to follow.
#[derive(Debug, Default)]
pub struct Tape {
    reference: Reference,
    calls: Vec<Call>,
}

impl Tape {
    /// The outputs of every call of layer `index`, in call order.
    pub fn outputs_of(&self, index: usize) -> impl Iterator<Item = &[Vec<f32>]> {
        self.calls
            .iter()
            .filter(move |c| c.index == index)
            .map(|c| c.outputs.as_slice())
    }
}

impl LayerExec for Tape {
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let outputs = self.reference.run(layers, index, inputs)?;
        self.calls.push(Call {
            index,
            inputs: inputs.iter().map(|x| x.to_vec()).collect(),
            outputs: outputs.clone(),
        });
        Ok(outputs)
    }
}

/// Runs a pruned model's layers like [`Reference`], following the [`Tape`] of the
/// dense model on the same sample, and adds every weight matrix's input vectors,
/// paired with the dense model's, into paired Gram matrices (see the
/// [module docs](self)).
#[derive(Debug, Default)]
pub struct PairRecorder {
    reference: Reference,
    forced: Option<usize>,
    tape: Vec<Call>,
    next: usize,
    aligned: bool,
    paired_calls: u64,
    unpaired_calls: u64,
    grams: BTreeMap<(usize, usize), Gram>,
}

impl PairRecorder {
    /// A recorder whose layer `forced` (if any) returns the dense model's recorded
    /// outputs instead of its own.
    pub fn new(forced: Option<usize>) -> PairRecorder {
        PairRecorder {
            forced,
            ..PairRecorder::default()
        }
    }

    /// Follows `tape` (the dense model's calls on the sample the pruned model runs
    /// next).
    pub fn follow(&mut self, tape: Tape) {
        self.tape = tape.calls;
        self.next = 0;
        self.aligned = true;
    }

    /// Layer calls paired with the dense model's, and calls that found no partner
    /// (the pruned model left the dense model's sequence of calls).
    pub fn calls(&self) -> (u64, u64) {
        (self.paired_calls, self.unpaired_calls)
    }

    /// The paired Gram matrices by `(layer, matrix)`.
    pub fn into_grams(self) -> BTreeMap<(usize, usize), Gram> {
        self.grams
    }
}

impl LayerExec for PairRecorder {
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let out = self.reference.run(layers, index, inputs)?;
        let partner = Some(self.next)
            .filter(|&n| self.aligned && self.tape.get(n).is_some_and(|c| c.index == index));
        let (Some(pos), Some(layer)) = (partner, layers.get(index)) else {
            self.aligned = false;
            self.unpaired_calls += 1;
            return Ok(out);
        };
        self.next += 1;
        self.paired_calls += 1;
        let call = &self.tape[pos];
        let dense_inputs: Vec<&[f32]> = call.inputs.iter().map(Vec::as_slice).collect();
        for (m, given) in layer.weights.matrices.iter().enumerate() {
            let k = given.shape().1;
            let (mut seen, mut dense) = (Vec::new(), Vec::new());
            layer_input_vectors(layer, m, inputs, &mut |x| seen.push(x.to_vec()));
            layer_input_vectors(layer, m, &dense_inputs, &mut |x| dense.push(x.to_vec()));
            let gram = self
                .grams
                .entry((index, m))
                .or_insert_with(|| Gram::new_paired(k));
            for (x, xd) in seen.iter().zip(&dense) {
                gram.add_pair(x, xd);
            }
        }
        if self.forced == Some(index) {
            return Ok(call.outputs.clone());
        }
        Ok(out)
    }
}
