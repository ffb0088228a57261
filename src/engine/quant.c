/* quant.c - the run-time choice of kernel set (scalar references in
 * quant_ref.c, the SIMD sets under x86/) and the entry points that go through
 * it. */
#include <cpuid.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvsteer.h"
#include "lanes.h"
#include "quant.h"
#include "quant_internal.h"
#include "quant_ref.h"

int quant_supported(uint32_t type) {
    switch (type) {
    case GGT_F32: case GGT_F16: case GGT_BF16: case GGT_Q4_0: case GGT_Q4_1: case GGT_Q8_0:
    case GGT_Q5_0: case GGT_Q5_1: case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K:
        return 1;
    default:
        return 0;
    }
}

uint32_t quant_dot_type(uint32_t wtype) {
    if (quant_is_lanes(wtype)) return quant_dot_type(quant_file_of(wtype));
    switch (wtype) {
    case GGT_F32: return GGT_F32;
    case GGT_F16: return GGT_F16;
    case GGT_BF16: return GGT_BF16;
    case GGT_Q4_0: return GGT_Q8_0;
    case GGT_Q4_1: return GGT_Q8_1;
    case GGT_Q8_0: return GGT_Q8_0;
    case GGT_Q5_0: return GGT_Q8_0;
    case GGT_Q5_1: return GGT_Q8_1;
    case GGT_Q4_K: case GGT_Q5_K: case GGT_Q6_K: return GGT_Q8_K;
    default: return GGT_COUNT; /* not a type: ggtype_get() rejects it */
    }
}


static void gemm_ref(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                     const void *A, size_t a_stride, int n_a, float *C, int ldc) {
    gemm_by_dot(quant_dot_ref, wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
}

/* ---- dispatch ---------------------------------------------------------- */

static const quant_kernels scalar_kernels = {
    "scalar", quant_to_float_ref, quant_from_float_ref, quant_dot_ref, gemm_ref, NULL,
};

/* F16C straight from CPUID: clang's __builtin_cpu_supports has no "f16c".
 * The OS-support (XSAVE state) check comes with the "avx2" test. */
static int cpu_has_f16c(void) {
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

static int cpu_has_avx2(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

static int cpu_has_avx512vnni(void) {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("bmi2"); /* pdep, for the Q5 tiles */
}

/* AMX-INT8: the CPU has it and Linux grants this process the tile data state
 * (which it hands out only on request, since it enlarges every context switch). */
static int cpu_has_amx_int8(void) {
#if defined(__linux__) && defined(__x86_64__)
    unsigned a, b, c, d;
    if (!cpu_has_avx512vnni() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    if (!(d & (1u << 24)) || !(d & (1u << 25))) return 0; /* AMX-TILE, AMX-INT8 */
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return 0;
#endif
}

static const quant_kernels *g_best;
static int g_has_amx;
static pthread_once_t g_best_once = PTHREAD_ONCE_INIT;
/* The set in use; NULL until first use or a forced choice. */
static _Atomic(const quant_kernels *) g_kernels;

static void detect_best(void) {
    __builtin_cpu_init();
    g_has_amx = cpu_has_amx_int8();
    if (g_has_amx)
        g_best = &quant_amx_kernels;
    else if (cpu_has_avx512vnni())
        g_best = &quant_avx512_kernels;
    else if (cpu_has_avx2())
        g_best = &quant_avx2_kernels;
    else
        g_best = &scalar_kernels;
}

static const quant_kernels *best_kernels(void) {
    pthread_once(&g_best_once, detect_best);
    return g_best;
}

static inline const quant_kernels *kernels(void) {
    const quant_kernels *k = atomic_load_explicit(&g_kernels, memory_order_acquire);
    if (k) return k;
    /* every racer stores the same pointer, so a lost race changes nothing */
    k = best_kernels();
    const quant_kernels *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&g_kernels, &expected, k, memory_order_acq_rel,
                                                 memory_order_acquire))
        k = expected; /* a forced choice got there first */
    return k;
}

const char *quant_backend(void) { return kernels()->name; }

const char *kvs_kernels_name(void) { return quant_backend(); }

int kvs_kernels_use(const char *name) { return quant_force_backend(name) ? KVS_E_ARG : KVS_OK; }

int quant_force_backend(const char *name) {
    const quant_kernels *k;
    (void)best_kernels(); /* runs the CPU-feature initialisation */
    if (!name)
        k = best_kernels();
    else if (!strcmp(name, "scalar"))
        k = &scalar_kernels;
    else if (!strcmp(name, "avx2") && cpu_has_avx2())
        k = &quant_avx2_kernels;
    else if (!strcmp(name, "avx512vnni") && cpu_has_avx512vnni())
        k = &quant_avx512_kernels;
    else if (!strcmp(name, "amx") && g_has_amx)
        k = &quant_amx_kernels;
    else
        return -1;
    atomic_store_explicit(&g_kernels, k, memory_order_release);
    return 0;
}

uint32_t quant_lanes_for(uint32_t type) {
    const quant_kernels *ks = kernels();
    return ks->lanes ? ks->lanes(type) : 0;
}

/* Whether set ks reads the lanes layout lt itself. */
static int reads_lanes(const quant_kernels *ks, uint32_t lt) {
    return ks->lanes && ks->lanes(quant_file_of(lt)) == lt;
}

/* A kernel set that does not read the lanes layouts (lanes.h) gets the rows
 * back in the file's layout, a stack chunk at a time: such a set is in use only
 * when chosen after the model was loaded (tests comparing sets do that). */
#define LANES_CHUNK 16384

/* Rows i0..i1 of a lanes matrix, converted back in chunks, through set ks. */
static void gemm_from_lanes(const quant_kernels *ks, uint32_t wtype, int64_t k, const void *W, size_t w_stride,
                            int i0, int i1, const void *A, size_t a_stride, int n_a, float *C, int ldc) {
    _Alignas(64) uint8_t buf[LANES_CHUNK];
    const uint32_t ft = quant_file_of(wtype);
    const size_t rb = ggtype_row_bytes(ft, (uint64_t)k);
    if (rb > sizeof buf) { /* a row longer than the chunk: one row at a time, on the heap */
        uint8_t *row = malloc(rb);
        for (int i = i0; i < i1; i++) {
            if (row) quant_from_lanes(wtype, (const uint8_t *)W + (size_t)i * w_stride, row, k);
            for (int j = 0; j < n_a; j++)
                C[(size_t)j * (size_t)ldc + (size_t)i] =
                    row ? ks->dot(ft, k, row, (const uint8_t *)A + (size_t)j * a_stride) : NAN;
        }
        free(row);
        return;
    }
    const int per = (int)(sizeof buf / rb);
    for (int r0 = i0; r0 < i1; r0 += per) {
        const int r1 = i1 - r0 < per ? i1 : r0 + per;
        for (int i = r0; i < r1; i++)
            quant_from_lanes(wtype, (const uint8_t *)W + (size_t)i * w_stride, buf + (size_t)(i - r0) * rb, k);
        ks->gemm(ft, k, buf, rb, 0, r1 - r0, A, a_stride, n_a, C + r0, ldc);
    }
}

void quant_to_float(uint32_t type, const void *src, float *dst, int64_t n) {
    const quant_kernels *ks = kernels();
    if (quant_is_lanes(type)) { /* no set converts the lanes layouts to floats itself */
        _Alignas(64) uint8_t buf[LANES_CHUNK];
        const uint32_t ft = quant_file_of(type);
        /* whole groups of eight blocks per chunk: `n` is one row, whose groups
         * start at its first block */
        const ggtype_info *ti = ggtype_get(ft);
        const int64_t per = (int64_t)(sizeof buf / (size_t)ti->bytes / 8 * 8) * ti->block;
        for (int64_t e = 0; e < n; e += per) {
            const int64_t m = n - e < per ? n - e : per;
            quant_from_lanes(type, (const uint8_t *)src + ggtype_row_bytes(ft, (uint64_t)e), buf, m);
            ks->to_float(ft, buf, dst + e, m);
        }
        return;
    }
    ks->to_float(type, src, dst, n);
}

void quant_from_float(uint32_t type, const float *src, void *dst, int64_t n) {
    kernels()->from_float(type, src, dst, n);
}

float quant_dot(uint32_t wtype, int64_t n, const void *w, const void *a) {
    const quant_kernels *ks = kernels();
    if (quant_is_lanes(wtype) && !reads_lanes(ks, wtype)) {
        float c = 0.0f;
        gemm_from_lanes(ks, wtype, n, w, 0, 0, 1, a, 0, 1, &c, 1);
        return c;
    }
    return ks->dot(wtype, n, w, a);
}

void quant_gemm(uint32_t wtype, int64_t k, const void *W, size_t w_stride, int i0, int i1,
                const void *A, size_t a_stride, int n_a, float *C, int ldc) {
    if (i0 >= i1 || n_a <= 0) return;
    const quant_kernels *ks = kernels();
    if (quant_is_lanes(wtype) && !reads_lanes(ks, wtype))
        gemm_from_lanes(ks, wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
    else
        ks->gemm(wtype, k, W, w_stride, i0, i1, A, a_stride, n_a, C, ldc);
}

