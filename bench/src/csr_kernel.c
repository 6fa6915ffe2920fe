/* The plain C sparse baselines of bench/run: CSR SpMM / SpMV kernels (row-parallel with
 * OpenMP) and the plain BCR loop of the issue (per block: gather the kept inputs, dense
 * dot products, scatter; block rows in parallel), compiled with the same compiler and
 * flags as grim's host kernels (cc -O3 -march=native -fopenmp), timed with the same
 * protocol as grim's measurement binary.
 *
 * usage: csr_bench fc   M K N            ROWPTR COLIDX VALS X OUT REPEAT MIN_MS
 *        csr_bench fcbcr M K N GRID_COLS RP RI CP CI VALS X OUT REPEAT MIN_MS
 *        csr_bench conv O C H W KH KW STRIDE PAD ROWPTR COLIDX VALS X OUT REPEAT MIN_MS
 *        csr_bench gru  HIDDEN INPUT     RP_IH CI_IH V_IH RP_HH CI_HH V_HH B_IH B_HH X H OUT REPEAT MIN_MS
 * FC: X is [K, N] row-major, OUT is Y [M, N]. fcbcr: every block of the grid in
 * row-major block order (GRID_COLS per block row, empty ones too); RP/CP offsets of
 * each block's kept global rows RI and columns CI, VALS each block's kept rows x kept
 * columns row-major, one block after the other. conv: X is [C, H, W], OUT [O, OH, OW]
 * (im2col, then CSR x dense; the im2col is timed too). GRU: PyTorch gates r, z, n.
 * Prints `GRIM-TIMING median min mean stddev number repeat` (seconds per call).
 * With REPEAT = 0, MIN_MS is a count: the kernel runs exactly that many more times after
 * the first call and nothing is timed (instruction counting under qemu). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { int rows; const int32_t* rp; const int32_t* ci; const float* v; } csr;

static void* read_file(const char* path, size_t want_bytes) {
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); exit(3); }
  void* p = malloc(want_bytes ? want_bytes : 4);
  if (!p) exit(3);
  if (want_bytes && fread(p, 1, want_bytes, f) != want_bytes) {
    fprintf(stderr, "%s: short read (want %zu bytes)\n", path, want_bytes);
    exit(3);
  }
  fclose(f);
  return p;
}

static size_t file_size(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); exit(3); }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n < 0 ? 0 : (size_t)n;
}

static csr load_csr(int rows, const char* rp, const char* ci, const char* v) {
  csr m;
  m.rows = rows;
  m.rp = (const int32_t*)read_file(rp, 4 * (size_t)(rows + 1));
  size_t nnz = (size_t)m.rp[rows];
  if (file_size(ci) != 4 * nnz || file_size(v) != 4 * nnz) {
    fprintf(stderr, "%s/%s: expected %zu entries\n", ci, v, nnz);
    exit(3);
  }
  m.ci = (const int32_t*)read_file(ci, 4 * nnz);
  m.v = (const float*)read_file(v, 4 * nnz);
  return m;
}

/* Y[M, N] = W · X[K, N] */
static void spmm(const csr* w, const float* restrict x, float* restrict y, int n) {
  if (n == 1) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < w->rows; ++r) {
      float acc = 0.f;
      for (int32_t p = w->rp[r]; p < w->rp[r + 1]; ++p) acc += w->v[p] * x[w->ci[p]];
      y[r] = acc;
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int r = 0; r < w->rows; ++r) {
    float* restrict yr = y + (size_t)r * n;
    for (int j = 0; j < n; ++j) yr[j] = 0.f;
    for (int32_t p = w->rp[r]; p < w->rp[r + 1]; ++p) {
      const float v = w->v[p];
      const float* restrict xr = x + (size_t)w->ci[p] * n;
      for (int j = 0; j < n; ++j) yr[j] += v * xr[j];
    }
  }
}

typedef struct {
  int blocks, grid_cols, max_cols;
  const int32_t *rp, *ri, *cp, *ci;
  const float* v;
  int32_t* voff; /* blocks + 1 offsets into v */
} bcr;

static bcr load_bcr(int blocks, int grid_cols, const char* rp, const char* ri, const char* cp,
                    const char* ci, const char* v) {
  bcr m;
  m.blocks = blocks;
  m.grid_cols = grid_cols;
  m.rp = (const int32_t*)read_file(rp, 4 * (size_t)(blocks + 1));
  m.cp = (const int32_t*)read_file(cp, 4 * (size_t)(blocks + 1));
  if (file_size(ri) != 4 * (size_t)m.rp[blocks] || file_size(ci) != 4 * (size_t)m.cp[blocks]) {
    fprintf(stderr, "%s/%s: sizes do not match the offsets\n", ri, ci);
    exit(3);
  }
  m.ri = (const int32_t*)read_file(ri, 4 * (size_t)m.rp[blocks]);
  m.ci = (const int32_t*)read_file(ci, 4 * (size_t)m.cp[blocks]);
  m.voff = (int32_t*)malloc(4 * (size_t)(blocks + 1));
  if (!m.voff) exit(3);
  m.voff[0] = 0;
  m.max_cols = 1;
  for (int b = 0; b < blocks; ++b) {
    int nr = m.rp[b + 1] - m.rp[b], nc = m.cp[b + 1] - m.cp[b];
    if (nr < 0 || nc < 0) { fprintf(stderr, "%s: offsets decrease\n", rp); exit(3); }
    m.voff[b + 1] = m.voff[b] + nr * nc;
    if (nc > m.max_cols) m.max_cols = nc;
  }
  if (file_size(v) != 4 * (size_t)m.voff[blocks]) {
    fprintf(stderr, "%s: expected %d values\n", v, m.voff[blocks]);
    exit(3);
  }
  m.v = (const float*)read_file(v, 4 * (size_t)m.voff[blocks]);
  return m;
}

/* Y[M, N] = W · X[K, N], block by block: gather, dense dot products, scatter. */
static void bcr_loop(const bcr* w, const float* restrict x, float* restrict y, int m, int n) {
  memset(y, 0, 4 * (size_t)m * n);
  const int brows = w->blocks / w->grid_cols;
#pragma omp parallel for schedule(static)
  for (int br = 0; br < brows; ++br) {
    float xg[w->max_cols * n];
    for (int b = br * w->grid_cols; b < (br + 1) * w->grid_cols; ++b) {
      const int r0 = w->rp[b], nr = w->rp[b + 1] - r0, c0 = w->cp[b], nc = w->cp[b + 1] - c0;
      const float* restrict v = w->v + w->voff[b];
      for (int j = 0; j < nc; ++j)
        for (int t = 0; t < n; ++t) xg[j * n + t] = x[(size_t)w->ci[c0 + j] * n + t];
      for (int i = 0; i < nr; ++i) {
        float* restrict yr = y + (size_t)w->ri[r0 + i] * n;
        for (int t = 0; t < n; ++t) {
          float s = 0.f;
          for (int j = 0; j < nc; ++j) s += v[i * nc + j] * xg[j * n + t];
          yr[t] += s;
        }
      }
    }
  }
}

typedef struct {
  int kind; /* 0 fc, 1 conv, 2 gru, 3 fc with the BCR loop */
  int m, k, n; /* fc */
  int o, c, h, w, kh, kw, stride, pad, oh, ow; /* conv */
  int hidden, input; /* gru */
  csr a, b; /* fc/conv: a; gru: a = W_ih, b = W_hh */
  bcr blk; /* fc with the BCR loop */
  const float *x, *hprev, *b_ih, *b_hh;
  float *y, *cols, *gi, *gh;
} job;

static void run(job* j) {
  if (j->kind == 0) {
    spmm(&j->a, j->x, j->y, j->n);
  } else if (j->kind == 3) {
    bcr_loop(&j->blk, j->x, j->y, j->m, j->n);
  } else if (j->kind == 1) {
    const int P = j->oh * j->ow;
#pragma omp parallel for schedule(static)
    for (int row = 0; row < j->c * j->kh * j->kw; ++row) {
      int c = row / (j->kh * j->kw), ky = row / j->kw % j->kh, kx = row % j->kw;
      float* dst = j->cols + (size_t)row * P;
      for (int oy = 0; oy < j->oh; ++oy) {
        int iy = oy * j->stride + ky - j->pad;
        for (int ox = 0; ox < j->ow; ++ox) {
          int ix = ox * j->stride + kx - j->pad;
          dst[oy * j->ow + ox] = (iy >= 0 && iy < j->h && ix >= 0 && ix < j->w)
            ? j->x[((size_t)c * j->h + iy) * j->w + ix] : 0.f;
        }
      }
    }
    spmm(&j->a, j->cols, j->y, P);
  } else {
    const int H = j->hidden;
    spmm(&j->a, j->x, j->gi, 1);
    spmm(&j->b, j->hprev, j->gh, 1);
    for (int u = 0; u < H; ++u) {
      float r = 1.f / (1.f + expf(-(j->gi[u] + j->b_ih[u] + j->gh[u] + j->b_hh[u])));
      float z = 1.f / (1.f + expf(-(j->gi[H + u] + j->b_ih[H + u] + j->gh[H + u] + j->b_hh[H + u])));
      float nn = tanhf(j->gi[2 * H + u] + j->b_ih[2 * H + u] + r * (j->gh[2 * H + u] + j->b_hh[2 * H + u]));
      j->y[u] = (1.f - z) * nn + z * j->hprev[u];
    }
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  job j;
  memset(&j, 0, sizeof j);
  const char* out_path;
  size_t out_len;
  long repeat;
  double min_ms;
  if (argc == 12 && !strcmp(argv[1], "fc")) {
    j.kind = 0; j.m = atoi(argv[2]); j.k = atoi(argv[3]); j.n = atoi(argv[4]);
    j.a = load_csr(j.m, argv[5], argv[6], argv[7]);
    j.x = (const float*)read_file(argv[8], 4 * (size_t)j.k * j.n);
    out_path = argv[9]; repeat = atol(argv[10]); min_ms = atof(argv[11]);
    out_len = (size_t)j.m * j.n;
  } else if (argc == 15 && !strcmp(argv[1], "fcbcr")) {
    j.kind = 3; j.m = atoi(argv[2]); j.k = atoi(argv[3]); j.n = atoi(argv[4]);
    int grid_cols = atoi(argv[5]);
    size_t rp_bytes = file_size(argv[6]);
    if (grid_cols <= 0 || rp_bytes < 8 || rp_bytes % 4 || (rp_bytes / 4 - 1) % (size_t)grid_cols) {
      fprintf(stderr, "%s: not a whole number of block rows of %d blocks\n", argv[6], grid_cols);
      return 2;
    }
    j.blk = load_bcr((int)(rp_bytes / 4 - 1), grid_cols, argv[6], argv[7], argv[8], argv[9], argv[10]);
    for (int32_t p = 0; p < j.blk.rp[j.blk.blocks]; ++p)
      if (j.blk.ri[p] < 0 || j.blk.ri[p] >= j.m) { fprintf(stderr, "%s: row out of range\n", argv[7]); return 2; }
    for (int32_t p = 0; p < j.blk.cp[j.blk.blocks]; ++p)
      if (j.blk.ci[p] < 0 || j.blk.ci[p] >= j.k) { fprintf(stderr, "%s: column out of range\n", argv[9]); return 2; }
    if (j.n <= 0) { fprintf(stderr, "bad N\n"); return 2; }
    j.x = (const float*)read_file(argv[11], 4 * (size_t)j.k * j.n);
    out_path = argv[12]; repeat = atol(argv[13]); min_ms = atof(argv[14]);
    out_len = (size_t)j.m * j.n;
  } else if (argc == 17 && !strcmp(argv[1], "conv")) {
    j.kind = 1; j.o = atoi(argv[2]); j.c = atoi(argv[3]); j.h = atoi(argv[4]); j.w = atoi(argv[5]);
    j.kh = atoi(argv[6]); j.kw = atoi(argv[7]); j.stride = atoi(argv[8]); j.pad = atoi(argv[9]);
    j.oh = (j.h + 2 * j.pad - j.kh) / j.stride + 1; j.ow = (j.w + 2 * j.pad - j.kw) / j.stride + 1;
    j.a = load_csr(j.o, argv[10], argv[11], argv[12]);
    j.x = (const float*)read_file(argv[13], 4 * (size_t)j.c * j.h * j.w);
    out_path = argv[14]; repeat = atol(argv[15]); min_ms = atof(argv[16]);
    out_len = (size_t)j.o * j.oh * j.ow;
    j.cols = (float*)malloc(4 * (size_t)j.c * j.kh * j.kw * j.oh * j.ow);
    if (!j.cols) return 3;
  } else if (argc == 17 && !strcmp(argv[1], "gru")) {
    j.kind = 2; j.hidden = atoi(argv[2]); j.input = atoi(argv[3]);
    j.a = load_csr(3 * j.hidden, argv[4], argv[5], argv[6]);
    j.b = load_csr(3 * j.hidden, argv[7], argv[8], argv[9]);
    j.b_ih = (const float*)read_file(argv[10], 4 * 3 * (size_t)j.hidden);
    j.b_hh = (const float*)read_file(argv[11], 4 * 3 * (size_t)j.hidden);
    j.x = (const float*)read_file(argv[12], 4 * (size_t)j.input);
    j.hprev = (const float*)read_file(argv[13], 4 * (size_t)j.hidden);
    out_path = argv[14]; repeat = atol(argv[15]); min_ms = atof(argv[16]);
    out_len = (size_t)j.hidden;
    j.gi = (float*)malloc(4 * 3 * (size_t)j.hidden);
    j.gh = (float*)malloc(4 * 3 * (size_t)j.hidden);
    if (!j.gi || !j.gh) return 3;
  } else {
    fprintf(stderr, "usage: see the comment at the top of csr_kernel.c\n");
    return 2;
  }
  if (repeat < 0 || repeat > 100000) { fprintf(stderr, "bad REPEAT\n"); return 2; }
  j.y = (float*)calloc(out_len ? out_len : 1, 4);
  if (!j.y) return 3;
  run(&j);
  FILE* out = fopen(out_path, "wb");
  if (!out) { perror(out_path); return 3; }
  if (fwrite(j.y, 4, out_len, out) != out_len || fclose(out) != 0) return 3;
  if (repeat == 0) { /* counting mode: exactly MIN_MS (as a count) more calls */
    long more = (long)min_ms;
    for (long r = 0; r < more; ++r) run(&j);
    return 0;
  }
  run(&j); /* warm-up */
  long number = 1;
  for (;;) {
    double t0 = now();
    for (long r = 0; r < number; ++r) run(&j);
    if ((now() - t0) * 1000.0 >= min_ms || number >= (1L << 30)) break;
    number *= 2;
  }
  double* s = (double*)malloc(sizeof(double) * (size_t)repeat);
  if (!s) return 3;
  for (long i = 0; i < repeat; ++i) {
    double t0 = now();
    for (long r = 0; r < number; ++r) run(&j);
    s[i] = (now() - t0) / (double)number;
  }
  double mean = 0, var = 0;
  for (long i = 0; i < repeat; ++i) mean += s[i];
  mean /= (double)repeat;
  for (long i = 0; i < repeat; ++i) var += (s[i] - mean) * (s[i] - mean);
  double sd = repeat > 1 ? sqrt(var / (double)(repeat - 1)) : 0.0;
  qsort(s, (size_t)repeat, sizeof(double), cmp);
  double med = repeat % 2 ? s[repeat / 2] : 0.5 * (s[repeat / 2 - 1] + s[repeat / 2]);
  printf("GRIM-TIMING %.9e %.9e %.9e %.9e %ld %ld\n", med, s[0], mean, sd, number, repeat);
  return 0;
}
