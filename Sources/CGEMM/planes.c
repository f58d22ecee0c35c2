// Kernels over NCHW planes (CGEMM.h): depthwise convolution and im2col's strided row copies.
//
// Depthwise (fulcrum_depthwise_conv): no padded copy of the plane is written. With AVX-512 every
// load is masked to the part of the input row it may read, so whole rows run on vectors; with
// AVX2 each output row is cut into the columns whose every tap lies inside the input row (the
// interior, vectorised) and the few on either side whose taps reach into the padding (scalar,
// with bounds checks). An interior strip keeps its outputs in one register across all the taps
// and is stored once, with the bias added first and Relu or HardSwish applied last. Stride 1
// loads each tap's inputs directly; stride 2 loads twice as many and keeps the even ones (a
// permute); other strides use the scalar code.
#include "CGEMM.h"
#include "vectors.h"

#include <stdint.h>



typedef struct {
    const FulcrumWindow *w;
    long channels;
    const float *x, *weights, *bias;
    float *y;
    int activation;  // NONE, RELU or HARDSWISH
    int isa;
} Depthwise;

static inline float activate1(float v, int activation) {
    switch (activation) {
    case FULCRUM_GEMM_ACTIVATION_RELU: return v < 0 ? 0 : v;
    case FULCRUM_GEMM_ACTIVATION_HARDSWISH: {
        const float gate = v * (1.0f / 6.0f) + 0.5f;
        return v * (gate < 0 ? 0 : gate > 1 ? 1 : gate);
    }
    default: return v;
    }
}

// One output, its taps bounds-checked (outside the input they read the padding's zeros).
static float output_at(const FulcrumWindow *w, const float *plane, const float *taps, float bias, long i, long j) {
    float sum = bias;
    for (long ky = 0; ky < w->kernel_h; ky++) {
        const long r = i * w->stride_h - w->pad_top + ky * w->dilation_h;
        if (r < 0 || r >= w->height) continue;
        for (long kx = 0; kx < w->kernel_w; kx++) {
            const long c = j * w->stride_w - w->pad_left + kx * w->dilation_w;
            if (c < 0 || c >= w->width) continue;
            sum += taps[ky * w->kernel_w + kx] * plane[r * w->width + c];
        }
    }
    return sum;
}

static void row_scalar(const FulcrumWindow *w, const float *plane, const float *taps, float bias, int activation, float *out,
                       long i, long begin, long end) {
    for (long j = begin; j < end; j++) out[j] = activate1(output_at(w, plane, taps, bias, i, j), activation);
}

#if FULCRUM_X86

// Lanes [lo, hi) of 32 (clamped): the elements of a load that lie inside the input row.
static inline uint32_t lanes32(long lo, long hi) {
    if (lo < 0) lo = 0;
    if (hi > 32) hi = 32;
    if (hi <= lo) return 0;
    const uint32_t below_hi = hi == 32 ? 0xFFFFFFFFu : (1u << hi) - 1;
    return below_hi & ~((1u << lo) - 1);
}

// The first n of 16 lanes (none for n ≤ 0, all for n ≥ 16).
static inline __mmask16 first16(long n) {
    return n <= 0 ? 0 : n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
}

// src[0], src[2], …, src[30] (a stride-2 strip): the 32 loads masked to the first `available`
// elements, so nothing past src[available − 1] is read (lanes beyond it are zeros).
AVX512 __m512 evens512(const float *src, long available) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(first16(available), src), even,
                                  _mm512_maskz_loadu_ps(first16(available - 16), src + 16));
}

// Columns [begin, end) of output row i, 16 at a time (the last strip masked). With `checked`,
// every load is masked to the part of the input row it may read — masked-off lanes are zeros
// and never touch memory — so the columns whose taps reach into the padding need no scalar code.
// `checked` 0: every tap of [begin, end) lies inside the row (the interior), no masks per tap.
AVX512 void
row512_body(const FulcrumWindow *w, const float *plane, const float *taps, float bias, int activation, float *out,
            long i, long begin, long end, const int checked) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (long j = begin; j < end; j += 16) {
        const __mmask16 mask = first16(end - j);
        __m512 acc = _mm512_set1_ps(bias);
        for (long ky = 0; ky < w->kernel_h; ky++) {
            const long r = i * w->stride_h - w->pad_top + ky * w->dilation_h;
            if (r < 0 || r >= w->height) continue;
            const float *line = plane + r * w->width;
            for (long kx = 0; kx < w->kernel_w; kx++) {
                const long base = j * w->stride_w - w->pad_left + kx * w->dilation_w;
                // Element e of the load is input column base + e: inside the row for e in [−base, width − base).
                const uint32_t inside = checked ? lanes32(-base, w->width - base) : 0xFFFFFFFFu;
                if (inside == 0) continue;
                const __m512 weight = _mm512_set1_ps(taps[ky * w->kernel_w + kx]);
                __m512 v;
                if (w->stride_w == 1) {
                    v = _mm512_maskz_loadu_ps((__mmask16)inside & mask, line + base);
                } else if (!checked) {
                    // Inputs base, base + 2, …: the next 32 the row holds, the even ones kept (in
                    // the interior, the row may end before the 32nd).
                    v = evens512(line + base, w->width - base);
                } else {
                    const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)(inside & 0xFFFF), line + base);
                    const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(inside >> 16), line + base + 16);
                    v = _mm512_permutex2var_ps(lo, even, hi);
                }
                acc = _mm512_fmadd_ps(weight, v, acc);
            }
        }
        _mm512_mask_storeu_ps(out + j, mask, activate512(acc, activation));
    }
}

AVX512_ENTRY void row512(const FulcrumWindow *w, const float *plane, const float *taps, float bias, int activation, float *out,
                         long i, long first, long stop) {
    // A wide row: the interior on unchecked strips, the one or two border columns on each side
    // in scalar code (cheaper there than checked strips, measured).
    if (w->out_w > 32) {
        row_scalar(w, plane, taps, bias, activation, out, i, 0, first);
        row512_body(w, plane, taps, bias, activation, out, i, first, stop, 0);
        row_scalar(w, plane, taps, bias, activation, out, i, stop, w->out_w);
        return;
    }
    // A narrow one (the late, small planes, where the borders are a large share): strips of 16
    // from column 0; only those reaching outside [first, stop) check their loads.
    for (long j = 0; j < w->out_w; j += 16) {
        const long end = w->out_w - j < 16 ? w->out_w : j + 16;
        if (j >= first && end <= stop) {
            row512_body(w, plane, taps, bias, activation, out, i, j, end, 0);
        } else {
            row512_body(w, plane, taps, bias, activation, out, i, j, end, 1);
        }
    }
}

// The even elements of lo then hi: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6] → [lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6].
AVX2 __m256 evens256(__m256 lo, __m256 hi) {
    const __m256 mixed = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
}

// Interior columns [begin, end) of output row i, 8 at a time; the last < 8 scalar.
AVX2_ENTRY void row256(const FulcrumWindow *w, const float *plane, const float *taps, float bias, int activation, float *out,
                       long i, long begin, long end) {
    // The second load of a stride-2 strip needs 7 inputs (base + 8 … base + 14), not 8: the
    // eighth may lie past the plane's end.
    const __m256i seven = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
    long j = begin;
    for (; j + 8 <= end; j += 8) {
        __m256 acc = _mm256_set1_ps(bias);
        for (long ky = 0; ky < w->kernel_h; ky++) {
            const long r = i * w->stride_h - w->pad_top + ky * w->dilation_h;
            if (r < 0 || r >= w->height) continue;
            const float *line = plane + r * w->width;
            for (long kx = 0; kx < w->kernel_w; kx++) {
                const long base = j * w->stride_w - w->pad_left + kx * w->dilation_w;
                const __m256 weight = _mm256_set1_ps(taps[ky * w->kernel_w + kx]);
                __m256 v;
                if (w->stride_w == 1) {
                    v = _mm256_loadu_ps(line + base);
                } else {
                    v = evens256(_mm256_loadu_ps(line + base), _mm256_maskload_ps(line + base + 8, seven));
                }
                acc = _mm256_fmadd_ps(weight, v, acc);
            }
        }
        _mm256_storeu_ps(out + j, activate256(acc, activation));
    }
    row_scalar(w, plane, taps, bias, activation, out, i, j, end);
}
#endif

// Planes [begin, end) of the batch (plane p is channel p % channels of image p / channels).
static void planes_range(void *context, long part, long begin, long end) {
    (void)part;
    const Depthwise *d = context;
    const FulcrumWindow *w = d->w;
    const long taps = w->kernel_h * w->kernel_w;
    // Output columns whose taps all lie inside the input row: j·sw − pl ≥ 0 and
    // j·sw − pl + (kw − 1)·dw ≤ width − 1.
    long first = (w->pad_left + w->stride_w - 1) / w->stride_w;
    const long last = w->width - 1 - (w->kernel_w - 1) * w->dilation_w + w->pad_left;
    long stop = last < 0 ? 0 : last / w->stride_w + 1;
    if (first > w->out_w) first = w->out_w;
    if (stop > w->out_w) stop = w->out_w;
    if (stop < first) stop = first;
    const int vector = d->isa != FULCRUM_GEMM_NONE && (w->stride_w == 1 || w->stride_w == 2);
    for (long p = begin; p < end; p++) {
        const long c = p % d->channels;
        const float *plane = d->x + p * w->height * w->width;
        const float *filter = d->weights + c * taps;
        const float bias = d->bias ? d->bias[c] : 0;
        float *out = d->y + p * w->out_h * w->out_w;
        for (long i = 0; i < w->out_h; i++, out += w->out_w) {
#if FULCRUM_X86
            if (vector && d->isa == FULCRUM_GEMM_AVX512) {
                row512(w, plane, filter, bias, d->activation, out, i, first, stop);
                continue;
            }
#endif
            row_scalar(w, plane, filter, bias, d->activation, out, i, 0, first);
            if (!vector) {
                row_scalar(w, plane, filter, bias, d->activation, out, i, first, stop);
            }
#if FULCRUM_X86
            else {
                row256(w, plane, filter, bias, d->activation, out, i, first, stop);
            }
#endif
            row_scalar(w, plane, filter, bias, d->activation, out, i, stop, w->out_w);
        }
    }
}

void fulcrum_depthwise_conv(int isa, const FulcrumWindow *window, long planes, long channels, const float *x,
                            const float *weights, const float *bias, float *y, int activation, int threads) {
    if (planes <= 0 || channels <= 0 || window->out_h <= 0 || window->out_w <= 0) return;
#if !FULCRUM_X86
    isa = FULCRUM_GEMM_NONE;
#endif
    const Depthwise d = {
        .w = window, .channels = channels, .x = x, .weights = weights, .bias = bias, .y = y,
        .activation = activation == FULCRUM_GEMM_ACTIVATION_RELU || activation == FULCRUM_GEMM_ACTIVATION_HARDSWISH
                          ? activation : FULCRUM_GEMM_ACTIVATION_NONE,
        .isa = isa,
    };
    // Parts of at least ~32k multiply-adds each, four per thread.
    const double work = (double)window->out_h * (double)window->out_w * (double)(window->kernel_h * window->kernel_w);
    long parts = (long)threads * 4;
    if (parts > planes) parts = planes;
    while (parts > 1 && work * (double)planes / (double)parts < (double)(1 << 15)) parts--;
    fulcrum_parallel_for(threads, planes, parts, planes_range, (void *)&d);
}

// MARK: - Strided copies

// dst[j] = src[j · stride] for j < count (strides 1 and 2) or, with `keep_max`, max pooling's tap:
// dst[j] = src[j · stride] when it is greater, else dst[j] (a NaN in src leaves dst as it was:
// MAXPS returns its second operand when either is NaN). Nothing past src[available − 1] is read.
#if FULCRUM_X86
AVX512_ENTRY void strided512(float *dst, const float *src, long count, long stride, long available, int keep_max) {
    for (long j = 0; j < count; j += 16) {
        const __mmask16 mask = first16(count - j);
        __m512 v = stride == 1 ? _mm512_maskz_loadu_ps(mask, src + j) : evens512(src + 2 * j, available - 2 * j);
        if (keep_max) v = _mm512_max_ps(v, _mm512_maskz_loadu_ps(mask, dst + j));
        _mm512_mask_storeu_ps(dst + j, mask, v);
    }
}

// Whole blocks of 8 whose loads stay inside src[0 ... (count − 1) · stride]; the caller finishes the rest.
AVX2_ENTRY long max_strided256(float *dst, const float *src, long count, long stride) {
    long j = 0;
    if (stride == 1) {
        for (; j + 8 <= count; j += 8) {
            _mm256_storeu_ps(dst + j, _mm256_max_ps(_mm256_loadu_ps(src + j), _mm256_loadu_ps(dst + j)));
        }
    } else {
        // 16 loads from src + 2j reach src[2j + 15]: inside while 2j + 15 ≤ 2(count − 1).
        for (; 2 * j + 17 <= 2 * count; j += 8) {
            const __m256 v = evens256(_mm256_loadu_ps(src + 2 * j), _mm256_loadu_ps(src + 2 * j + 8));
            _mm256_storeu_ps(dst + j, _mm256_max_ps(v, _mm256_loadu_ps(dst + j)));
        }
    }
    return j;
}
#endif

void fulcrum_max_strided(int isa, float *dst, const float *src, long count, long stride) {
    if (count <= 0) return;
    long j = 0;
#if FULCRUM_X86
    if (isa == FULCRUM_GEMM_AVX512 && (stride == 1 || stride == 2)) {
        strided512(dst, src, count, stride, (count - 1) * stride + 1, 1);
        return;
    }
    if (isa == FULCRUM_GEMM_AVX2 && (stride == 1 || stride == 2)) j = max_strided256(dst, src, count, stride);
#endif
    for (; j < count; j++) {
        const float v = src[j * stride];
        dst[j] = v > dst[j] ? v : dst[j];
    }
}

void fulcrum_copy_strided(int isa, float *dst, const float *src, long count, long stride) {
    if (count <= 0) return;
#if FULCRUM_X86
    if (isa == FULCRUM_GEMM_AVX512 && (stride == 1 || stride == 2)) {
        // The last element read is src[(count − 1) · stride]: nothing past it is loaded.
        strided512(dst, src, count, stride, (count - 1) * stride + 1, 0);
        return;
    }
#endif
    for (long j = 0; j < count; j++) dst[j] = src[j * stride];
}
