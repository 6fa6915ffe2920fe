#!/usr/bin/env python3
"""Independent outputs of the two real models, for model/tests/real_models.rs.

Regenerate with (numpy is the only requirement):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy
    bash scripts/fetch-models.sh
    /tmp/venv/bin/python scripts/golden-real-models.py > model/tests/golden/real_models.json

It never imports torch or g2p_en (g2p_en downloads NLTK data at import): the PyTorch
checkpoint is read with Python's own pickle module, whose find_class only allows the
three names a state_dict needs, and the models are written out in numpy:

- MNIST CNN (digit_recognizer/model.py), float64, input (pixel/255 - 0.1307)/0.3081:
  logits of the first 16 images of mnist_5k.csv.gz, and the predicted digit of all
  5000 (float32).
- g2p (G2p.predict of g2p_en/g2p.py, copied below, float32 as in the package): the
  predictions for the first 300 test words and the scores on all 3000 test words of
  model::data::cmudict's split (words sorted by 64-bit FNV-1a of their spelling).
"""
import collections
import gzip
import json
import os
import pickle
import sys
import zipfile

import numpy as np

DIR = os.environ.get("GRIM_MODELS_DIR", os.path.join(os.path.dirname(__file__), "..", "models"))


def load_state_dict(path):
    z = zipfile.ZipFile(path)
    pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    prefix = pkl[: -len("data.pkl")]

    def rebuild(storage, offset, size, stride, requires_grad, hooks, *rest):
        return np.lib.stride_tricks.as_strided(
            storage[offset:], shape=size, strides=[s * 4 for s in stride]
        ).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if (module, name) == ("torch", "FloatStorage"):
                return "FloatStorage"
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")

        def persistent_load(self, pid):
            tag, typ, key, location, numel = pid
            assert tag == "storage" and typ == "FloatStorage"
            data = np.frombuffer(z.read(f"{prefix}data/{key}"), dtype="<f4")
            assert data.size == numel
            return data

    import io

    return Unpickler(io.BytesIO(z.read(pkl))).load()


def conv(x, w, b):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), dtype=x.dtype)
    for i in range(3):
        for j in range(3):
            out += np.einsum("oc,nchw->nohw", w[:, :, i, j], xp[:, :, i : i + h, j : j + wd], optimize=True)
    return out + b[None, :, None, None]


def pool(x):
    n, c, h, w = x.shape
    h2, w2 = h // 2, w // 2
    return x[:, :, : h2 * 2, : w2 * 2].reshape(n, c, h2, 2, w2, 2).max(axis=(3, 5))


def cnn(sd, x):
    t = lambda k: sd[k].astype(x.dtype)
    relu = lambda v: np.maximum(v, 0)
    x = pool(relu(conv(x, t("conv_layers.0.weight"), t("conv_layers.0.bias"))))
    x = pool(relu(conv(x, t("conv_layers.3.weight"), t("conv_layers.3.bias"))))
    x = pool(relu(conv(x, t("conv_layers.6.weight"), t("conv_layers.6.bias"))))
    x = x.reshape(x.shape[0], -1)
    x = relu(x @ t("fc_layers.0.weight").T + t("fc_layers.0.bias"))
    return x @ t("fc_layers.2.weight").T + t("fc_layers.2.bias")


def mnist():
    rows = np.loadtxt(gzip.open(os.path.join(DIR, "mnist_5k.csv.gz")), delimiter=",")
    pixels, labels = rows[:, :-1], rows[:, -1].astype(int)
    x = ((pixels / 255.0 - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)
    sd = load_state_dict(os.path.join(DIR, "handwriting_model.pth"))
    logits16 = cnn(sd, x[:16].astype(np.float64))
    preds = np.concatenate([cnn(sd, x[i : i + 500].astype(np.float32)).argmax(1) for i in range(0, len(x), 500)])
    return {
        "images": len(labels),
        "correct": int((preds == labels).sum()),
        "predictions": "".join(str(p) for p in preds),
        "logits_first_16": [[float(v) for v in row] for row in logits16],
    }


# --- g2p_en/g2p.py (2.1.0), G2p.predict and its helpers, unchanged in substance ---
GRAPHEMES = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")
PHONEMES = ["<pad>", "<unk>", "<s>", "</s>"] + [
    'AA0', 'AA1', 'AA2', 'AE0', 'AE1', 'AE2', 'AH0', 'AH1', 'AH2', 'AO0', 'AO1', 'AO2', 'AW0',
    'AW1', 'AW2', 'AY0', 'AY1', 'AY2', 'B', 'CH', 'D', 'DH', 'EH0', 'EH1', 'EH2', 'ER0', 'ER1',
    'ER2', 'EY0', 'EY1', 'EY2', 'F', 'G', 'HH', 'IH0', 'IH1', 'IH2', 'IY0', 'IY1', 'IY2', 'JH',
    'K', 'L', 'M', 'N', 'NG', 'OW0', 'OW1', 'OW2', 'OY0', 'OY1', 'OY2', 'P', 'R', 'S', 'SH', 'T',
    'TH', 'UH0', 'UH1', 'UH2', 'UW', 'UW0', 'UW1', 'UW2', 'V', 'W', 'Y', 'Z', 'ZH']
g2idx = {g: i for i, g in enumerate(GRAPHEMES)}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def grucell(x, h, w_ih, w_hh, b_ih, b_hh):
    rzn_ih = np.matmul(x, w_ih.T) + b_ih
    rzn_hh = np.matmul(h, w_hh.T) + b_hh
    rz_ih, n_ih = rzn_ih[:, : rzn_ih.shape[-1] * 2 // 3], rzn_ih[:, rzn_ih.shape[-1] * 2 // 3 :]
    rz_hh, n_hh = rzn_hh[:, : rzn_hh.shape[-1] * 2 // 3], rzn_hh[:, rzn_hh.shape[-1] * 2 // 3 :]
    rz = sigmoid(rz_ih + rz_hh)
    r, z = np.split(rz, 2, -1)
    n = np.tanh(n_ih + r * n_hh)
    return (1 - z) * n + z * h


def predict(v, word):
    x = [g2idx.get(c, g2idx["<unk>"]) for c in list(word) + ["</s>"]]
    x = np.take(v["enc_emb"], np.expand_dims(x, 0), axis=0)
    h = np.zeros((1, v["enc_w_hh"].shape[-1]), np.float32)
    for t in range(len(word) + 1):
        h = grucell(x[:, t, :], h, v["enc_w_ih"], v["enc_w_hh"], v["enc_b_ih"], v["enc_b_hh"])
    dec = np.take(v["dec_emb"], [2], axis=0)
    preds = []
    for _ in range(20):
        h = grucell(dec, h, v["dec_w_ih"], v["dec_w_hh"], v["dec_b_ih"], v["dec_b_hh"])
        logits = np.matmul(h, v["fc_w"].T) + v["fc_b"]
        pred = logits.argmax()
        if pred == 3:
            break
        preds.append(pred)
        dec = np.take(v["dec_emb"], [pred], axis=0)
    return [PHONEMES[i] for i in preds]


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a):
        cur = [i + 1]
        for j, y in enumerate(b):
            cur.append(min(prev[j] + (x != y), prev[j + 1] + 1, cur[j] + 1))
        prev = cur
    return prev[-1]


def g2p():
    entries, seen = [], set()
    for line in open(os.path.join(DIR, "cmudict.dict"), encoding="utf-8"):
        content = line.split("#")[0].split()
        if not content or "(" in content[0]:
            continue
        word = content[0]
        if word.isascii() and word.isalpha() and word.islower() and word not in seen:
            seen.add(word)
            entries.append((word, content[1:]))
    test = sorted(entries, key=lambda e: (fnv1a(e[0]), e[0]))[:3000]
    v = dict(np.load(os.path.join(DIR, "checkpoint20.npz")))
    preds = [predict(v, w) for w, _ in test]
    return {
        "lexicon_words": len(entries),
        "words": len(test),
        "exact": sum(p == ref for p, (_, ref) in zip(preds, test)),
        "edits": sum(levenshtein(p, ref) for p, (_, ref) in zip(preds, test)),
        "reference_phonemes": sum(len(ref) for _, ref in test),
        "predictions_first_300": [[w, " ".join(p)] for p, (w, _) in zip(preds[:300], test)],
    }


if __name__ == "__main__":
    json.dump({"mnist": mnist(), "g2p": g2p()}, sys.stdout, indent=1)
    sys.stdout.write("\n")
