//! A whole model as one standalone C program, for running where grim itself does not
//! run: under qemu-aarch64 or on a phone over adb (static aarch64 binary), or on the
//! host.
//!
//! The program holds every layer's scheduled kernel and the glue ops, specialised to
//! the model's static shapes. Its weights (every layer's weight buffers, BCR index
//! arrays included, and embeddings) are a separate raw file, so the C stays small.
//!
//! Command line: `PROGRAM WEIGHTS INPUT OUTPUT REPEAT`.
//! - Graph models: `INPUT` holds samples of the input's element count (`f32`); the
//!   outputs of every sample are written to `OUTPUT` (`f32`).
//! - Encoder-decoder models: `INPUT` holds `int32` records `[len, ids...]`; `OUTPUT`
//!   gets `[len, ids...]` per record.
//! - Then the first sample runs `REPEAT` more times and the program prints
//!   `GRIM-MODEL-TIMING median min` in seconds per inference (nothing when 0).
//! - Then `REPEAT` more runs with a clock read around every layer call (kept out of
//!   the timing above): `GRIM-PROFILE-TOTAL total glue` (medians over the runs of the
//!   inference's seconds and of its seconds outside the layers' kernels: pooling,
//!   activations, copies, the decoder's argmax and the clock reads) and per layer
//!   `GRIM-LAYER-TIMING index seconds calls` (the median over the runs of the layer's
//!   seconds per inference, all its calls together, and its calls per inference).
//!
//! Exit status: 0 ok, 2 bad arguments, 3 I/O error or wrong file size, 4 a kernel
//! reported an allocation failure.

use crate::compiled::LayerSchedule;
use crate::error::ModelError;
use crate::graph::{Graph, Op};
use crate::layer::Layer;
use crate::seq2seq::Seq2Seq;
use crate::{Body, Model};
use codegen::c_emit::c_elem_type;
use codegen::Target;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tir::spec::{RnnCell, WorkloadSpec};
use tir::{Function, ParamKind};

/// A generated program and its weights file.
#[derive(Debug, Clone)]
pub struct Program {
    /// The C source.
    pub source: String,
    /// The weights file's bytes.
    pub weights: Vec<u8>,
    /// Elements of one input sample (graph models).
    pub input_len: usize,
    /// Elements of one output (graph models).
    pub output_len: usize,
    /// Output shape of one sample (graph models).
    pub output_shape: Vec<usize>,
}

/// Weight blobs appended to the weights file, with their byte offsets.
#[derive(Default)]
struct Blob {
    bytes: Vec<u8>,
}

impl Blob {
    /// Appends `bytes` at the next 4-byte boundary (so that `float` and `int32_t`
    /// arrays after a `uint8_t` one stay aligned) and returns their offset.
    fn push(&mut self, bytes: &[u8]) -> usize {
        self.bytes.resize(self.bytes.len().next_multiple_of(4), 0);
        let off = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        off
    }

    fn push_f32(&mut self, v: &[f32]) -> usize {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.push(&bytes)
    }
}

/// Emits the kernels and, per layer, a call helper `layer_<i>(in..., out...)` that
/// passes the weights from the weights file.
fn emit_layers(
    layers: &[Layer],
    scheds: &[LayerSchedule],
    prepare: &dyn Fn(&Function) -> Function,
    target: &Target,
    blob: &mut Blob,
    out: &mut String,
) -> Result<(), ModelError> {
    if scheds.len() != layers.len() {
        return Err(ModelError::exec(
            "model",
            "one schedule per layer is needed",
        ));
    }
    for (i, (layer, sched)) in layers.iter().zip(scheds).enumerate() {
        let func = prepare(&sched.func);
        let kernel = format!("layer{i}");
        out.push_str(
            &codegen::c_emit::emit_kernel(&func, &kernel, target)
                .map_err(|e| ModelError::exec(&layer.name, e.to_string()))?,
        );
        let mut params = Vec::new();
        let mut args = Vec::new();
        let (mut ni, mut no) = (0, 0);
        for p in &func.params {
            match p.kind {
                ParamKind::Input => {
                    params.push(format!("const float* in{ni}"));
                    args.push(format!("in{ni}"));
                    ni += 1;
                }
                ParamKind::Output => {
                    params.push(format!("float* out{no}"));
                    args.push(format!("out{no}"));
                    no += 1;
                }
                ParamKind::Weight => {
                    let t = sched.weights.get(&p.name).ok_or_else(|| {
                        ModelError::exec(&layer.name, format!("no data for `{}`", p.name))
                    })?;
                    if t.dtype() != p.dtype || t.len() != p.len() {
                        return Err(ModelError::exec(
                            &layer.name,
                            format!("weight `{}` does not fit its parameter", p.name),
                        ));
                    }
                    let off = blob.push(&t.to_le_bytes());
                    args.push(format!("(const {}*)(grim_w + {off})", c_elem_type(p.dtype)));
                }
            }
        }
        let _ = writeln!(
            out,
            "static void layer_{i}({}) {{\n  const double t0 = grim_prof ? grim_now() : 0.0;\n  if ({}({}) != 0) exit(4);\n  if (grim_prof) {{ grim_prof_t[{i}] += grim_now() - t0; grim_prof_n[{i}] += 1; }}\n}}\n",
            params.join(", "),
            codegen::c_emit::kernel_symbol(&kernel),
            args.join(", ")
        );
    }
    Ok(())
}

fn transpose(out: &mut String, src: &str, dst: &str, rows: usize, cols: usize) {
    let _ = writeln!(
        out,
        "  for (int r = 0; r < {rows}; ++r) for (int c = 0; c < {cols}; ++c) {dst}[c * {rows} + r] = {src}[r * {cols} + c];"
    );
}

/// Emits the body of `static void grim_infer(const float* x, float* y)` for a graph.
fn emit_graph(
    model: &Model,
    g: &Graph,
    out: &mut String,
) -> Result<(usize, usize, Vec<usize>), ModelError> {
    let values = crate::shape::graph_shapes(g, &model.layers)?;
    let shape = |n: &str| values.get(n).cloned().unwrap_or_default();
    let len = |n: &str| values.get(n).map_or(0, |s| s.iter().product::<usize>());
    let names: Vec<&String> = values.keys().collect();
    let ident: BTreeMap<&str, String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), format!("v{i}")))
        .collect();
    let id = |n: &str| {
        ident
            .get(n)
            .cloned()
            .unwrap_or_else(|| "v_missing".to_string())
    };
    for n in &names {
        if **n != g.input {
            let _ = writeln!(out, "static float {}[{}];", id(n), len(n).max(1));
        }
    }
    let _ = writeln!(out, "static void grim_infer(const float* x, float* y) {{");
    let _ = writeln!(out, "  const float* {} = x;", id(&g.input));
    for node in &g.nodes {
        let x = node.inputs.first().map(|s| s.as_str()).unwrap_or("");
        let y = node.outputs.first().map(|s| s.as_str()).unwrap_or("");
        let (xs, ys) = (shape(x), shape(y));
        let (xi, yi) = (id(x), id(y));
        let _ = writeln!(out, "  /* {} ({}) */", node.name, node.op.name());
        match &node.op {
            Op::Fc { layer } => {
                let WorkloadSpec::Fc(s) = &model.layers[*layer].spec else {
                    return Err(ModelError::exec(&node.name, "not an FC layer"));
                };
                if s.n == 1 {
                    let _ = writeln!(out, "  layer_{layer}({xi}, {yi});");
                } else {
                    let _ = writeln!(out, "  {{ static float t[{}], u[{}];", s.k * s.n, s.m * s.n);
                    transpose(out, &xi, "t", s.n, s.k);
                    let _ = writeln!(out, "  layer_{layer}(t, u);");
                    transpose(out, "u", &yi, s.m, s.n);
                    let _ = writeln!(out, "  }}");
                }
            }
            Op::Conv { layer } => {
                let _ = writeln!(out, "  layer_{layer}({xi}, {yi});");
            }
            Op::Rnn { layer } => {
                let WorkloadSpec::Rnn(s) = &model.layers[*layer].spec else {
                    return Err(ModelError::exec(&node.name, "not an RNN layer"));
                };
                if s.batch != 1 {
                    return Err(ModelError::exec(
                        &node.name,
                        "standalone programs run RNN layers with batch 1",
                    ));
                }
                let seq = xs.first().copied().unwrap_or(0);
                let hid = s.hidden;
                let lstm = s.cell == RnnCell::Lstm;
                let _ = writeln!(
                    out,
                    "  {{ static float h[{hid}], c[{hid}], hn[{hid}], cn[{hid}];"
                );
                let _ = writeln!(out, "  memset(h, 0, sizeof h); memset(c, 0, sizeof c);");
                let _ = writeln!(out, "  for (int t = 0; t < {seq}; ++t) {{");
                if lstm {
                    let _ = writeln!(
                        out,
                        "    layer_{layer}({xi} + t * {}, h, c, hn, cn);",
                        s.input
                    );
                    let _ = writeln!(out, "    memcpy(c, cn, sizeof c);");
                } else {
                    let _ = writeln!(out, "    layer_{layer}({xi} + t * {}, h, hn);", s.input);
                }
                let _ = writeln!(out, "    memcpy(h, hn, sizeof h);");
                let _ = writeln!(out, "    memcpy({yi} + t * {hid}, h, sizeof h);");
                let _ = writeln!(out, "  }}");
                if let Some(last) = node.outputs.get(1) {
                    let _ = writeln!(out, "  memcpy({}, h, sizeof h);", id(last));
                }
                let _ = writeln!(out, "  }}");
            }
            Op::Relu | Op::Sigmoid | Op::Tanh => {
                let f = match node.op {
                    Op::Relu => "v > 0.0f ? v : 0.0f",
                    Op::Sigmoid => "grim_sigmoid(v)",
                    _ => "tanhf(v)",
                };
                let _ = writeln!(
                    out,
                    "  for (int i = 0; i < {}; ++i) {{ float v = {xi}[i]; {yi}[i] = {f}; }}",
                    len(x)
                );
            }
            Op::MaxPool {
                kernel,
                stride,
                pad,
            }
            | Op::AvgPool {
                kernel,
                stride,
                pad,
            } => {
                let max = matches!(node.op, Op::MaxPool { .. });
                let (planes, h, w) = (xs[0] * xs[1], xs[2], xs[3]);
                let (oh, ow) = (ys[2], ys[3]);
                let _ = writeln!(out, "  for (int p = 0; p < {planes}; ++p) for (int oy = 0; oy < {oh}; ++oy) for (int ox = 0; ox < {ow}; ++ox) {{");
                let _ = writeln!(
                    out,
                    "    float acc = {}; int cnt = 0;",
                    if max { "-INFINITY" } else { "0.0f" }
                );
                let _ = writeln!(out, "    for (int i = 0; i < {}; ++i) {{ int iy = oy * {} + i - {}; if (iy < 0 || iy >= {h}) continue;", kernel[0], stride[0], pad[0]);
                let _ = writeln!(out, "      for (int j = 0; j < {}; ++j) {{ int ix = ox * {} + j - {}; if (ix < 0 || ix >= {w}) continue;", kernel[1], stride[1], pad[1]);
                let upd = if max {
                    "acc = v > acc ? v : acc;"
                } else {
                    "acc += v;"
                };
                let _ = writeln!(
                    out,
                    "        float v = {xi}[(p * {h} + iy) * {w} + ix]; {upd} ++cnt; }} }}"
                );
                let fin = if max {
                    "acc".to_string()
                } else {
                    "acc / (float)(cnt > 0 ? cnt : 1)".to_string()
                };
                let _ = writeln!(out, "    {yi}[(p * {oh} + oy) * {ow} + ox] = {fin};\n  }}");
            }
            Op::GlobalAvgPool => {
                let (planes, hw) = (xs[0] * xs[1], xs[2] * xs[3]);
                let _ = writeln!(out, "  for (int p = 0; p < {planes}; ++p) {{ float s = 0.0f; for (int i = 0; i < {hw}; ++i) s += {xi}[p * {hw} + i]; {yi}[p] = s / {hw}.0f; }}");
            }
            Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity => {
                let _ = writeln!(out, "  memcpy({yi}, {xi}, {} * sizeof(float));", len(x));
            }
            Op::Softmax { axis } => {
                let l = xs[*axis];
                let inner: usize = xs[axis + 1..].iter().product();
                let outer: usize = xs[..*axis].iter().product();
                let _ = writeln!(
                    out,
                    "  for (int o = 0; o < {outer}; ++o) for (int i = 0; i < {inner}; ++i) {{"
                );
                let _ = writeln!(out, "    float m = -INFINITY, s = 0.0f;");
                let _ = writeln!(out, "    for (int k = 0; k < {l}; ++k) {{ float v = {xi}[(o * {l} + k) * {inner} + i]; m = v > m ? v : m; }}");
                let _ = writeln!(out, "    for (int k = 0; k < {l}; ++k) {{ int at = (o * {l} + k) * {inner} + i; {yi}[at] = expf({xi}[at] - m); s += {yi}[at]; }}");
                let _ = writeln!(out, "    for (int k = 0; k < {l}; ++k) {yi}[(o * {l} + k) * {inner} + i] /= s;\n  }}");
            }
            Op::Add => {
                let b = node.inputs.get(1).map(|s| s.as_str()).unwrap_or("");
                let (bi, bl) = (id(b), len(b));
                let idx = if bl == len(x) {
                    "i".to_string()
                } else if bl == 1 {
                    "0".to_string()
                } else {
                    format!("(i / {}) % {}", xs[2] * xs[3], xs[1])
                };
                let _ = writeln!(
                    out,
                    "  for (int i = 0; i < {}; ++i) {yi}[i] = {xi}[i] + {bi}[{idx}];",
                    len(x)
                );
            }
            Op::Concat { axis } => {
                let outer: usize = xs[..*axis].iter().product();
                let _ = writeln!(out, "  {{ int at = 0; for (int o = 0; o < {outer}; ++o) {{");
                for inp in &node.inputs {
                    let s = shape(inp);
                    let chunk: usize = s[*axis..].iter().product();
                    let _ = writeln!(out, "    memcpy({yi} + at, {} + o * {chunk}, {chunk} * sizeof(float)); at += {chunk};", id(inp));
                }
                let _ = writeln!(out, "  }} }}");
            }
        }
    }
    let _ = writeln!(
        out,
        "  memcpy(y, {}, {} * sizeof(float));\n}}",
        id(&g.output),
        len(&g.output)
    );
    Ok((
        g.input_shape.iter().product(),
        len(&g.output),
        shape(&g.output),
    ))
}

/// Emits `static int grim_decode(const int32_t* ids, int n, int32_t* out, int
/// all_steps)` for an encoder-decoder (`all_steps`: do not stop at the end symbol).
fn emit_seq2seq(
    model: &Model,
    s: &Seq2Seq,
    blob: &mut Blob,
    out: &mut String,
) -> Result<(), ModelError> {
    s.validate(&model.layers)?;
    let WorkloadSpec::Rnn(enc) = &model.layers[s.encoder].spec else {
        return Err(ModelError::exec("encoder", "not a GRU layer"));
    };
    let hid = enc.hidden;
    let ee = blob.push_f32(s.enc_emb.data());
    let de = blob.push_f32(s.dec_emb.data());
    let (ew, dw) = (s.enc_emb.shape()[1], s.dec_emb.shape()[1]);
    let vocab = s.output_symbols.len();
    let _ = writeln!(
        out,
        "static int grim_decode(const int32_t* ids, int n, int32_t* res, int all_steps) {{
  float h[{hid}], hn[{hid}], logits[{vocab}];
  const float* ee = (const float*)(grim_w + {ee});
  const float* de = (const float*)(grim_w + {de});
  memset(h, 0, sizeof h);
  for (int t = 0; t < n; ++t) {{
    int s = ids[t]; if (s < 0 || s >= {n_in}) s = {unk};
    layer_{enc}(ee + s * {ew}, h, hn); memcpy(h, hn, sizeof h);
  }}
  int prev = {start}, count = 0;
  for (int step = 0; step < {max}; ++step) {{
    layer_{dec}(de + prev * {dw}, h, hn); memcpy(h, hn, sizeof h);
    layer_{fc}(h, logits);
    int best = 0; for (int k = 1; k < {vocab}; ++k) if (logits[k] > logits[best]) best = k;
    if (best == {end} && !all_steps) break;
    res[count++] = best; prev = best;
  }}
  return count;
}}",
        n_in = s.input_symbols.len(),
        unk = s.input_unknown,
        enc = s.encoder,
        dec = s.decoder,
        fc = s.output,
        start = s.start,
        end = s.end,
        max = s.max_len,
    );
    Ok(())
}

const MAIN_COMMON: &str = r#"
#include <stdio.h>
#include <string.h>
#include <time.h>
static double grim_now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }
static int grim_cmp(const void* a, const void* b) { double x = *(const double*)a, y = *(const double*)b; return (x > y) - (x < y); }
static unsigned char* grim_read(const char* path, long* size) {
  FILE* f = fopen(path, "rb"); if (!f) return 0;
  if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return 0; }
  long n = ftell(f); if (n < 0) { fclose(f); return 0; }
  rewind(f);
  unsigned char* b = (unsigned char*)malloc(n > 0 ? (size_t)n : 1);
  if (!b || (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)) { fclose(f); free(b); return 0; }
  fclose(f); *size = n; return b;
}
"#;

/// Generates the program for `model` with one schedule per layer (see
/// [`crate::compiled::schedules`]), each passed through `prepare` (the compile
/// pipeline), for `target` (`host` or `aarch64-neon:MCPU`).
pub fn generate(
    model: &Model,
    scheds: &[LayerSchedule],
    prepare: &dyn Fn(&Function) -> Function,
    target: &Target,
) -> Result<Program, ModelError> {
    let mut blob = Blob::default();
    let mut src = codegen::c_emit::prelude(target);
    src.push_str(MAIN_COMMON);
    src.push_str("static const unsigned char* grim_w;\n");
    let n_layers = model.layers.len().max(1);
    let _ = writeln!(
        src,
        "static int grim_prof = 0;\nstatic double grim_prof_t[{n_layers}];\nstatic long grim_prof_n[{n_layers}];"
    );
    emit_layers(&model.layers, scheds, prepare, target, &mut blob, &mut src)?;
    let (mut input_len, mut output_len, mut output_shape) = (0, 0, Vec::new());
    let main = match &model.body {
        Body::Graph(g) => {
            (input_len, output_len, output_shape) = emit_graph(model, g, &mut src)?;
            format!(
                r#"
int main(int argc, char** argv) {{
  if (argc != 5) {{ fprintf(stderr, "usage: %s WEIGHTS INPUT OUTPUT REPEAT\n", argv[0]); return 2; }}
  long wn = 0, xn = 0; int repeat = atoi(argv[4]);
  grim_w = grim_read(argv[1], &wn); if (!grim_w || wn != {wbytes}L) {{ fprintf(stderr, "weights file: wrong size\n"); return 3; }}
  float* x = (float*)grim_read(argv[2], &xn);
  if (!x || xn == 0 || xn % ({inl} * 4) != 0) {{ fprintf(stderr, "input file: not a whole number of samples\n"); return 3; }}
  long samples = xn / ({inl} * 4);
  float* y = (float*)calloc((size_t)samples * {outl}, sizeof(float));
  FILE* f = fopen(argv[3], "wb"); if (!y || !f) return 3;
  for (long s = 0; s < samples; ++s) grim_infer(x + s * {inl}, y + s * {outl});
  if (fwrite(y, sizeof(float), (size_t)samples * {outl}, f) != (size_t)samples * {outl}) return 3;
  fclose(f);
  if (repeat > 0) {{
    double* t = (double*)malloc(sizeof(double) * repeat);
    for (int r = 0; r < repeat; ++r) {{ double t0 = grim_now(); grim_infer(x, y); t[r] = grim_now() - t0; }}
    qsort(t, repeat, sizeof(double), grim_cmp);
    printf("GRIM-MODEL-TIMING %.9e %.9e\n", t[repeat / 2], t[0]);
    double* pt = grim_profile_start(repeat);
    for (int r = 0; r < repeat; ++r) {{ double t0 = grim_profile_begin(); grim_infer(x, y); grim_profile_end(pt, r, repeat, t0); }}
    grim_profile_report(pt, repeat);
  }}
  return 0;
}}
"#,
                wbytes = blob.bytes.len(),
                inl = input_len,
                outl = output_len
            )
        }
        Body::Seq2Seq(s) => {
            emit_seq2seq(model, s, &mut blob, &mut src)?;
            format!(
                r#"
int main(int argc, char** argv) {{
  if (argc != 5) {{ fprintf(stderr, "usage: %s WEIGHTS INPUT OUTPUT REPEAT\n", argv[0]); return 2; }}
  long wn = 0, xn = 0; int repeat = atoi(argv[4]);
  grim_w = grim_read(argv[1], &wn); if (!grim_w || wn != {wbytes}L) {{ fprintf(stderr, "weights file: wrong size\n"); return 3; }}
  int32_t* x = (int32_t*)grim_read(argv[2], &xn);
  if (!x || xn % 4 != 0) {{ fprintf(stderr, "input file: bad size\n"); return 3; }}
  long words = xn / 4, at = 0;
  FILE* f = fopen(argv[3], "wb"); if (!f) return 3;
  int32_t res[{max}];
  while (at < words) {{
    int n = x[at]; if (n < 0 || at + 1 + n > words) {{ fprintf(stderr, "input file: bad record\n"); return 3; }}
    int32_t c = grim_decode(x + at + 1, n, res, 0);
    fwrite(&c, 4, 1, f); fwrite(res, 4, (size_t)c, f);
    at += 1 + n;
  }}
  fclose(f);
  if (repeat > 0 && words > 0) {{
    double* t = (double*)malloc(sizeof(double) * repeat);
    for (int r = 0; r < repeat; ++r) {{ double t0 = grim_now(); grim_decode(x + 1, x[0], res, 1); t[r] = grim_now() - t0; }}
    qsort(t, repeat, sizeof(double), grim_cmp);
    printf("GRIM-MODEL-TIMING %.9e %.9e\n", t[repeat / 2], t[0]);
    double* pt = grim_profile_start(repeat);
    for (int r = 0; r < repeat; ++r) {{ double t0 = grim_profile_begin(); grim_decode(x + 1, x[0], res, 1); grim_profile_end(pt, r, repeat, t0); }}
    grim_profile_report(pt, repeat);
  }}
  return 0;
}}
"#,
                wbytes = blob.bytes.len(),
                max = s.max_len.max(1)
            )
        }
    };
    // Per run: the layers' seconds (rows of `repeat`, one per layer), then the
    // inference's total and its glue.
    let _ = writeln!(
        src,
        "static double* grim_profile_start(int repeat) {{
  double* pt = (double*)calloc((size_t)repeat * ({n_layers} + 2), sizeof(double));
  if (!pt) exit(4);
  grim_prof = 1;
  return pt;
}}
static double grim_profile_begin(void) {{
  memset(grim_prof_t, 0, sizeof grim_prof_t);
  return grim_now();
}}
static void grim_profile_end(double* pt, int r, int repeat, double t0) {{
  double total = grim_now() - t0, layers = 0.0;
  for (int i = 0; i < {n_layers}; ++i) {{ pt[i * repeat + r] = grim_prof_t[i]; layers += grim_prof_t[i]; }}
  pt[{n_layers} * repeat + r] = total;
  pt[({n_layers} + 1) * repeat + r] = total - layers;
}}
static double grim_median(double* v, int n) {{
  qsort(v, (size_t)n, sizeof(double), grim_cmp);
  return v[n / 2];
}}
static void grim_profile_report(double* pt, int repeat) {{
  grim_prof = 0;
  printf(\"GRIM-PROFILE-TOTAL %.9e %.9e\\n\", grim_median(pt + {n_layers} * repeat, repeat), grim_median(pt + ({n_layers} + 1) * repeat, repeat));
  for (int i = 0; i < {n_layers}; ++i)
    printf(\"GRIM-LAYER-TIMING %d %.9e %.3f\\n\", i, grim_median(pt + i * repeat, repeat), (double)grim_prof_n[i] / repeat);
  free(pt);
}}"
    );
    src.push_str(&main);
    Ok(Program {
        source: src,
        weights: blob.bytes,
        input_len,
        output_len,
        output_shape,
    })
}

/// What one run of a program gave.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The output file's bytes.
    pub output: Vec<u8>,
    /// Median and fastest seconds per inference, when `repeat > 0`.
    pub timing: Option<(f64, f64)>,
    /// Where an inference's time goes, layer by layer, when `repeat > 0`.
    pub profile: Option<Profile>,
}

/// The program's per-layer profile (see the module docs): medians over the profiled
/// runs, so a run disturbed by other work on the machine does not move them.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Seconds per inference of the profiled runs (layers, glue and clock reads).
    pub total: f64,
    /// Seconds per inference outside the layers' kernels (pooling, activations,
    /// copies, argmax, the clock reads).
    pub glue: f64,
    /// Per layer, in layer order.
    pub layers: Vec<LayerTime>,
}

/// One layer's share of an inference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerTime {
    /// Seconds per inference in the layer's kernel (all its calls).
    pub seconds: f64,
    /// Calls per inference (1 for a graph layer; the steps for a recurrent one).
    pub calls: f64,
}

/// The profile printed on a program's standard output (the last total and the layer
/// lines after it), if complete: `None` when a layer index is missing or repeated.
pub fn parse_profile(stdout: &str) -> Option<Profile> {
    let start = stdout.rfind("GRIM-PROFILE-TOTAL ")?;
    let mut lines = stdout[start..].lines();
    let mut head = lines
        .next()?
        .strip_prefix("GRIM-PROFILE-TOTAL ")?
        .split_whitespace();
    let total = head.next()?.parse::<f64>().ok()?;
    let glue = head.next()?.parse::<f64>().ok()?;
    let mut layers = Vec::new();
    for l in lines {
        let Some(rest) = l.strip_prefix("GRIM-LAYER-TIMING ") else {
            continue;
        };
        let mut it = rest.split_whitespace();
        let index = it.next()?.parse::<usize>().ok()?;
        let seconds = it.next()?.parse::<f64>().ok()?;
        let calls = it.next()?.parse::<f64>().ok()?;
        if index != layers.len() {
            return None;
        }
        layers.push(LayerTime { seconds, calls });
    }
    Some(Profile {
        total,
        glue,
        layers,
    })
}

/// Builds `program` for `target` in `dir` and returns the binary's path; the weights
/// file is written next to it as `weights.bin`.
pub fn build(
    program: &Program,
    dir: &std::path::Path,
    target: &Target,
) -> Result<std::path::PathBuf, ModelError> {
    let bin = codegen::toolchain::build_binary(
        &program.source,
        dir,
        target,
        std::time::Duration::from_secs(300),
    )
    .map_err(|e| ModelError::exec("model program", e.to_string()))?;
    let w = dir.join("weights.bin");
    std::fs::write(&w, &program.weights).map_err(|source| ModelError::Io {
        path: w.display().to_string(),
        source,
    })?;
    Ok(bin)
}

/// Runs a built program (natively or under qemu) on `input` (the input file's bytes).
pub fn run(
    bin: &std::path::Path,
    runner: &codegen::toolchain::Runner,
    input: &[u8],
    repeat: usize,
    threads: Option<u32>,
    timeout: std::time::Duration,
) -> Result<RunOutput, ModelError> {
    let dir = bin.parent().unwrap_or(std::path::Path::new("."));
    let io = |p: &std::path::Path| {
        let path = p.display().to_string();
        move |source| ModelError::Io { path, source }
    };
    let (inp, outp) = (dir.join("input.bin"), dir.join("output.bin"));
    std::fs::write(&inp, input).map_err(io(&inp))?;
    let mut cmd = codegen::toolchain::command(bin, runner)
        .map_err(|e| ModelError::exec("model program", e.to_string()))?;
    cmd.arg(dir.join("weights.bin"))
        .arg(&inp)
        .arg(&outp)
        .arg(repeat.to_string());
    if let Some(n) = threads {
        cmd.env("OMP_NUM_THREADS", n.to_string());
    }
    let done = codegen::toolchain::run_with_timeout(&mut cmd, timeout)
        .map_err(io(bin))?
        .ok_or_else(|| ModelError::exec("model program", format!("timed out after {timeout:?}")))?;
    if done.code != Some(0) {
        return Err(ModelError::exec(
            "model program",
            format!(
                "exit {:?} signal {:?}: {}",
                done.code,
                done.signal,
                done.stderr.trim()
            ),
        ));
    }
    let output = std::fs::read(&outp).map_err(io(&outp))?;
    let timing = parse_timing(&done.stdout);
    if repeat > 0 && timing.is_none() {
        return Err(ModelError::exec("model program", "printed no timing line"));
    }
    let profile = parse_profile(&done.stdout);
    Ok(RunOutput {
        output,
        timing,
        profile,
    })
}

/// The `(median, min)` seconds of the last `GRIM-MODEL-TIMING` line of a program's
/// standard output, if any.
pub fn parse_timing(stdout: &str) -> Option<(f64, f64)> {
    stdout.lines().rev().find_map(|l| {
        let mut it = l.strip_prefix("GRIM-MODEL-TIMING ")?.split_whitespace();
        let med = it.next()?.parse::<f64>().ok()?;
        let min = it.next()?.parse::<f64>().ok()?;
        Some((med, min))
    })
}

/// Raw little-endian bytes of `f32` samples.
pub fn f32_bytes(samples: &[&[f32]]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| s.iter().flat_map(|v| v.to_le_bytes()))
        .collect()
}

/// `f32` values of raw little-endian bytes (a trailing partial value is dropped).
pub fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The input file of an encoder-decoder program: `[len, ids...]` per sequence.
pub fn sequences_bytes(seqs: &[Vec<usize>]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in seqs {
        out.extend_from_slice(&(s.len() as i32).to_le_bytes());
        for &id in s {
            out.extend_from_slice(&(id as i32).to_le_bytes());
        }
    }
    out
}

/// Parses an encoder-decoder program's output file; `None` when malformed.
pub fn sequences_from_bytes(bytes: &[u8]) -> Option<Vec<Vec<usize>>> {
    let v: Vec<i32> = bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if bytes.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < v.len() {
        let n = usize::try_from(v[at]).ok()?;
        let ids = v.get(at + 1..at + 1 + n)?;
        out.push(
            ids.iter()
                .map(|&i| usize::try_from(i).ok())
                .collect::<Option<Vec<_>>>()?,
        );
        at += 1 + n;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_incomplete_ones_are_refused() {
        let out = "GRIM-MODEL-TIMING 2e-3 1e-3\nGRIM-PROFILE-TOTAL 3.0e-3 1.5e-3\nGRIM-LAYER-TIMING 0 1.0e-3 1.000\nGRIM-LAYER-TIMING 1 5.0e-4 7.000\n";
        let p = parse_profile(out).unwrap();
        assert_eq!(p.total, 3.0e-3);
        assert_eq!(
            p.layers,
            vec![
                LayerTime {
                    seconds: 1.0e-3,
                    calls: 1.0
                },
                LayerTime {
                    seconds: 5.0e-4,
                    calls: 7.0
                }
            ]
        );
        assert_eq!(p.glue, 1.5e-3);
        // A total line without the glue is incomplete.
        let old = "GRIM-PROFILE-TOTAL 3e-3\nGRIM-LAYER-TIMING 0 1e-3 1\n";
        assert_eq!(parse_profile(old), None);
        assert_eq!(parse_profile("GRIM-MODEL-TIMING 2e-3 1e-3\n"), None);
        // A skipped index, a malformed number.
        let skipped = "GRIM-PROFILE-TOTAL 3e-3 1e-3\nGRIM-LAYER-TIMING 1 1e-3 1\n";
        assert_eq!(parse_profile(skipped), None);
        let bad = "GRIM-PROFILE-TOTAL 3e-3 1e-3\nGRIM-LAYER-TIMING 0 x 1\n";
        assert_eq!(parse_profile(bad), None);
    }
}
