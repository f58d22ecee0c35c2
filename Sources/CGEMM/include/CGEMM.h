// Fulcrum's own single-precision matrix-product microkernels (AVX-512 and AVX2 + FMA), for
// products where one operand is a model's constant weights: the constant side is packed once,
// at load, into the panel layout the kernel reads, so no call packs anything (OpenBLAS 0.3.21's
// sgemm packs both operands on every call, which dominates at the batch sizes a server sees).
// Everything is row-major; sizes are element counts. `threads` > 1 splits a product's columns
// between the caller and helper threads (gemm.c, "Threads"); 1 runs it on the caller's thread.
// See docs/runtime.md ("Fulcrum's microkernels").
#ifndef FULCRUM_CGEMM_H
#define FULCRUM_CGEMM_H
#include <stddef.h>

// Instruction sets the kernels exist for.
enum {
    FULCRUM_GEMM_NONE = 0,    // no kernel: use OpenBLAS
    FULCRUM_GEMM_AVX2 = 1,    // AVX2 + FMA: 6 × 16 tiles
    FULCRUM_GEMM_AVX512 = 2,  // AVX-512 F/DQ/VL: 8 × 32 tiles
};

// What a product applies to C before storing it.
enum {
    FULCRUM_GEMM_ACTIVATION_NONE = 0,
    FULCRUM_GEMM_ACTIVATION_RELU = 1,  // max(0, x)
    FULCRUM_GEMM_ACTIVATION_GELU = 2,  // exact (erf) Gelu, VectorMath.gelu's approximation
    FULCRUM_GEMM_ACTIVATION_HARDSWISH = 3,  // x · min(max(x / 6 + 1/2, 0), 1) (ONNX HardSwish)
};

// The best instruction set this CPU and operating system support (CPUID and XCR0; cached).
int fulcrum_gemm_detect(void);

// Rows (MR) and columns (NR) of one tile for `isa`; 0 for FULCRUM_GEMM_NONE.
int fulcrum_gemm_tile_rows(int isa);
int fulcrum_gemm_tile_columns(int isa);

// Floats a right-hand (k × n) operand takes packed for `isa`: n rounded up to NR, times k.
// Returns 0 when that overflows size_t.
size_t fulcrum_gemm_packed_right_count(int isa, long k, long n);
// Packs B (element (r, j) at b[r * row_stride + j * column_stride]: a transposed B has
// row_stride 1) times `scale` into panels [n / NR][k][NR], zero-padded on the right.
void fulcrum_gemm_pack_right(int isa, long k, long n, const float *b, long row_stride, long column_stride, float scale,
                             float *packed);

// Floats a left-hand (m × k) operand takes packed: m rounded up to MR, times k.
size_t fulcrum_gemm_packed_left_count(int isa, long m, long k);
// Packs A (m × k, row stride lda) into blocks [m / MR][k][MR], zero-padded below, each
// element multiplied by `scale`.
void fulcrum_gemm_pack_left(int isa, long m, long k, const float *a, long lda, float scale, float *packed);

// C (m × n, row stride ldc) = activation([C if accumulate] + A · packed B + [column_bias]). A is m × k with row stride lda. column_bias has n elements or is NULL.
void fulcrum_gemm_right_packed(int isa, long m, long n, long k, const float *a, long lda, const float *packed,
                               float *c, long ldc, const float *column_bias, int accumulate, int activation,
                               int threads);

// C (m × n) = activation([C if accumulate] + packed A · B + [row_bias]). B is
// k × n with row stride ldb (read in place: an im2col matrix or an image's channels).
// row_bias has m elements or is NULL.
void fulcrum_gemm_left_packed(int isa, long m, long n, long k, const float *packed, const float *b, long ldb,
                              float *c, long ldc, const float *row_bias, int accumulate, int activation, int threads);

// The same with B's rows given by pointers: B(r, j) = rows[r][j]. A stride-1 convolution reads
// its zero-padded input in place this way (row (c, kh, kw) starts at channel c's plane shifted by
// kh rows and kw columns), with no im2col matrix.
void fulcrum_gemm_left_packed_rows(int isa, long m, long n, long k, const float *packed, const float *const *rows,
                                   float *c, long ldc, const float *row_bias, int accumulate, int activation, int threads);

// Runs body(context, part, begin, end) for `parts` consecutive ranges of 0..<count (each part
// once, part < parts) on up to `threads` threads of the products' helpers; on the caller's
// thread alone, as part 0 over the whole range, when threads or parts is 1 or the helpers
// are busy with another caller's work. Products run inside the body use the caller's thread.
void fulcrum_parallel_for(int threads, long count, long parts, void (*body)(void *context, long part, long begin, long end),
                          void *context);

// A depthwise convolution's window over one plane: input height × width, kernel, strides,
// dilations, the top and left padding (the bottom and right follow from out_h and out_w), and
// the output size.
typedef struct {
    long height, width;
    long kernel_h, kernel_w;
    long stride_h, stride_w;
    long dilation_h, dilation_w;
    long pad_top, pad_left;
    long out_h, out_w;
} FulcrumWindow;

// Depthwise convolution of `planes` NCHW planes (batch × channels; plane p is channel
// p % channels): y[p] = activation(bias[c] + Σ taps · x[p] over the zero-padded window), with
// `weights` [channels][kernel_h][kernel_w] and `bias` NULL or [channels]. `activation` is NONE,
// RELU or HARDSWISH (others are the caller's). Vectorised for strides 1 and 2 with `isa`; scalar
// otherwise and for FULCRUM_GEMM_NONE. Planes split over up to `threads` threads (planes.c).
void fulcrum_depthwise_conv(int isa, const FulcrumWindow *window, long planes, long channels, const float *x,
                            const float *weights, const float *bias, float *y, int activation, int threads);

// dst[j] = src[j · stride] for j < count (one row of an im2col matrix); vectorised for strides
// 1 and 2 with AVX-512, reading nothing past src[(count − 1) · stride].
void fulcrum_copy_strided(int isa, float *dst, const float *src, long count, long stride);

// dst[j] = max(dst[j], src[j · stride]) for j < count, a NaN in src leaving dst[j] (one tap of a
// max pooling row); vectorised for strides 1 and 2 with AVX-512 and AVX2, reading nothing past
// src[(count − 1) · stride].
void fulcrum_max_strided(int isa, float *dst, const float *src, long count, long stride);

// One softmax (or, with logarithm, LogSoftmax) row of n > 0 elements: y = softmax(x + bias),
// bias NULL, one value (bias_stride 0) or n values (bias_stride 1); y may be x. The same
// three passes as CPUBackend.softmaxRow, with exp as in VectorMath. Nothing for
// FULCRUM_GEMM_NONE.
void fulcrum_softmax_row(int isa, const float *x, float *y, long n, const float *bias, long bias_stride, int logarithm);

#endif
