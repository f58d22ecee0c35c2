#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// The large-shape sgemm (SGEMMVariant.tile128): the same contract and push constants as
// matmul.comp — C = act(alpha · op(A) · op(B) + beta · C + bias), row-major FP32, transposes,
// leading dimensions, a per-column bias, batches along gl_WorkGroupID.z with element strides.
//
// A 16 × 16 workgroup computes a 128 × 128 block of C; each invocation keeps 8 × 8 outputs in
// registers: rows 4·ty .. 4·ty+3 and 64+4·ty .. 64+4·ty+3, columns likewise from tx, so every
// shared-memory read is one 16-byte vec4 (A broadcast across the half-warp, B contiguous) and
// every C row segment is written by 16 neighbours as contiguous vec4s. K advances BK at a time
// through two shared-memory buffers: the next tile is loaded from global memory into registers
// while the current one is multiplied, then stored into the other buffer (one barrier per tile).
// Both tiles are held k-major (As[k][m], Bs[k][n]); a row is BM + 4 floats so the transposing
// scalar stores of a non-transposed A (or transposed B) hit 32 different banks.
// Global loads are vec4 when the host says the leading dimension and batch stride are
// multiples of 4 (p.vectorFlags) and the four elements are inside the matrix; scalar otherwise.
// The flags and transposes are uniform, so their branches cost no divergence.
#include "Activation.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer C { float c[]; };
layout(std430, set = 0, binding = 3) buffer C4 { vec4 c4[]; };
layout(push_constant) uniform Params {
    uint m, n, k;
    uint lda, ldb, ldc;
    uint transA, transB;
    uint hasBias;
    uint activation;     // an applyOp code
    float alpha, beta;
    float activationAlpha;
    uint strideA, strideB, strideC;  // elements between consecutive batch matrices (0: shared)
    uint vectorFlags;    // bit 0: A, bit 1: B, bit 2: C may be accessed as aligned vec4s
} p;

const uint BM = 128u;
const uint BN = 128u;
const uint BK = 8u;                       // tunable: 8 or 16 (16 halves the barriers)
const uint THREADS = 256u;
const uint LOADS = BM * BK / 4u / THREADS;  // vec4 loads of each tile per invocation
const uint ROW4 = BM / 4u + 1u;           // vec4s per shared row: BM floats + 4 of padding

shared vec4 As[2][BK][ROW4];
shared vec4 Bs[2][BK][ROW4];

uint tid;
uint rowBase, colBase;
uint offA, offB, offC;

// One vec4 of op(A)'s tile starting at k index t, as element e of the tile's BM·BK/4 vec4s.
// Returns the values and, through r/kq, where they go.
vec4 loadA(uint t, uint e) {
    vec4 v = vec4(0.0);
    if (p.transA == 0u) {
        // A is m × k: four consecutive k of one row.
        uint row = rowBase + e / (BK / 4u);
        uint kk = t + (e % (BK / 4u)) * 4u;
        if (row < p.m) {
            uint base = offA + row * p.lda + kk;
            if ((p.vectorFlags & 1u) != 0u && kk + 3u < p.k) {
                v = a4[base / 4u];
            } else {
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    if (kk + j < p.k) { v[j] = a[base + j]; }
                }
            }
        }
    } else {
        // A is k × m: four consecutive rows of op(A) at one k.
        uint kk = t + e / (BM / 4u);
        uint row = rowBase + (e % (BM / 4u)) * 4u;
        if (kk < p.k) {
            uint base = offA + kk * p.lda + row;
            if ((p.vectorFlags & 1u) != 0u && row + 3u < p.m) {
                v = a4[base / 4u];
            } else {
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    if (row + j < p.m) { v[j] = a[base + j]; }
                }
            }
        }
    }
    return v;
}

void storeA(uint slot, uint e, vec4 v) {
    if (p.transA == 0u) {
        uint r = e / (BK / 4u);
        uint kq = (e % (BK / 4u)) * 4u;
        [[unroll]] for (uint j = 0u; j < 4u; j++) { As[slot][kq + j][r / 4u][r % 4u] = v[j]; }
    } else {
        As[slot][e / (BM / 4u)][e % (BM / 4u)] = v;
    }
}

vec4 loadB(uint t, uint e) {
    vec4 v = vec4(0.0);
    if (p.transB == 0u) {
        // B is k × n: four consecutive columns at one k.
        uint kk = t + e / (BN / 4u);
        uint column = colBase + (e % (BN / 4u)) * 4u;
        if (kk < p.k) {
            uint base = offB + kk * p.ldb + column;
            if ((p.vectorFlags & 2u) != 0u && column + 3u < p.n) {
                v = b4[base / 4u];
            } else {
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    if (column + j < p.n) { v[j] = b[base + j]; }
                }
            }
        }
    } else {
        // B is n × k: four consecutive k of one column of op(B).
        uint column = colBase + e / (BK / 4u);
        uint kk = t + (e % (BK / 4u)) * 4u;
        if (column < p.n) {
            uint base = offB + column * p.ldb + kk;
            if ((p.vectorFlags & 2u) != 0u && kk + 3u < p.k) {
                v = b4[base / 4u];
            } else {
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    if (kk + j < p.k) { v[j] = b[base + j]; }
                }
            }
        }
    }
    return v;
}

void storeB(uint slot, uint e, vec4 v) {
    if (p.transB == 0u) {
        Bs[slot][e / (BN / 4u)][e % (BN / 4u)] = v;
    } else {
        uint col = e / (BK / 4u);
        uint kq = (e % (BK / 4u)) * 4u;
        [[unroll]] for (uint j = 0u; j < 4u; j++) { Bs[slot][kq + j][col / 4u][col % 4u] = v[j]; }
    }
}

// alpha · acc, beta · C, bias and the activation for one element (scalar edge path).
float epilogue(float value, uint index, uint column) {
    float v = p.alpha * value;
    if (p.beta != 0.0) { v += p.beta * c[index]; }
    if (p.hasBias != 0u) { v += bias[column]; }
    return applyOp(p.activation, v, p.activationAlpha);
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    tid = ty * 16u + tx;
    rowBase = gl_WorkGroupID.y * BM;
    colBase = gl_WorkGroupID.x * BN;
    uint batch = gl_WorkGroupID.z;
    offA = batch * p.strideA;
    offB = batch * p.strideB;
    offC = batch * p.strideC;

    // acc[i][h]: row (i < 4 ? 4·ty + i : 64 + 4·ty + i - 4), columns 4·tx + 64·h .. +3.
    vec4 acc[8][2];
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        acc[i][0] = vec4(0.0);
        acc[i][1] = vec4(0.0);
    }

    uint tiles = (p.k + BK - 1u) / BK;
    vec4 nextA[LOADS];
    vec4 nextB[LOADS];
    if (tiles > 0u) {
        [[unroll]] for (uint l = 0u; l < LOADS; l++) {
            storeA(0u, tid + l * THREADS, loadA(0u, tid + l * THREADS));
            storeB(0u, tid + l * THREADS, loadB(0u, tid + l * THREADS));
        }
    }
    barrier();

    for (uint tile = 0u; tile < tiles; tile++) {
        uint current = tile & 1u;
        bool more = tile + 1u < tiles;
        if (more) {
            uint t = (tile + 1u) * BK;
            [[unroll]] for (uint l = 0u; l < LOADS; l++) {
                nextA[l] = loadA(t, tid + l * THREADS);
                nextB[l] = loadB(t, tid + l * THREADS);
            }
        }
        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            vec4 a0 = As[current][kk][ty];
            vec4 a1 = As[current][kk][ty + 16u];
            vec4 b0 = Bs[current][kk][tx];
            vec4 b1 = Bs[current][kk][tx + 16u];
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                acc[i][0] += a0[i] * b0;
                acc[i][1] += a0[i] * b1;
                acc[i + 4u][0] += a1[i] * b0;
                acc[i + 4u][1] += a1[i] * b1;
            }
        }
        if (more) {
            [[unroll]] for (uint l = 0u; l < LOADS; l++) {
                storeA(current ^ 1u, tid + l * THREADS, nextA[l]);
                storeB(current ^ 1u, tid + l * THREADS, nextB[l]);
            }
        }
        barrier();
    }

    bool vectorC = (p.vectorFlags & 4u) != 0u;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint row = rowBase + (i < 4u ? 4u * ty + i : 64u + 4u * ty + i - 4u);
        if (row >= p.m) { continue; }
        [[unroll]] for (uint h = 0u; h < 2u; h++) {
            uint column = colBase + 64u * h + 4u * tx;
            uint index = offC + row * p.ldc + column;
            if (vectorC && column + 3u < p.n) {
                vec4 v = p.alpha * acc[i][h];
                if (p.beta != 0.0) { v += p.beta * c4[index / 4u]; }
                if (p.hasBias != 0u) { v += vec4(bias[column], bias[column + 1u], bias[column + 2u], bias[column + 3u]); }
                if (p.activation != OP_IDENTITY) {
                    [[unroll]] for (uint j = 0u; j < 4u; j++) { v[j] = applyOp(p.activation, v[j], p.activationAlpha); }
                }
                c4[index / 4u] = v;
            } else {
                [[unroll]] for (uint j = 0u; j < 4u; j++) {
                    if (column + j < p.n) { c[index + j] = epilogue(acc[i][h][j], index + j, column + j); }
                }
            }
        }
    }
}
