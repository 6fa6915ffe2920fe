/* The machine's ceilings for the roofline of bench/run (`grim-bench ceilings`): the
   peak rate of vector multiply-adds and the read bandwidth at a few working-set sizes,
   at the thread count OMP_NUM_THREADS gives (each thread its own accumulators and its
   own buffer; rates are summed over the threads).

   Usage: ceilings MIN_MS BYTES...
   Prints `fma_gflops RATE` (2 flops per multiply-add), then `read_gbs BYTES RATE` for
   each BYTES (the size of each thread's buffer, read whole, over and over). Each figure
   is the best of 5 samples of at least MIN_MS milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
typedef __m512 vec;
#define LANES 16
#define VZERO() _mm512_setzero_ps()
#define VSET(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VLOAD(p) _mm512_load_ps(p)
#define VSUM(v) _mm512_reduce_add_ps(v)
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
typedef __m256 vec;
#define LANES 8
#define VZERO() _mm256_setzero_ps()
#define VSET(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
#define VLOAD(p) _mm256_load_ps(p)
static float vsum(vec v) { float t[8]; _mm256_storeu_ps(t, v); return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7]; }
#define VSUM(v) vsum(v)
#elif defined(__ARM_NEON)
#include <arm_neon.h>
typedef float32x4_t vec;
#define LANES 4
#define VZERO() vdupq_n_f32(0.0f)
#define VSET(x) vdupq_n_f32(x)
#define VFMA(a, b, c) vfmaq_f32(c, a, b)
#define VADD(a, b) vaddq_f32(a, b)
#define VLOAD(p) vld1q_f32(p)
#define VSUM(v) vaddvq_f32(v)
#else
#error "ceilings.c needs AVX-512, AVX2 with FMA, or NEON"
#endif

/* Independent accumulators: enough to cover the multiply-add latency on every port,
   few enough to stay in registers (AVX2 has 16 vector registers, the others 32). */
#if defined(__AVX512F__) || defined(__ARM_NEON)
#define ACCS 24
#else
#define ACCS 12
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* `iters` rounds of ACCS independent multiply-adds; returns a value that depends on
   every one of them, so none can be left out. */
static float fma_rounds(long iters, float seed) {
  vec acc[ACCS];
  for (int i = 0; i < ACCS; ++i) acc[i] = VSET(seed + i);
  const vec m = VSET(0.999999f), a = VSET(1e-7f);
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 32
    for (int i = 0; i < ACCS; ++i) acc[i] = VFMA(acc[i], m, a);
  }
  vec s = VZERO();
  for (int i = 0; i < ACCS; ++i) s = VADD(s, acc[i]);
  return VSUM(s);
}

/* Reads `n` floats (a multiple of 8 * LANES) `reps` times, into 8 independent sums so
   that the adds' latency does not limit the loads. */
static float read_rounds(const float *buf, long n, long reps) {
  vec s[8];
  for (int k = 0; k < 8; ++k) s[k] = VZERO();
  for (long r = 0; r < reps; ++r) {
    for (long i = 0; i < n; i += 8 * LANES) {
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) s[k] = VADD(s[k], VLOAD(buf + i + k * LANES));
    }
  }
  for (int k = 1; k < 8; ++k) s[0] = VADD(s[0], s[k]);
  return VSUM(s[0]);
}

static volatile float sink;

/* Best rate over 5 samples of `work(rounds)` on every thread at once, `units_per_round`
   units per round per thread; rounds doubled until a sample lasts `min_s`. */
static double best_rate(int kind, long n, double units_per_round, double min_s, float **bufs) {
  long rounds = 1;
  double best = 0.0;
  for (int sample = 0; sample < 5;) {
    int team = 1;
    double t0 = now();
#pragma omp parallel
    {
      const int id = omp_get_thread_num();
      float v = kind == 0 ? fma_rounds(rounds, 1.0f + id) : read_rounds(bufs[id], n, rounds);
#pragma omp critical
      sink += v;
#pragma omp single
      team = omp_get_num_threads();
    }
    const double dt = now() - t0;
    if (dt < min_s) {
      rounds *= 2;
      continue;
    }
    const double rate = units_per_round * rounds * team / dt;
    if (rate > best) best = rate;
    ++sample;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MIN_MS BYTES...\n", argv[0]);
    return 2;
  }
  const double min_s = atof(argv[1]) * 1e-3;
  if (!(min_s > 0.0)) {
    fprintf(stderr, "ceilings: MIN_MS must be a positive number, got `%s`\n", argv[1]);
    return 2;
  }
  const int threads = omp_get_max_threads();
  printf("fma_gflops %.3f\n", best_rate(0, 0, 2.0 * ACCS * LANES, min_s, NULL) / 1e9);
  for (int a = 2; a < argc; ++a) {
    const long bytes = atol(argv[a]);
    const long unit = 8 * LANES * (long)sizeof(float);
    if (bytes < unit) {
      fprintf(stderr, "ceilings: BYTES must be at least %ld, got `%s`\n", unit, argv[a]);
      return 2;
    }
    const long n = bytes / unit * unit / (long)sizeof(float);
    float **bufs = calloc((size_t)threads, sizeof *bufs);
    if (!bufs) return 1;
    for (int t = 0; t < threads; ++t) {
      bufs[t] = aligned_alloc(64, (size_t)n * sizeof(float));
      if (!bufs[t]) {
        fprintf(stderr, "ceilings: cannot allocate %ld bytes\n", bytes);
        return 1;
      }
      for (long i = 0; i < n; ++i) bufs[t][i] = 1e-6f * (float)(i % 1000);
    }
    printf("read_gbs %ld %.3f\n", n * (long)sizeof(float),
           best_rate(1, n, (double)n * sizeof(float), min_s, bufs) / 1e9);
    for (int t = 0; t < threads; ++t) free(bufs[t]);
    free(bufs);
  }
  return 0;
}
