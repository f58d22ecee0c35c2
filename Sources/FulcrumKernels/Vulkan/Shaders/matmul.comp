#version 450
#extension GL_GOOGLE_include_directive : require
// C = act(alpha · op(A) · op(B) + beta · C + bias), row-major FP32. op(A) is m × k (A stored k × m
// when transA), op(B) is k × n (B stored n × k when transB), bias has n elements (one per column).
// A 16 × 16 workgroup computes a 64 × 64 block of C, each invocation 4 × 4 outputs strided by 16
// (conflict-free shared-memory reads, coalesced writes); K advances in tiles of 16. Batches run
// along gl_WorkGroupID.z, each matrix offset by its batch stride (0: every batch shares it).
// The push constants are matmul128.comp's (vectorFlags unused here).
#include "Activation.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer C { float c[]; };
layout(push_constant) uniform Params {
    uint m, n, k;
    uint lda, ldb, ldc;
    uint transA, transB;
    uint hasBias;
    uint activation;     // an applyOp code
    float alpha, beta;
    float activationAlpha;
    uint strideA, strideB, strideC;  // elements between consecutive batch matrices (0: shared)
    uint vectorFlags;    // matmul128.comp's vec4 flags; unused here
} p;

const uint BM = 64u;
const uint BN = 64u;
const uint BK = 16u;

shared float As[BK][BM + 4u];
shared float Bs[BK][BN + 4u];

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint rowBase = gl_WorkGroupID.y * BM;
    uint colBase = gl_WorkGroupID.x * BN;
    uint batch = gl_WorkGroupID.z;
    uint offA = batch * p.strideA;
    uint offB = batch * p.strideB;
    uint offC = batch * p.strideC;

    float acc[4][4];
    for (uint i = 0u; i < 4u; i++) {
        for (uint j = 0u; j < 4u; j++) { acc[i][j] = 0.0; }
    }

    for (uint t = 0u; t < p.k; t += BK) {
        // Each tile is 1024 elements: 4 per invocation, mapped so global reads are contiguous.
        for (uint l = 0u; l < 4u; l++) {
            uint e = tid + l * 256u;
            uint r, kk;
            if (p.transA != 0u) { r = e % BM; kk = e / BM; } else { kk = e % BK; r = e / BK; }
            uint row = rowBase + r;
            uint kIndex = t + kk;
            float v = 0.0;
            if (row < p.m && kIndex < p.k) {
                v = p.transA != 0u ? a[offA + kIndex * p.lda + row] : a[offA + row * p.lda + kIndex];
            }
            As[kk][r] = v;

            uint col;
            if (p.transB != 0u) { kk = e % BK; col = e / BK; } else { col = e % BN; kk = e / BN; }
            uint column = colBase + col;
            kIndex = t + kk;
            float w = 0.0;
            if (column < p.n && kIndex < p.k) {
                w = p.transB != 0u ? b[offB + column * p.ldb + kIndex] : b[offB + kIndex * p.ldb + column];
            }
            Bs[kk][col] = w;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float av[4];
            float bv[4];
            for (uint i = 0u; i < 4u; i++) { av[i] = As[kk][ty + 16u * i]; }
            for (uint j = 0u; j < 4u; j++) { bv[j] = Bs[kk][tx + 16u * j]; }
            for (uint i = 0u; i < 4u; i++) {
                for (uint j = 0u; j < 4u; j++) { acc[i][j] += av[i] * bv[j]; }
            }
        }
        barrier();
    }

    for (uint i = 0u; i < 4u; i++) {
        uint row = rowBase + ty + 16u * i;
        if (row >= p.m) { continue; }
        for (uint j = 0u; j < 4u; j++) {
            uint column = colBase + tx + 16u * j;
            if (column >= p.n) { continue; }
            uint index = offC + row * p.ldc + column;
            float v = p.alpha * acc[i][j];
            if (p.beta != 0.0) { v += p.beta * c[index]; }
            if (p.hasBias != 0u) { v += bias[column]; }
            c[index] = applyOp(p.activation, v, p.activationAlpha);
        }
    }
}
