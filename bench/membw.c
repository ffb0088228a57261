/* membw.c - memory read bandwidth on this machine: the roof for generating one
 * sequence, which reads every weight once per token (BENCHMARKS.md).
 *   cc -O3 -march=native -fopenmp bench/membw.c -o membw && ./membw [THREADS]
 * Sums a 1 GiB buffer (far beyond the caches) five times and prints GB/s. */
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    const size_t n = (size_t)1 << 27; /* 64-bit words: 1 GiB */
    const int threads = argc > 1 ? atoi(argv[1]) : omp_get_max_threads();
    if (threads < 1) {
        fprintf(stderr, "membw: THREADS must be a positive count\n");
        return 2;
    }
    uint64_t *a = malloc(n * sizeof *a);
    if (!a) {
        fprintf(stderr, "membw: out of memory for 1 GiB\n");
        return 1;
    }
    memset(a, 1, n * sizeof *a);
    for (int rep = 0; rep < 5; rep++) {
        uint64_t sum = 0;
        const double t = omp_get_wtime();
#pragma omp parallel for num_threads(threads) reduction(+ : sum)
        for (size_t i = 0; i < n; i++) sum += a[i];
        const double s = omp_get_wtime() - t;
        printf("threads %d: read %.1f GB/s (checksum %llu)\n", threads, (double)(n * sizeof *a) / s / 1e9,
               (unsigned long long)sum);
    }
    free(a);
    return 0;
}
