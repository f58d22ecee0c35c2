// Vector helpers shared by the kernels of gemm.c and planes.c (internal to CGEMM): the target
// attributes each instruction set's code is compiled with, e^x, exact Gelu, and the
// activations a kernel applies before its store (FULCRUM_GEMM_ACTIVATION_*).
#ifndef FULCRUM_CGEMM_VECTORS_H
#define FULCRUM_CGEMM_VECTORS_H
#include "CGEMM.h"

#if defined(__x86_64__)
#include <immintrin.h>
#ifndef FULCRUM_X86
#define FULCRUM_X86 1
#endif

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"), always_inline)) static inline
#define AVX512_ENTRY __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma"))) static

// e^x and exact Gelu, the same schemes as VectorMath (Sources/FulcrumKernels/CPU/VectorMath.swift:
// Cephes' expf reduction and polynomial; Gelu as 0.5 · ((x + |x|) − |x| · erfc(|x| / √2)) with
// erfc(a) = e^(−a²) · R(1 / (1 + 0.4 a))), with fused multiply-adds.
AVX512 __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.72283f));
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 shifted = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
    const __m512 n = _mm512_sub_ps(shifted, magic);
    x = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), x);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, x, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(x, x), x), _mm512_set1_ps(1.0f));
    const __m512i integer = _mm512_sub_epi32(_mm512_castps_si512(shifted), _mm512_set1_epi32(0x4B400000));
    const __m512i exponent = _mm512_slli_epi32(_mm512_add_epi32(integer, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(exponent));
}

AVX512 __m512 gelu512(__m512 x) {
    const __m512 ax = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
    const __m512 a = _mm512_mul_ps(ax, _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(ax, _mm512_set1_ps(0.28284271247461901f), _mm512_set1_ps(1.0f)));
    __m512 r = _mm512_set1_ps(2.868962847e-2f);
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-7.471997291e-2f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-6.374449283e-2f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.758525908e-1f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-6.860952079e-2f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.686550617e-1f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(1.774120927e-1f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.313557118e-1f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.250825465e-1f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(2.640521598e-5f));
    const __m512 tail = _mm512_mul_ps(exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(a, a))), r);
    const __m512 result = _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_fnmadd_ps(ax, tail, _mm512_add_ps(x, ax)));
    // Beyond |x| ≈ 14 Gelu is Relu in FP32 (and ±∞ stay finite-safe).
    const __mmask16 huge = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(14.0f), _CMP_GT_OQ);
    return _mm512_mask_blend_ps(huge, result, _mm512_max_ps(x, _mm512_setzero_ps()));
}

AVX512 __m512 activate512(__m512 x, int activation) {
    switch (activation) {
    case FULCRUM_GEMM_ACTIVATION_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case FULCRUM_GEMM_ACTIVATION_GELU: return gelu512(x);
    case FULCRUM_GEMM_ACTIVATION_HARDSWISH: {
        const __m512 gate = _mm512_fmadd_ps(x, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
        return _mm512_mul_ps(x, _mm512_min_ps(_mm512_max_ps(gate, _mm512_setzero_ps()), _mm512_set1_ps(1.0f)));
    }
    default: return x;
    }
}

#define AVX2 __attribute__((target("avx2,fma"), always_inline)) static inline
#define AVX2_ENTRY __attribute__((target("avx2,fma"))) static

AVX2 __m256 exp256(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.72283f));
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 shifted = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    const __m256 n = _mm256_sub_ps(shifted, magic);
    x = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), x);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(x, x), x), _mm256_set1_ps(1.0f));
    const __m256i integer = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(integer, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(exponent));
}

AVX2 __m256 gelu256(__m256 x) {
    const __m256 ax = _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF)));
    const __m256 a = _mm256_mul_ps(ax, _mm256_set1_ps(0.70710678118654752f));
    const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(ax, _mm256_set1_ps(0.28284271247461901f), _mm256_set1_ps(1.0f)));
    __m256 r = _mm256_set1_ps(2.868962847e-2f);
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-7.471997291e-2f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-6.374449283e-2f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.758525908e-1f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-6.860952079e-2f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.686550617e-1f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(1.774120927e-1f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.313557118e-1f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.250825465e-1f));
    r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(2.640521598e-5f));
    const __m256 tail = _mm256_mul_ps(exp256(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(a, a))), r);
    const __m256 result = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_fnmadd_ps(ax, tail, _mm256_add_ps(x, ax)));
    const __m256 huge = _mm256_cmp_ps(ax, _mm256_set1_ps(14.0f), _CMP_GT_OQ);
    return _mm256_blendv_ps(result, _mm256_max_ps(x, _mm256_setzero_ps()), huge);
}

AVX2 __m256 activate256(__m256 x, int activation) {
    switch (activation) {
    case FULCRUM_GEMM_ACTIVATION_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case FULCRUM_GEMM_ACTIVATION_GELU: return gelu256(x);
    case FULCRUM_GEMM_ACTIVATION_HARDSWISH: {
        const __m256 gate = _mm256_fmadd_ps(x, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        return _mm256_mul_ps(x, _mm256_min_ps(_mm256_max_ps(gate, _mm256_setzero_ps()), _mm256_set1_ps(1.0f)));
    }
    default: return x;
    }
}

#endif
#endif
