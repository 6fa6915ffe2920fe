//! The GRU grapheme-to-phoneme model of the PyPI package `g2p-en` 2.1.0, from its
//! numpy checkpoint `checkpoint20.npz` (the package itself is never imported: it
//! downloads NLTK data at import).
//!
//! An encoder-decoder ([`Seq2Seq`]) exactly as `G2p.predict` in `g2p_en/g2p.py`:
//! embed the letters (`enc_emb`, 29 x 256) followed by `</s>`, run the encoder GRU
//! (`enc_w_ih` 768 x 256, `enc_w_hh` 768 x 256, biases 768; gates r, z, n with
//! `n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`, as PyTorch and `tir`), start the
//! decoder GRU (`dec_*`) from the encoder's last state with `<s>` (index 2), and
//! take the argmax of `fc` (`fc_w` 74 x 256, `fc_b` 74) until `</s>` (index 3) or 20
//! phonemes.

use super::dense_layer;
use crate::error::ModelError;
use crate::exec::LayerExec;
use crate::load::{npz, Tensors};
use crate::seq2seq::Seq2Seq;
use crate::{Body, Model};
use std::path::Path;

/// The checkpoint's file name in the models folder.
pub const FILE: &str = "checkpoint20.npz";

/// Input symbols, as `G2p.graphemes`.
pub const GRAPHEMES: [&str; 29] = [
    "<pad>", "<unk>", "</s>", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n",
    "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z",
];

/// Output symbols, as `G2p.phonemes` (stressed ARPAbet; note the lone `UW`).
pub const PHONEMES: [&str; 74] = [
    "<pad>", "<unk>", "<s>", "</s>", "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2",
    "AO0", "AO1", "AO2", "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0",
    "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2",
    "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2",
    "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2", "V", "W", "Y",
    "Z", "ZH",
];

/// Most phonemes decoded per word (`G2p.predict`'s loop bound).
pub const MAX_LEN: usize = 20;

/// Loads the model from `dir/checkpoint20.npz`.
pub fn load(dir: &Path) -> Result<Model, ModelError> {
    load_file(&dir.join(FILE))
}

/// Loads the model from a checkpoint file.
pub fn load_file(path: &Path) -> Result<Model, ModelError> {
    from_arrays(&npz::read(path)?)
}

/// Builds the model from the checkpoint's arrays, checking every shape. The
/// embedding and hidden sizes are taken from `enc_emb` and `enc_w_hh`.
pub fn from_arrays(t: &Tensors) -> Result<Model, ModelError> {
    let emb = t.get("enc_emb")?.shape().get(1).copied().unwrap_or(0);
    let hidden = t.get("enc_w_hh")?.shape().get(1).copied().unwrap_or(0);
    let (n_in, n_out) = (GRAPHEMES.len(), PHONEMES.len());
    let gru = |p: &str| {
        dense_layer(
            t,
            if p == "enc" { "encoder" } else { "decoder" },
            &format!("gru:hidden={hidden},input={emb}"),
            &[
                (&format!("{p}_w_ih"), &[3 * hidden, emb]),
                (&format!("{p}_w_hh"), &[3 * hidden, hidden]),
            ],
            &[
                (&format!("{p}_b_ih"), &[3 * hidden]),
                (&format!("{p}_b_hh"), &[3 * hidden]),
            ],
        )
    };
    let layers = vec![
        gru("enc")?,
        gru("dec")?,
        dense_layer(
            t,
            "fc",
            &format!("fc:M={n_out},K={hidden},N=1,bias=true"),
            &[("fc_w", &[n_out, hidden])],
            &[("fc_b", &[n_out])],
        )?,
    ];
    let strings = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let model = Model {
        name: "g2p-en".to_string(),
        layers,
        body: Body::Seq2Seq(Seq2Seq {
            input_symbols: strings(&GRAPHEMES),
            output_symbols: strings(&PHONEMES),
            enc_emb: t.get_shaped("enc_emb", &[n_in, emb])?.clone(),
            dec_emb: t.get_shaped("dec_emb", &[n_out, emb])?.clone(),
            encoder: 0,
            decoder: 1,
            output: 2,
            input_end: 2,
            input_unknown: 1,
            start: 2,
            end: 3,
            max_len: MAX_LEN,
        }),
    };
    model.validate()?;
    Ok(model)
}

/// The phonemes a seq2seq model predicts for `word` (greedy decoding).
pub fn predict(
    model: &Model,
    word: &str,
    exec: &mut dyn LayerExec,
) -> Result<Vec<String>, ModelError> {
    let Body::Seq2Seq(s) = &model.body else {
        return Err(ModelError::Format {
            path: model.name.clone(),
            reason: "not an encoder-decoder model".to_string(),
        });
    };
    let ids = s.predict(&model.layers, &s.encode_word(word), exec)?;
    Ok(ids
        .into_iter()
        .map(|i| s.output_symbols.get(i).cloned().unwrap_or_default())
        .collect())
}
