//! Accuracy of a model on a data set, with any [`LayerExec`]: sequentially with one
//! executor, or in parallel over samples (rayon) with one executor per worker
//! thread made by a factory (the [`Reference`](crate::Reference) executor is
//! single-threaded, so this is how a whole data set is scored quickly).

use crate::data::cmudict::Entry;
use crate::data::mnist::Mnist;
use crate::error::ModelError;
use crate::eval::run_graph;
use crate::exec::LayerExec;
use crate::metrics::{G2pScore, Top1};
use crate::{Array, Body, Model};
use rayon::prelude::*;

/// The logits of a graph model for one input.
pub fn logits(model: &Model, input: &Array, exec: &mut dyn LayerExec) -> Result<Array, ModelError> {
    match &model.body {
        Body::Graph(g) => run_graph(g, &model.layers, input, exec),
        Body::Seq2Seq(_) => Err(ModelError::Format {
            path: model.name.clone(),
            reason: "an encoder-decoder model does not classify images".to_string(),
        }),
    }
}

/// The predicted class (argmax of the logits) of image `i`.
fn classify_one(
    model: &Model,
    data: &Mnist,
    i: usize,
    exec: &mut dyn LayerExec,
) -> Result<usize, ModelError> {
    let x = data.input(i).ok_or_else(|| ModelError::Format {
        path: "data".to_string(),
        reason: format!("no image {i}"),
    })?;
    logits(model, &x, exec)?
        .argmax()
        .ok_or_else(|| ModelError::exec(&model.name, "empty logits"))
}

fn score(data: &Mnist, predictions: &[usize]) -> Top1 {
    Top1 {
        correct: predictions
            .iter()
            .zip(&data.labels)
            .filter(|(p, l)| **p == usize::from(**l))
            .count(),
        total: predictions.len(),
    }
}

/// The predicted class of every image, one at a time.
pub fn mnist_predictions(
    model: &Model,
    data: &Mnist,
    exec: &mut dyn LayerExec,
) -> Result<Vec<usize>, ModelError> {
    (0..data.len())
        .map(|i| classify_one(model, data, i, exec))
        .collect()
}

/// [`mnist_predictions`] in parallel over images, with one executor per worker
/// thread from `new_exec`.
pub fn mnist_predictions_par<E: LayerExec>(
    model: &Model,
    data: &Mnist,
    new_exec: impl Fn() -> E + Sync + Send,
) -> Result<Vec<usize>, ModelError> {
    (0..data.len())
        .into_par_iter()
        .map_init(&new_exec, |exec, i| classify_one(model, data, i, exec))
        .collect()
}

/// Top-1 accuracy of an image classifier on MNIST images, one at a time.
pub fn mnist(model: &Model, data: &Mnist, exec: &mut dyn LayerExec) -> Result<Top1, ModelError> {
    Ok(score(data, &mnist_predictions(model, data, exec)?))
}

/// [`mnist`] in parallel over images, with one executor per worker thread from
/// `new_exec`.
pub fn mnist_par<E: LayerExec>(
    model: &Model,
    data: &Mnist,
    new_exec: impl Fn() -> E + Sync + Send,
) -> Result<Top1, ModelError> {
    Ok(score(data, &mnist_predictions_par(model, data, new_exec)?))
}

/// The phonemes predicted for every word, in parallel over words, with one
/// executor per worker thread from `new_exec`.
pub fn g2p_predictions_par<E: LayerExec>(
    model: &Model,
    words: &[Entry],
    new_exec: impl Fn() -> E + Sync + Send,
) -> Result<Vec<Vec<String>>, ModelError> {
    words
        .par_iter()
        .map_init(&new_exec, |exec, e| {
            crate::zoo::g2p::predict(model, &e.word, exec)
        })
        .collect()
}

fn g2p_score(words: &[Entry], predictions: &[Vec<String>]) -> G2pScore {
    predictions
        .iter()
        .zip(words)
        .fold(G2pScore::default(), |acc, (p, e)| {
            acc.merge(G2pScore::of(p, &e.phonemes))
        })
}

/// Word accuracy and phoneme error rate of a grapheme-to-phoneme model, one word
/// at a time.
pub fn g2p(
    model: &Model,
    words: &[Entry],
    exec: &mut dyn LayerExec,
) -> Result<G2pScore, ModelError> {
    let predictions = words
        .iter()
        .map(|e| crate::zoo::g2p::predict(model, &e.word, exec))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(g2p_score(words, &predictions))
}

/// [`g2p`] in parallel over words, with one executor per worker thread from
/// `new_exec`.
pub fn g2p_par<E: LayerExec>(
    model: &Model,
    words: &[Entry],
    new_exec: impl Fn() -> E + Sync + Send,
) -> Result<G2pScore, ModelError> {
    Ok(g2p_score(
        words,
        &g2p_predictions_par(model, words, new_exec)?,
    ))
}
