#include "ggtype.h"

static const ggtype_info k_types[GGT_COUNT] = {
    [GGT_F32] = {"F32", 1, 4},        [GGT_F16] = {"F16", 1, 2},
    [GGT_Q4_0] = {"Q4_0", 32, 18},    [GGT_Q4_1] = {"Q4_1", 32, 20},
    [GGT_Q5_0] = {"Q5_0", 32, 22},    [GGT_Q5_1] = {"Q5_1", 32, 24},
    [GGT_Q8_0] = {"Q8_0", 32, 34},    [GGT_Q8_1] = {"Q8_1", 32, 36},
    [GGT_Q2_K] = {"Q2_K", 256, 84},   [GGT_Q3_K] = {"Q3_K", 256, 110},
    [GGT_Q4_K] = {"Q4_K", 256, 144},  [GGT_Q5_K] = {"Q5_K", 256, 176},
    [GGT_Q6_K] = {"Q6_K", 256, 210},  [GGT_Q8_K] = {"Q8_K", 256, 292},
    [GGT_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [GGT_IQ2_XS] = {"IQ2_XS", 256, 74},
    [GGT_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [GGT_IQ1_S] = {"IQ1_S", 256, 50},
    [GGT_IQ4_NL] = {"IQ4_NL", 32, 18},    [GGT_IQ3_S] = {"IQ3_S", 256, 110},
    [GGT_IQ2_S] = {"IQ2_S", 256, 82},     [GGT_IQ4_XS] = {"IQ4_XS", 256, 136},
    [GGT_I8] = {"I8", 1, 1},   [GGT_I16] = {"I16", 1, 2}, [GGT_I32] = {"I32", 1, 4},
    [GGT_I64] = {"I64", 1, 8}, [GGT_F64] = {"F64", 1, 8}, [GGT_IQ1_M] = {"IQ1_M", 256, 56},
    [GGT_BF16] = {"BF16", 1, 2},
    [GGT_TQ1_0] = {"TQ1_0", 256, 54}, [GGT_TQ2_0] = {"TQ2_0", 256, 66},
};

const ggtype_info *ggtype_get(uint32_t type) {
    if (type >= GGT_COUNT || !k_types[type].name) return NULL;
    return &k_types[type];
}

size_t ggtype_row_bytes(uint32_t type, uint64_t n) {
    const ggtype_info *t = ggtype_get(type);
    if (!t || n % (uint64_t)t->block) return 0;
    return (size_t)(n / (uint64_t)t->block) * (size_t)t->bytes;
}
