// Single-precision microkernels for products with a packed constant operand (CGEMM.h).
//
// One tile computes MR rows × NR columns of C with the accumulators in registers: for each k it
// loads NR values of B (two vectors) and multiplies them by MR broadcast values of A. The packed
// operand makes its side of every load contiguous; the other side is read in place. k is cut
// into blocks of KC so that one panel of B (KC × NR floats, 32 KiB for AVX-512) stays in the
// L1 cache while every row block of A passes over it. Each instruction set's code is compiled
// with that set enabled for its functions only (target attributes), and chosen at run time by
// CPUID, so the library runs on any x86-64 CPU.
#include "CGEMM.h"
#include "vectors.h"

#include <stdint.h>
#include <string.h>

#if FULCRUM_X86
#include <cpuid.h>
#endif

enum { KC = 256 };

// MARK: - Detection

#if FULCRUM_X86
static uint64_t read_xcr0(void) {
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

static int detect_once(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return FULCRUM_GEMM_NONE;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return FULCRUM_GEMM_NONE;
    uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return FULCRUM_GEMM_NONE;  // XMM and YMM state saved by the OS
    if (__get_cpuid_max(0, 0) < 7) return FULCRUM_GEMM_NONE;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, vl = (b >> 31) & 1;
    // Opmask and ZMM state saved by the OS too.
    if (f && dq && vl && fma && (xcr0 & 0xE6) == 0xE6) return FULCRUM_GEMM_AVX512;
    if (avx2 && fma) return FULCRUM_GEMM_AVX2;
    return FULCRUM_GEMM_NONE;
}
#endif

int fulcrum_gemm_detect(void) {
#if FULCRUM_X86
    static int cached = -1;
    int value = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (value < 0) {
        value = detect_once();
        __atomic_store_n(&cached, value, __ATOMIC_RELAXED);
    }
    return value;
#else
    return FULCRUM_GEMM_NONE;
#endif
}

int fulcrum_gemm_tile_rows(int isa) { return isa == FULCRUM_GEMM_AVX512 ? 8 : isa == FULCRUM_GEMM_AVX2 ? 6 : 0; }
int fulcrum_gemm_tile_columns(int isa) { return isa == FULCRUM_GEMM_AVX512 ? 32 : isa == FULCRUM_GEMM_AVX2 ? 16 : 0; }

// MARK: - Packing

static size_t rounded_product(long rounded, long unit, long other) {
    if (unit <= 0 || rounded < 0 || other < 0) return 0;
    size_t blocks = ((size_t)rounded + (size_t)unit - 1) / (size_t)unit;
    size_t total;
    if (__builtin_mul_overflow(blocks, (size_t)unit, &total)) return 0;
    if (__builtin_mul_overflow(total, (size_t)other, &total)) return 0;
    return total;
}

size_t fulcrum_gemm_packed_right_count(int isa, long k, long n) {
    return rounded_product(n, fulcrum_gemm_tile_columns(isa), k);
}

void fulcrum_gemm_pack_right(int isa, long k, long n, const float *b, long row_stride, long column_stride, float scale,
                             float *packed) {
    const long nr = fulcrum_gemm_tile_columns(isa);
    if (nr == 0) return;
    for (long j0 = 0; j0 < n; j0 += nr) {
        const long columns = n - j0 < nr ? n - j0 : nr;
        float *panel = packed + j0 * k;  // panel j0 / nr starts at (j0 / nr) * nr * k
        for (long r = 0; r < k; r++) {
            float *line = panel + r * nr;
            for (long j = 0; j < columns; j++) line[j] = b[r * row_stride + (j0 + j) * column_stride] * scale;
            for (long j = columns; j < nr; j++) line[j] = 0;
        }
    }
}

size_t fulcrum_gemm_packed_left_count(int isa, long m, long k) {
    return rounded_product(m, fulcrum_gemm_tile_rows(isa), k);
}

void fulcrum_gemm_pack_left(int isa, long m, long k, const float *a, long lda, float scale, float *packed) {
    const long mr = fulcrum_gemm_tile_rows(isa);
    if (mr == 0) return;
    for (long i0 = 0; i0 < m; i0 += mr) {
        const long rows = m - i0 < mr ? m - i0 : mr;
        float *block = packed + i0 * k;
        for (long r = 0; r < k; r++) {
            float *line = block + r * mr;
            for (long i = 0; i < rows; i++) line[i] = a[(i0 + i) * lda + r] * scale;
            for (long i = rows; i < mr; i++) line[i] = 0;
        }
    }
}

// MARK: - Tiles

// One tile's operands. A(i, r) = a[i * a_row + r * a_k]; B(r, j) = b[r * b_k + j].
typedef struct {
    long k;
    const float *a;
    long a_row, a_k;
    const float *b;
    long b_k;
    const float *const *b_rows;  // instead of b and b_k: B(r, j) = b_rows[r][b_column + j]
    long b_column;
    float *c;
    long ldc;
    int columns;               // valid columns of this tile (≤ NR)
    int load_c;                // start from C (else from the bias or zero)
    const float *column_bias;  // added on the tile's first k block, or NULL
    const float *row_bias;     // the same per row, or NULL
    int activation;            // FULCRUM_GEMM_ACTIVATION_* before the store (last k block)
} Tile;

#if FULCRUM_X86


AVX512_ENTRY void softmax512(const float *x, float *y, long n, const float *bias, long bias_stride, int logarithm) {
    const __m512 negative_infinity = _mm512_set1_ps(-__builtin_inff());
    const float *source = x;
    // Pass 1: y = x + bias (when there is one), and the row's maximum.
    __m512 vmax = negative_infinity;
    for (long k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        __m512 v = _mm512_mask_loadu_ps(negative_infinity, m, x + k);
        if (bias) {
            v = _mm512_add_ps(v, bias_stride == 0 ? _mm512_set1_ps(bias[0]) : _mm512_maskz_loadu_ps(m, bias + k));
            _mm512_mask_storeu_ps(y + k, m, v);
        }
        vmax = _mm512_max_ps(vmax, v);
    }
    if (bias) source = y;
    const float maximum = _mm512_reduce_max_ps(vmax);
    const __m512 shift = _mm512_set1_ps(maximum);
    // Pass 2: e = exp(y − max) and its sum (LogSoftmax keeps y and only sums).
    __m512 vsum = _mm512_setzero_ps();
    for (long k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, source + k), shift));
        if (!logarithm) _mm512_mask_storeu_ps(y + k, m, e);
        vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
    }
    const float sum = _mm512_reduce_add_ps(vsum);
    // Pass 3: normalise.
    const __m512 scale = _mm512_set1_ps(logarithm ? maximum + __builtin_logf(sum) : 1 / sum);
    for (long k = 0; k < n; k += 16) {
        const __mmask16 m = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        if (logarithm) {
            _mm512_mask_storeu_ps(y + k, m, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, source + k), scale));
        } else {
            _mm512_mask_storeu_ps(y + k, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + k), scale));
        }
    }
}

// R rows × 32 columns; masked_b reads B's last columns through a mask (B read in place).
AVX512 void tile512(const Tile *t, const int R, const int masked_b, const int indirect) {
    const int columns = t->columns;
    const __mmask16 m0 = columns >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << columns) - 1);
    const __mmask16 m1 = columns >= 32 ? (__mmask16)0xFFFF : columns > 16 ? (__mmask16)((1u << (columns - 16)) - 1) : 0;
    __m512 c0[8], c1[8];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        if (t->load_c) {
            c0[r] = _mm512_maskz_loadu_ps(m0, t->c + r * t->ldc);
            c1[r] = _mm512_maskz_loadu_ps(m1, t->c + r * t->ldc + 16);
        } else {
            c0[r] = _mm512_setzero_ps();
            c1[r] = _mm512_setzero_ps();
        }
        if (t->column_bias) {
            c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, t->column_bias));
            c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, t->column_bias + 16));
        }
        if (t->row_bias) {
            const __m512 v = _mm512_set1_ps(t->row_bias[r]);
            c0[r] = _mm512_add_ps(c0[r], v);
            c1[r] = _mm512_add_ps(c1[r], v);
        }
    }
    const float *a = t->a;
    const float *b = t->b;
    const long a_row = t->a_row, a_k = t->a_k, b_k = t->b_k;
    for (long r = 0; r < t->k; r++) {
        const float *row = indirect ? t->b_rows[r] + t->b_column : b;
        // A packed left operand (a convolution's filters) streams from memory once per image:
        // ask for it 16 k steps ahead (measured on ResNet-18 shapes: 23.9 → 21.1 ms an image).
        if (a_row == 1) _mm_prefetch((const char *)(a + 16 * a_k), _MM_HINT_T0);
        __m512 b0, b1;
        if (masked_b) {
            b0 = _mm512_maskz_loadu_ps(m0, row);
            b1 = _mm512_maskz_loadu_ps(m1, row + 16);
        } else {
            b0 = _mm512_loadu_ps(row);
            b1 = _mm512_loadu_ps(row + 16);
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            const __m512 v = _mm512_set1_ps(a[i * a_row]);
            c0[i] = _mm512_fmadd_ps(v, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(v, b1, c1[i]);
        }
        a += a_k;
        if (!indirect) b += b_k;
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        if (t->activation) {
            c0[r] = activate512(c0[r], t->activation);
            c1[r] = activate512(c1[r], t->activation);
        }
        _mm512_mask_storeu_ps(t->c + r * t->ldc, m0, c0[r]);
        _mm512_mask_storeu_ps(t->c + r * t->ldc + 16, m1, c1[r]);
    }
}

AVX512_ENTRY void run512(const Tile *t, int rows, int masked_b) {
#define CASE(R) \
    case R: \
        if (t->b_rows) { masked_b ? tile512(t, R, 1, 1) : tile512(t, R, 0, 1); } \
        else { masked_b ? tile512(t, R, 1, 0) : tile512(t, R, 0, 0); } \
        break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
    }
#undef CASE
}

AVX2 __m256i mask256(int count) {  // lanes below count set
    const __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), index);
}


AVX2 float reduce256(__m256 v, int maximum) {
    __m128 four = maximum ? _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1))
                          : _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 two = maximum ? _mm_max_ps(four, _mm_movehl_ps(four, four)) : _mm_add_ps(four, _mm_movehl_ps(four, four));
    __m128 one = maximum ? _mm_max_ss(two, _mm_shuffle_ps(two, two, 1)) : _mm_add_ss(two, _mm_shuffle_ps(two, two, 1));
    return _mm_cvtss_f32(one);
}

AVX2_ENTRY void softmax256(const float *x, float *y, long n, const float *bias, long bias_stride, int logarithm) {
    const __m256 negative_infinity = _mm256_set1_ps(-__builtin_inff());
    const float *source = x;
    __m256 vmax = negative_infinity;
    for (long k = 0; k < n; k += 8) {
        const __m256i m = mask256(n - k >= 8 ? 8 : (int)(n - k));
        __m256 v = _mm256_blendv_ps(negative_infinity, _mm256_maskload_ps(x + k, m), _mm256_castsi256_ps(m));
        if (bias) {
            v = _mm256_add_ps(v, bias_stride == 0 ? _mm256_set1_ps(bias[0]) : _mm256_maskload_ps(bias + k, m));
            _mm256_maskstore_ps(y + k, m, v);
        }
        vmax = _mm256_max_ps(vmax, v);
    }
    if (bias) source = y;
    const float maximum = reduce256(vmax, 1);
    const __m256 shift = _mm256_set1_ps(maximum);
    __m256 vsum = _mm256_setzero_ps();
    for (long k = 0; k < n; k += 8) {
        const __m256i m = mask256(n - k >= 8 ? 8 : (int)(n - k));
        const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(source + k, m), shift)), _mm256_castsi256_ps(m));
        if (!logarithm) _mm256_maskstore_ps(y + k, m, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    const float sum = reduce256(vsum, 0);
    const __m256 scale = _mm256_set1_ps(logarithm ? maximum + __builtin_logf(sum) : 1 / sum);
    for (long k = 0; k < n; k += 8) {
        const __m256i m = mask256(n - k >= 8 ? 8 : (int)(n - k));
        if (logarithm) {
            _mm256_maskstore_ps(y + k, m, _mm256_sub_ps(_mm256_maskload_ps(source + k, m), scale));
        } else {
            _mm256_maskstore_ps(y + k, m, _mm256_mul_ps(_mm256_maskload_ps(y + k, m), scale));
        }
    }
}

// R rows × 16 columns.
AVX2 void tile256(const Tile *t, const int R, const int masked_b, const int indirect) {
    const int columns = t->columns;
    const __m256i m0 = mask256(columns), m1 = mask256(columns - 8);
    __m256 c0[6], c1[6];
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        if (t->load_c) {
            c0[r] = _mm256_maskload_ps(t->c + r * t->ldc, m0);
            c1[r] = _mm256_maskload_ps(t->c + r * t->ldc + 8, m1);
        } else {
            c0[r] = _mm256_setzero_ps();
            c1[r] = _mm256_setzero_ps();
        }
        if (t->column_bias) {
            c0[r] = _mm256_add_ps(c0[r], _mm256_maskload_ps(t->column_bias, m0));
            c1[r] = _mm256_add_ps(c1[r], _mm256_maskload_ps(t->column_bias + 8, m1));
        }
        if (t->row_bias) {
            const __m256 v = _mm256_set1_ps(t->row_bias[r]);
            c0[r] = _mm256_add_ps(c0[r], v);
            c1[r] = _mm256_add_ps(c1[r], v);
        }
    }
    const float *a = t->a;
    const float *b = t->b;
    const long a_row = t->a_row, a_k = t->a_k, b_k = t->b_k;
    for (long r = 0; r < t->k; r++) {
        const float *row = indirect ? t->b_rows[r] + t->b_column : b;
        if (a_row == 1) _mm_prefetch((const char *)(a + 16 * a_k), _MM_HINT_T0);
        __m256 b0, b1;
        if (masked_b) {
            b0 = _mm256_maskload_ps(row, m0);
            b1 = _mm256_maskload_ps(row + 8, m1);
        } else {
            b0 = _mm256_loadu_ps(row);
            b1 = _mm256_loadu_ps(row + 8);
        }
#pragma clang loop unroll(full)
        for (int i = 0; i < R; i++) {
            const __m256 v = _mm256_broadcast_ss(a + i * a_row);
            c0[i] = _mm256_fmadd_ps(v, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(v, b1, c1[i]);
        }
        a += a_k;
        if (!indirect) b += b_k;
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < R; r++) {
        if (t->activation) {
            c0[r] = activate256(c0[r], t->activation);
            c1[r] = activate256(c1[r], t->activation);
        }
        _mm256_maskstore_ps(t->c + r * t->ldc, m0, c0[r]);
        _mm256_maskstore_ps(t->c + r * t->ldc + 8, m1, c1[r]);
    }
}

AVX2_ENTRY void run256(const Tile *t, int rows, int masked_b) {
#define CASE(R) \
    case R: \
        if (t->b_rows) { masked_b ? tile256(t, R, 1, 1) : tile256(t, R, 0, 1); } \
        else { masked_b ? tile256(t, R, 1, 0) : tile256(t, R, 0, 0); } \
        break;
    switch (rows) {
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
    }
#undef CASE
}

static void run_tile(int isa, const Tile *t, int rows, int masked_b) {
    if (isa == FULCRUM_GEMM_AVX512) {
        run512(t, rows, masked_b);
    } else {
        run256(t, rows, masked_b);
    }
}

void fulcrum_softmax_row(int isa, const float *x, float *y, long n, const float *bias, long bias_stride, int logarithm) {
    if (n <= 0) return;
    if (isa == FULCRUM_GEMM_AVX512) {
        softmax512(x, y, n, bias, bias_stride, logarithm);
    } else if (isa == FULCRUM_GEMM_AVX2) {
        softmax256(x, y, n, bias, bias_stride, logarithm);
    }
}

#else
void fulcrum_softmax_row(int isa, const float *x, float *y, long n, const float *bias, long bias_stride, int logarithm) {
    (void)isa; (void)x; (void)y; (void)n; (void)bias; (void)bias_stride; (void)logarithm;
}

static void run_tile(int isa, const Tile *t, int rows, int masked_b) {
    (void)isa; (void)t; (void)rows; (void)masked_b;
}
#endif

// C's rows when k is 0: [C] + bias, then the activation (a tile with no k steps).
static void fill_without_product(int isa, long m, long n, float *c, long ldc, const float *column_bias, const float *row_bias,
                                 int accumulate, int activation) {
    const long mr = fulcrum_gemm_tile_rows(isa), nr = fulcrum_gemm_tile_columns(isa);
    static const float none = 0;
    for (long i0 = 0; i0 < m; i0 += mr) {
        for (long j0 = 0; j0 < n; j0 += nr) {
            const Tile t = {
                .k = 0, .a = &none, .a_row = 0, .a_k = 0, .b = &none, .b_k = 0,
                .c = c + i0 * ldc + j0, .ldc = ldc,
                .columns = (int)(n - j0 < nr ? n - j0 : nr),
                .load_c = accumulate,
                .column_bias = column_bias ? column_bias + j0 : NULL,
                .row_bias = row_bias ? row_bias + i0 : NULL,
                .activation = activation,
            };
            run_tile(isa, &t, (int)(m - i0 < mr ? m - i0 : mr), 1);
        }
    }
}

// MARK: - Drivers

// One product: the right operand packed (A read in place, row stride lda) or the left one (B read
// in place, with row stride ldb or through row pointers).
typedef struct {
    int isa, left;
    long m, n, k;
    const float *a;
    long lda;
    const float *packed;
    const float *b;
    long ldb;
    const float *const *b_rows;
    float *c;
    long ldc;
    const float *column_bias, *row_bias;
    int accumulate, activation;
} Product;

// The product's columns in panels [first, end) (NR columns each) and rows in blocks
// [first_row_block, end_row_block) (MR rows each).
static void product_tiles(const Product *p, long first, long end, long first_row_block, long end_row_block) {
    const long mr = fulcrum_gemm_tile_rows(p->isa), nr = fulcrum_gemm_tile_columns(p->isa);
    const long m = p->m, n = p->n, k = p->k;
    const long blocks = end_row_block - first_row_block, panels = end - first;
    // The larger operand is read once per k block, the smaller one (which stays cached) once per
    // block of the larger.
    const int rows_outer = blocks * mr > panels * nr;
    for (long k0 = 0; k0 < k; k0 += KC) {
        const long kc = k - k0 < KC ? k - k0 : KC;
        const int first_block = k0 == 0, last_block = k0 + kc == k;
        for (long outer = 0; outer < (rows_outer ? blocks : panels); outer++) {
            for (long inner = 0; inner < (rows_outer ? panels : blocks); inner++) {
                const long i0 = (first_row_block + (rows_outer ? outer : inner)) * mr;
                const long j0 = (first + (rows_outer ? inner : outer)) * nr;
                const int columns = (int)(n - j0 < nr ? n - j0 : nr);
                Tile t = {
                    .k = kc,
                    .c = p->c + i0 * p->ldc + j0, .ldc = p->ldc,
                    .columns = columns,
                    .load_c = !first_block || p->accumulate,
                    .activation = last_block ? p->activation : FULCRUM_GEMM_ACTIVATION_NONE,
                };
                if (p->left) {
                    t.a = p->packed + i0 * k + k0 * mr, t.a_row = 1, t.a_k = mr;
                    if (p->b_rows) {
                        t.b_rows = p->b_rows + k0, t.b_column = j0;
                    } else {
                        t.b = p->b + k0 * p->ldb + j0, t.b_k = p->ldb;
                    }
                    t.row_bias = first_block && p->row_bias ? p->row_bias + i0 : NULL;
                } else {
                    t.a = p->a + i0 * p->lda + k0, t.a_row = p->lda, t.a_k = 1;
                    t.b = p->packed + j0 * k + k0 * nr, t.b_k = nr;
                    t.column_bias = first_block && p->column_bias ? p->column_bias + j0 : NULL;
                }
                run_tile(p->isa, &t, (int)(m - i0 < mr ? m - i0 : mr), p->left && columns < nr);
            }
        }
    }
}

// MARK: - Threads
//
// With more than one thread a product's panels are cut into parts that the caller and helper
// threads (started on first use, one per extra thread, kept for the process's life) claim from a
// shared counter: a helper that is slow to wake costs nothing, the caller claims the parts it
// has not reached. Helpers spin briefly after each product, for the next one of a model's
// layers, then sleep on a condition variable. One product uses the helpers at a time; a
// concurrent caller (another model instance) runs its product on its own thread.

#include <pthread.h>

enum { MAX_THREADS = 64, PARTS_PER_THREAD = 4, SPINS = 2000, MIN_PART_WORK = 1 << 15 };

static struct {
    pthread_mutex_t busy;        // held by the product using the helpers
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    unsigned long generation;    // bumped (release) for each product
    // The claim ticket: the product's generation (high 32 bits) and the next part (low 32 bits).
    // A claim is a compare-and-swap of the whole ticket, so a helper still holding an earlier
    // product's generation can never claim a part of a later one.
    unsigned long ticket;
    long parts;                  // of the current product; 0 between products
    long done;                   // parts finished
    // The work: part p of `parts` runs run(job, p, parts).
    void (*run)(const void *job, long part, long parts);
    const void *job;
    int helpers;                 // started so far
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

// Claims and runs parts of product `generation` until none is left.
static void claim_parts(unsigned long generation) {
    const unsigned long tag = (generation & 0xFFFFFFFFul) << 32;
    unsigned long ticket = __atomic_load_n(&pool.ticket, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((ticket & ~0xFFFFFFFFul) != tag) return;
        const long part = (long)(ticket & 0xFFFFFFFFul);
        const long parts = __atomic_load_n(&pool.parts, __ATOMIC_ACQUIRE);
        if (part >= parts) return;
        if (!__atomic_compare_exchange_n(&pool.ticket, &ticket, ticket + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            continue;  // `ticket` now holds the current value
        }
        pool.run(pool.job, part, parts);
        __atomic_fetch_add(&pool.done, 1, __ATOMIC_RELEASE);
        ticket = __atomic_load_n(&pool.ticket, __ATOMIC_ACQUIRE);
    }
}

static void *helper_main(void *argument) {
    (void)argument;
    unsigned long seen = 0;
    for (;;) {
        unsigned long generation;
        int spins = 0;
        while ((generation = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE)) == seen) {
            if (++spins < SPINS) {
#if FULCRUM_X86
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&pool.sleep_lock);
            while ((generation = __atomic_load_n(&pool.generation, __ATOMIC_ACQUIRE)) == seen) {
                pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            }
            pthread_mutex_unlock(&pool.sleep_lock);
            break;
        }
        seen = generation;
        claim_parts(generation);
    }
    return NULL;
}

// Runs parts 0..<parts of `job` on up to `threads` threads; returns 0 (having run nothing) when
// the helpers are busy with another caller's work.
static int run_parts(void (*run)(const void *, long, long), const void *job, long parts, int threads) {
    if (pthread_mutex_trylock(&pool.busy) != 0) return 0;
    while (pool.helpers < threads - 1) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, helper_main, NULL) != 0) break;
        pthread_detach(thread);
        pool.helpers++;
    }
    // Order matters: the new ticket first (a helper of an earlier product then fails its claim),
    // then the product, then its part count (release: a claimer that sees it sees the product),
    // then the generation that wakes the helpers.
    const unsigned long generation = pool.generation + 1;
    __atomic_store_n(&pool.ticket, (generation & 0xFFFFFFFFul) << 32, __ATOMIC_RELEASE);
    pool.run = run;
    pool.job = job;
    __atomic_store_n(&pool.done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&pool.parts, parts, __ATOMIC_RELEASE);
    __atomic_store_n(&pool.generation, generation, __ATOMIC_RELEASE);
    pthread_mutex_lock(&pool.sleep_lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.sleep_lock);
    claim_parts(generation);
    while (__atomic_load_n(&pool.done, __ATOMIC_ACQUIRE) < parts) {
#if FULCRUM_X86
        __builtin_ia32_pause();
#endif
    }
    // Every part is done; a late helper finds none to claim.
    __atomic_store_n(&pool.parts, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&pool.busy);
    return 1;
}

// A left-packed product (a convolution's filters) with more rows than columns is split by
// rows: each thread then streams only its share of the filters, which are read from memory
// once per image, while the smaller B stays in the shared cache. Other products are split by
// column panels.
static int splits_rows(const Product *p) {
    return p->left && p->m > p->n;
}

static void product_part(const void *job, long part, long parts) {
    const Product *p = job;
    const long mr = fulcrum_gemm_tile_rows(p->isa), nr = fulcrum_gemm_tile_columns(p->isa);
    const long panels = (p->n + nr - 1) / nr, blocks = (p->m + mr - 1) / mr;
    if (splits_rows(p)) {
        product_tiles(p, 0, panels, blocks * part / parts, blocks * (part + 1) / parts);
    } else {
        product_tiles(p, panels * part / parts, panels * (part + 1) / parts, 0, blocks);
    }
}

// Runs the product, split over up to `threads` threads when it is worth it.
static void run_product(const Product *job, int threads) {
    const long mr = fulcrum_gemm_tile_rows(job->isa), nr = fulcrum_gemm_tile_columns(job->isa);
    const long panels = (job->n + nr - 1) / nr, blocks = (job->m + mr - 1) / mr;
    const long units = splits_rows(job) ? blocks : panels;
    const double work = (double)job->m * (double)job->n * (double)job->k;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    long parts = (long)threads * PARTS_PER_THREAD;
    if (parts > units) parts = units;
    // Enough multiply-adds per part that handing it over is worth it.
    while (parts > 1 && work / (double)parts < MIN_PART_WORK) parts--;
    if (threads <= 1 || parts <= 1 || !run_parts(product_part, job, parts, threads)) product_tiles(job, 0, panels, 0, blocks);
}

typedef struct {
    void (*body)(void *context, long part, long begin, long end);
    void *context;
    long count;
} Loop;

static void loop_part(const void *job, long part, long parts) {
    const Loop *loop = job;
    loop->body(loop->context, part, loop->count * part / parts, loop->count * (part + 1) / parts);
}

void fulcrum_parallel_for(int threads, long count, long parts, void (*body)(void *context, long part, long begin, long end),
                          void *context) {
    if (count <= 0) return;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (parts > count) parts = count;
    const Loop loop = {body, context, count};
    if (threads <= 1 || parts <= 1 || !run_parts(loop_part, &loop, parts, threads)) body(context, 0, 0, count);
}

// MARK: - Entry points

void fulcrum_gemm_right_packed(int isa, long m, long n, long k, const float *a, long lda, const float *packed,
                               float *c, long ldc, const float *column_bias, int accumulate, int activation,
                               int threads) {
    if (fulcrum_gemm_tile_rows(isa) == 0 || m <= 0 || n <= 0) return;
    if (k <= 0) {
        fill_without_product(isa, m, n, c, ldc, column_bias, NULL, accumulate, activation);
        return;
    }
    const Product job = {
        .isa = isa, .left = 0, .m = m, .n = n, .k = k, .a = a, .lda = lda, .packed = packed,
        .c = c, .ldc = ldc, .column_bias = column_bias, .accumulate = accumulate, .activation = activation,
    };
    run_product(&job, threads);
}

static void left_packed(int isa, long m, long n, long k, const float *packed, const float *b, long ldb,
                        const float *const *b_rows, float *c, long ldc, const float *row_bias, int accumulate,
                        int activation, int threads) {
    if (fulcrum_gemm_tile_rows(isa) == 0 || m <= 0 || n <= 0) return;
    if (k <= 0) {
        fill_without_product(isa, m, n, c, ldc, NULL, row_bias, accumulate, activation);
        return;
    }
    const Product job = {
        .isa = isa, .left = 1, .m = m, .n = n, .k = k, .packed = packed, .b = b, .ldb = ldb, .b_rows = b_rows,
        .c = c, .ldc = ldc, .row_bias = row_bias, .accumulate = accumulate, .activation = activation,
    };
    run_product(&job, threads);
}

void fulcrum_gemm_left_packed(int isa, long m, long n, long k, const float *packed, const float *b, long ldb,
                              float *c, long ldc, const float *row_bias, int accumulate, int activation, int threads) {
    left_packed(isa, m, n, k, packed, b, ldb, NULL, c, ldc, row_bias, accumulate, activation, threads);
}

void fulcrum_gemm_left_packed_rows(int isa, long m, long n, long k, const float *packed, const float *const *rows,
                                   float *c, long ldc, const float *row_bias, int accumulate, int activation,
                                   int threads) {
    left_packed(isa, m, n, k, packed, NULL, 0, rows, c, ldc, row_bias, accumulate, activation, threads);
}
