#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// The small-m sgemm (SGEMMVariant.splitk): matmul.comp's contract and first 17 push-constant
// words — C = act(alpha · op(A) · op(B) + beta · C + bias), row-major FP32, transposes, leading
// dimensions, a per-column bias, batches with element strides — with K optionally split across
// workgroups so that a product with few 64 × 64 tiles (m ≤ 64: an MLP at serving batch sizes)
// still keeps every multiprocessor busy.
//
// A 16 × 16 workgroup computes a 64 × 64 block of C over k indices [split · kChunk, +kChunk);
// each invocation keeps 4 × 4 outputs (rows 4·ty.., columns 4·tx..) so each inner-loop step
// reads one vec4 of A (broadcast) and one of B (contiguous) from shared memory. K advances
// BK = 32 at a time through two shared buffers, the next tile loaded into registers while the
// current one is multiplied. Each invocation loads one 4 × 4 block (0..127: op(A), 128..255:
// op(B)); blocks read along k are transposed in registers with constant indices, so shared
// memory only sees whole-vec4 stores (matmul128.comp explains why). kChunk is a multiple of BK.
// gl_WorkGroupID.z = split · batches + batch.
// splits == 1: the epilogue (alpha, beta · C, bias, activation) is applied here and C written.
// splits > 1: the raw partial sums go to the workspace W[split][batch][m][n] and
// matmulreduce.comp adds the splits and applies the epilogue once.
#include "Activation.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 0) readonly buffer A4 { vec4 a4[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 1) readonly buffer B4 { vec4 b4[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) buffer C { float c[]; };
layout(std430, set = 0, binding = 3) buffer C4 { vec4 c4[]; };
layout(std430, set = 0, binding = 4) writeonly buffer W { float w[]; };
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
    uint kChunk;         // k indices per split (a multiple of BK)
    uint splits;         // 1: write C; more: write partial sums to W
    uint batches;
} p;

const uint BM = 64u;
const uint BN = 64u;
const uint BK = 32u;
const uint ROW4 = BM / 4u;  // vec4s per shared row (no padding: 32 KiB in all, lavapipe's limit)
// Shared rows 4·kg .. 4·kg+3 hold their vec4 column g at g ^ kg (kg < 8 ≤ 16 columns), so the
// eight vec4 stores of a quarter-warp loading along k (kg 0..7, one g) hit eight different bank
// groups; a read of column x in row kk looks at x ^ (kk / 4), a constant per unrolled kk.

shared vec4 As[2][BK][ROW4];
shared vec4 Bs[2][BK][ROW4];

uint kEnd;  // one past this workgroup's last k index

vec4 read4(bool fromA, uint base, uint valid, bool vector) {
    vec4 v = vec4(0.0);
    if (vector && valid >= 4u) {
        v = fromA ? a4[base / 4u] : b4[base / 4u];
    } else {
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            if (j < valid) { v[j] = fromA ? a[base + j] : b[base + j]; }
        }
    }
    return v;
}

uint validCount(uint start, uint limit) { return start >= limit ? 0u : min(limit - start, 4u); }

// As in matmul128.comp: one 4 × 4 block as four vec4 rows of the k-major tile.
void loadBlock(bool fromA, bool alongK, bool vector, uint outer, uint outerLimit, uint kk, uint ld, uint off, out vec4 r[4]) {
    if (alongK) {
        vec4 v[4];
        uint kValid = validCount(kk, kEnd);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            v[j] = outer + j < outerLimit ? read4(fromA, off + (outer + j) * ld + kk, kValid, vector) : vec4(0.0);
        }
        [[unroll]] for (uint i = 0u; i < 4u; i++) { r[i] = vec4(v[0][i], v[1][i], v[2][i], v[3][i]); }
    } else {
        uint valid = validCount(outer, outerLimit);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            r[j] = kk + j < kEnd ? read4(fromA, off + (kk + j) * ld + outer, valid, vector) : vec4(0.0);
        }
    }
}

void loadTile(uint tid, uint t, uint rowBase, uint colBase, uint offA, uint offB, out vec4 r[4], out uint kg, out uint g) {
    bool fromA = tid < 128u;
    uint e = tid & 127u;
    bool alongK = fromA ? p.transA == 0u : p.transB != 0u;
    // Along k: 8 invocations cover one row's 32 k (128 contiguous bytes); otherwise 16 cover 64
    // contiguous floats of one k row.
    if (alongK) { kg = e & 7u; g = e >> 3u; } else { g = e & 15u; kg = e >> 4u; }
    if (fromA) {
        loadBlock(true, alongK, (p.vectorFlags & 1u) != 0u, rowBase + 4u * g, p.m, t + 4u * kg, p.lda, offA, r);
    } else {
        loadBlock(false, alongK, (p.vectorFlags & 2u) != 0u, colBase + 4u * g, p.n, t + 4u * kg, p.ldb, offB, r);
    }
}

void storeTile(uint tid, uint slot, vec4 r[4], uint kg, uint g) {
    if (tid < 128u) {
        [[unroll]] for (uint j = 0u; j < 4u; j++) { As[slot][4u * kg + j][g ^ kg] = r[j]; }
    } else {
        [[unroll]] for (uint j = 0u; j < 4u; j++) { Bs[slot][4u * kg + j][g ^ kg] = r[j]; }
    }
}

float epilogue(float value, uint index, uint column) {
    float v = p.alpha * value;
    if (p.beta != 0.0) { v += p.beta * c[index]; }
    if (p.hasBias != 0u) { v += bias[column]; }
    return applyOp(p.activation, v, p.activationAlpha);
}

// Four outputs of one row from `column` on: into C with the epilogue, or raw into W.
void writeOut(uint row, uint column, uint offC, uint offW, vec4 value) {
    if (row >= p.m) { return; }
    if (p.splits > 1u) {
        uint at = offW + row * p.n + column;
        if (column < p.n) { w[at] = value.x; }
        if (column + 1u < p.n) { w[at + 1u] = value.y; }
        if (column + 2u < p.n) { w[at + 2u] = value.z; }
        if (column + 3u < p.n) { w[at + 3u] = value.w; }
        return;
    }
    uint index = offC + row * p.ldc + column;
    if ((p.vectorFlags & 4u) != 0u && column + 3u < p.n) {
        vec4 v = p.alpha * value;
        if (p.beta != 0.0) { v += p.beta * c4[index / 4u]; }
        if (p.hasBias != 0u) { v += vec4(bias[column], bias[column + 1u], bias[column + 2u], bias[column + 3u]); }
        if (p.activation != OP_IDENTITY) {
            v = vec4(applyOp(p.activation, v.x, p.activationAlpha), applyOp(p.activation, v.y, p.activationAlpha),
                     applyOp(p.activation, v.z, p.activationAlpha), applyOp(p.activation, v.w, p.activationAlpha));
        }
        c4[index / 4u] = v;
    } else {
        if (column < p.n) { c[index] = epilogue(value.x, index, column); }
        if (column + 1u < p.n) { c[index + 1u] = epilogue(value.y, index + 1u, column + 1u); }
        if (column + 2u < p.n) { c[index + 2u] = epilogue(value.z, index + 2u, column + 2u); }
        if (column + 3u < p.n) { c[index + 3u] = epilogue(value.w, index + 3u, column + 3u); }
    }
}

void main() {
    uint tx = gl_LocalInvocationID.x;
    uint ty = gl_LocalInvocationID.y;
    uint tid = ty * 16u + tx;
    uint rowBase = gl_WorkGroupID.y * BM;
    uint colBase = gl_WorkGroupID.x * BN;
    uint split = gl_WorkGroupID.z / p.batches;
    uint batch = gl_WorkGroupID.z % p.batches;
    uint offA = batch * p.strideA;
    uint offB = batch * p.strideB;
    uint offC = batch * p.strideC;
    uint offW = (split * p.batches + batch) * p.m * p.n;
    uint kBegin = split * p.kChunk;
    kEnd = min(p.k, kBegin + p.kChunk);

    vec4 acc0 = vec4(0.0), acc1 = vec4(0.0), acc2 = vec4(0.0), acc3 = vec4(0.0);

    uint tiles = kEnd > kBegin ? (kEnd - kBegin + BK - 1u) / BK : 0u;
    vec4 next[4];
    uint kg, g;
    if (tiles > 0u) {
        loadTile(tid, kBegin, rowBase, colBase, offA, offB, next, kg, g);
        storeTile(tid, 0u, next, kg, g);
    }
    barrier();

    for (uint tile = 0u; tile < tiles; tile++) {
        uint current = tile & 1u;
        bool more = tile + 1u < tiles;
        if (more) { loadTile(tid, kBegin + (tile + 1u) * BK, rowBase, colBase, offA, offB, next, kg, g); }
        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            vec4 av = As[current][kk][ty ^ (kk / 4u)];
            vec4 bv = Bs[current][kk][tx ^ (kk / 4u)];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        if (more) { storeTile(tid, current ^ 1u, next, kg, g); }
        barrier();
    }

    uint row = rowBase + 4u * ty;
    uint column = colBase + 4u * tx;
    writeOut(row, column, offC, offW, acc0);
    writeOut(row + 1u, column, offC, offW, acc1);
    writeOut(row + 2u, column, offC, offW, acc2);
    writeOut(row + 3u, column, offC, offW, acc3);
}
