/* The cores' peak f32 multiply-add rate: twelve independent FMA chains on registers only,
 * on OMP_NUM_THREADS threads, best of five runs. AVX-512 where the compiler targets it
 * (gcc -march=native), else AVX2. Prints one JSON line. Built and run by
 * scripts/compute_roof.py. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#if defined(__AVX512F__)
typedef __m512 V;
enum { LANES = 16 };
#define FMA _mm512_fmadd_ps
#define SET _mm512_set1_ps
#else
typedef __m256 V;
enum { LANES = 8 };
#define FMA _mm256_fmadd_ps
#define SET _mm256_set1_ps
#endif

int main(void) {
  const long iters = 100000000 / 12;
  double best = 0;
  float sink = 0;
  for (int r = 0; r < 5; r++) {
    double t0 = omp_get_wtime();
#pragma omp parallel reduction(+ : sink)
    {
      V a[12], b = SET(0.999999f), c = SET(1e-7f);
      for (int j = 0; j < 12; j++) a[j] = SET((float)j);
      for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++) a[j] = FMA(a[j], b, c);
      float out[LANES];
      for (int j = 0; j < 12; j++) {
        memcpy(out, &a[j], sizeof out);
        sink += out[0];
      }
    }
    double s = omp_get_wtime() - t0;
    double gflops = omp_get_max_threads() * (double)iters * 12 * LANES * 2 / s / 1e9;
    if (gflops > best) best = gflops;
  }
  printf("{\"fma_gflop_s\": %.1f, \"lanes\": %d, \"threads\": %d, \"sink\": %.0f}\n", best, LANES,
         omp_get_max_threads(), sink);
  return 0;
}
