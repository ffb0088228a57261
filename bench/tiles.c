/* tiles.c - the quantized matrix products alone, against this core's integer
 * dot-product peak: how much of the roof for prompts and batches the kernels
 * reach, and how much is left to find (BENCHMARKS.md).
 *   cc -O2 -march=native -Isrc -Iinclude bench/tiles.c build/libkvsteer.a -lm -fopenmp -o tiles
 *   ./tiles [TYPE K ROWS N_A] ...   (default: the 1.5B's Q4_K and Q6_K shapes at batch 1 and 32)
 * TYPE is a GGUF type name (q4_k, q5_k, q6_k, q4_0, q4_1, q5_0, q5_1, q8_0), or
 * q4_0l, q4_1l, q5_0l, q5_1l, q8_0l: those rows in the lanes layout the model loader gives them
 * (engine/lanes.h).  One
 * thread, the kernel set quant.c picks for this CPU (or KVS_KERNELS=NAME's, as for
 * kvsteer itself); the weights are random codes
 * with small scales (the timing does not depend on the values).  Prints one JSON
 * line per shape: milliseconds per product, multiply-adds per second, and that
 * rate over the peak of 64-byte vpdpbusd (measured here with twelve independent
 * chains) where the CPU has AVX-512 VNNI. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/ggtype.h"
#include "engine/lanes.h"
#include "engine/quant.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* vpdpbusd instructions per second on one core, or 0 without AVX-512 VNNI */
__attribute__((target("avx512f,avx512vnni"))) static double vnni_peak_chains(void) {
    __m512i a[12];
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_epi32(i);
    __m512i w = _mm512_set1_epi8(3), x = _mm512_set1_epi8(5);
    const long n = 20000000;
    double t = now();
    for (long i = 0; i < n; i++) {
#pragma GCC unroll 12
        for (int j = 0; j < 12; j++) a[j] = _mm512_dpbusd_epi32(a[j], w, x);
        __asm__ volatile("" : "+v"(w), "+v"(x)); /* keep the chains from being folded */
    }
    t = now() - t;
    volatile int sink = 0;
    for (int i = 0; i < 12; i++) sink += _mm512_reduce_add_epi32(a[i]);
    (void)sink;
    return (double)n * 12.0 / t;
}

static double vnni_peak(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512vnni")) return 0.0;
    /* the best of five after a second of the same work: on the 2-vCPU machines
     * the first second after other load stops ran at 70% of the rate */
    const double until = now() + 1.0;
    while (now() < until) vnni_peak_chains();
    double best = 0.0;
    for (int i = 0; i < 5; i++) {
        const double p = vnni_peak_chains();
        if (p > best) best = p;
    }
    return best;
}

static const struct { const char *name; uint32_t type; int d_at; } TYPES[] = {
    /* d_at: offset of each block's fp16 scale, set to a small value */
    {"q4_k", GGT_Q4_K, 0}, {"q5_k", GGT_Q5_K, 0}, {"q6_k", GGT_Q6_K, 208}, {"q4_0", GGT_Q4_0, 0},
    {"q4_1", GGT_Q4_1, 0}, {"q5_0", GGT_Q5_0, 0}, {"q5_1", GGT_Q5_1, 0},  {"q8_0", GGT_Q8_0, 0},
    {"q4_0l", QT_Q4_0_LANES, 0}, {"q4_1l", QT_Q4_1_LANES, 0}, {"q5_0l", QT_Q5_0_LANES, 0},
    {"q5_1l", QT_Q5_1_LANES, 0}, {"q8_0l", QT_Q8_0_LANES, 0},
};

static int run(const char *tname, long k, int rows, int n_a, double peak) {
    int t = -1;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(TYPES[i].name, tname)) t = (int)i;
    const uint32_t wt = t < 0 ? 0 : TYPES[t].type;
    const long blk = wt == GGT_Q4_K || wt == GGT_Q5_K || wt == GGT_Q6_K ? 256 : 32;
    if (t < 0 || k <= 0 || rows <= 0 || n_a <= 0 || k % blk) {
        fprintf(stderr, "tiles: %s %ld %d %d: want TYPE K ROWS N_A with a known type and K a multiple of its block\n",
                tname, k, rows, n_a);
        return 2;
    }
    const uint32_t at = quant_dot_type(wt), ft = quant_file_of(wt);
    const size_t wrow = ggtype_row_bytes(ft, (uint64_t)k), arow = ggtype_row_bytes(at, (uint64_t)k);
    const size_t bb = ggtype_row_bytes(ft, (uint64_t)blk);
    uint8_t *W = malloc(wrow * (size_t)rows), *A = malloc(arow * (size_t)n_a);
    float *x = malloc(sizeof(float) * (size_t)k), *C = malloc(sizeof(float) * (size_t)rows * (size_t)n_a);
    if (!W || !A || !x || !C) {
        fprintf(stderr, "tiles: out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t i = 0; i < wrow * (size_t)rows; i++) W[i] = (uint8_t)rand();
    const uint16_t small = 0x211f; /* fp16 0.01 */
    for (size_t o = 0; o + bb <= wrow * (size_t)rows; o += bb) memcpy(W + o + TYPES[t].d_at, &small, 2);
    if (quant_is_lanes(wt)) { /* the same rows, rearranged */
        uint8_t *row = malloc(wrow);
        if (!row) return 1;
        for (int r = 0; r < rows; r++) {
            memcpy(row, W + (size_t)r * wrow, wrow);
            quant_to_lanes(wt, row, W + (size_t)r * wrow, k);
        }
        free(row);
    }
    for (int j = 0; j < n_a; j++) {
        for (long i = 0; i < k; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        quant_from_float(at, x, A + (size_t)j * arow, k);
    }
    quant_gemm(wt, k, W, wrow, 0, rows, A, arow, n_a, C, rows); /* warm the caches and pages */
    int reps = 0;
    double t0 = now(), el;
    do {
        quant_gemm(wt, k, W, wrow, 0, rows, A, arow, n_a, C, rows);
        reps++;
    } while ((el = now() - t0) < 0.5);
    const double ms = 1e3 * el / reps, macs = (double)k * rows * n_a / (el / reps);
    printf("{\"type\":\"%s\",\"k\":%ld,\"rows\":%d,\"n_a\":%d,\"kernels\":\"%s\",\"ms\":%.4f,\"gmacs\":%.2f", tname, k,
           rows, n_a, quant_backend(), ms, macs * 1e-9);
    if (peak > 0) printf(",\"of_vnni_peak\":%.3f", macs / 64.0 / peak);
    printf("}\n");
    free(W), free(A), free(x), free(C);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        puts("usage: tiles [TYPE K ROWS N_A] ...  (see the comment at the top of bench/tiles.c)");
        return 0;
    }
    if ((argc - 1) % 4) {
        fprintf(stderr, "tiles: arguments come in fours: TYPE K ROWS N_A\n");
        return 2;
    }
    const char *ks = getenv("KVS_KERNELS");
    if (ks && *ks && quant_force_backend(ks)) {
        fprintf(stderr, "tiles: KVS_KERNELS=%s: not a kernel set this machine runs\n", ks);
        return 2;
    }
    const double peak = vnni_peak();
    if (peak > 0) printf("{\"vnni_peak_per_s\":%.3e}\n", peak);
    if (argc == 1) {
        /* the 1.5B's gate/up (Q4_K, 1536 -> 8960), down (Q6_K half the layers:
         * 8960 -> 1536) at one sequence and at a batch of 32 */
        static const char *def[][4] = {{"q4_k", "1536", "8960", "1"}, {"q4_k", "1536", "8960", "32"},
                                       {"q6_k", "8960", "1536", "1"}, {"q6_k", "8960", "1536", "32"}};
        for (size_t i = 0; i < sizeof def / sizeof def[0]; i++)
            if (run(def[i][0], atol(def[i][1]), atoi(def[i][2]), atoi(def[i][3]), peak)) return 1;
        return 0;
    }
    for (int a = 1; a + 3 < argc; a += 4)
        if (run(argv[a], atol(argv[a + 1]), atoi(argv[a + 2]), atoi(argv[a + 3]), peak)) return 1;
    return 0;
}
