#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
// The large-shape sgemm (SGEMMVariant.tile128): the same contract and push constants as
// matmul.comp — C = act(alpha · op(A) · op(B) + beta · C + bias), row-major FP32, transposes,
// leading dimensions, a per-column bias, batches along gl_WorkGroupID.z with element strides.
//
// A 16 × 16 workgroup computes a 128 × 128 block of C; each invocation keeps 8 × 8 outputs in
// registers: rows 4·ty .. 4·ty+3 and 64+4·ty .. 64+4·ty+3, columns likewise from tx, so every
// shared-memory read of the inner loop is one whole vec4 (A broadcast across the half-warp, B
// contiguous across it) and every C row segment is written by 16 neighbours as contiguous vec4s.
// K advances BK = 16 at a time through two shared-memory buffers: the next tile is loaded from
// global memory into registers while the current one is multiplied, then stored into the other
// buffer (one barrier per tile). Both tiles are held k-major (As[k][m/4], Bs[k][n/4]) as vec4s,
// swizzled (below) rather than padded.
//
// Loading: invocations 0..127 load op(A)'s 128 × 16 tile, 128..255 op(B)'s 16 × 128 tile (the
// split is per warp, so no divergence), each as one 4 × 4 block of four vec4 reads. A block
// read along k (A not transposed, B transposed) is transposed in registers with constant
// component indices, so every shared-memory store is a whole vec4: no scalar stores into
// vector components, no run-time vector or register-array indices anywhere (all small loops are
// [[unroll]]ed with constant trip counts; glslc -O unrolls them in the SPIR-V).
// Global reads are vec4 when the host says the leading dimension and batch stride are multiples
// of 4 (p.vectorFlags) and the four elements are inside the matrix; scalar with bounds otherwise.
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
const uint BK = 16u;
const uint ROW4 = BM / 4u;  // vec4s per shared row (no padding: 32 KiB in all, lavapipe's limit)
// Shared rows 4·kg .. 4·kg+3 hold their vec4 column g at g ^ swizzle(kg), so the eight vec4
// stores of a quarter-warp loading along k (kg 0..3, two g) land in eight different bank groups;
// a read of column x in row kk looks at x ^ swizzle(kk / 4) (a constant per unrolled kk).
uint swizzle(uint kg) { return 2u * kg; }

shared vec4 As[2][BK][ROW4];
shared vec4 Bs[2][BK][ROW4];

// Four consecutive floats of `a` (`b` when !fromA) at `base`, of which the first `valid` exist.
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

// How many of the four indices from `start` are below `limit`.
uint validCount(uint start, uint limit) { return start >= limit ? 0u : min(limit - start, 4u); }

// One 4 × 4 block of a tile, as four vec4 rows of the tile's k-major layout (row j is k index
// 4·kg + j, the vec4 covers 4 consecutive m (or n) from 4·g). `alongK`: the matrix is stored
// with k contiguous (A not transposed, B transposed), so the block is read as four vec4s along k
// (one per m/n index) and transposed here with constant indices.
// `outer`/`outerLimit`: first m (n) index of the block in the matrix and m (n); `ld`, `off`: the
// matrix's leading dimension and batch offset; `kk`: first k index of the block.
void loadBlock(bool fromA, bool alongK, bool vector, uint outer, uint outerLimit, uint kk, uint ld, uint off, out vec4 r[4]) {
    if (alongK) {
        vec4 v[4];
        uint kValid = validCount(kk, p.k);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            v[j] = outer + j < outerLimit ? read4(fromA, off + (outer + j) * ld + kk, kValid, vector) : vec4(0.0);
        }
        [[unroll]] for (uint i = 0u; i < 4u; i++) { r[i] = vec4(v[0][i], v[1][i], v[2][i], v[3][i]); }
    } else {
        uint valid = validCount(outer, outerLimit);
        [[unroll]] for (uint j = 0u; j < 4u; j++) {
            r[j] = kk + j < p.k ? read4(fromA, off + (kk + j) * ld + outer, valid, vector) : vec4(0.0);
        }
    }
}

// Which block invocation `tid` loads for the tile starting at k index `t`; the values go to
// `r`, their place to (kg, g): shared rows 4·kg .. 4·kg+3, vec4 column g.
void loadTile(uint tid, uint t, uint rowBase, uint colBase, uint offA, uint offB, out vec4 r[4], out uint kg, out uint g) {
    bool fromA = tid < 128u;
    uint e = tid & 127u;
    bool alongK = fromA ? p.transA == 0u : p.transB != 0u;
    // Along k: 4 invocations cover one row's 16 k (64 contiguous bytes); otherwise 32 cover 128
    // contiguous floats of one k row.
    if (alongK) { kg = e & 3u; g = e >> 2u; } else { g = e & 31u; kg = e >> 5u; }
    if (fromA) {
        loadBlock(true, alongK, (p.vectorFlags & 1u) != 0u, rowBase + 4u * g, p.m, t + 4u * kg, p.lda, offA, r);
    } else {
        loadBlock(false, alongK, (p.vectorFlags & 2u) != 0u, colBase + 4u * g, p.n, t + 4u * kg, p.ldb, offB, r);
    }
}

void storeTile(uint tid, uint slot, vec4 r[4], uint kg, uint g) {
    if (tid < 128u) {
        [[unroll]] for (uint j = 0u; j < 4u; j++) { As[slot][4u * kg + j][g ^ swizzle(kg)] = r[j]; }
    } else {
        [[unroll]] for (uint j = 0u; j < 4u; j++) { Bs[slot][4u * kg + j][g ^ swizzle(kg)] = r[j]; }
    }
}

// alpha · acc, beta · C, bias and the activation for one element (scalar edge path).
float epilogue(float value, uint index, uint column) {
    float v = p.alpha * value;
    if (p.beta != 0.0) { v += p.beta * c[index]; }
    if (p.hasBias != 0u) { v += bias[column]; }
    return applyOp(p.activation, v, p.activationAlpha);
}

// Writes four accumulated outputs of one row from `column` on (the epilogue applied). Called
// with each accumulator by name rather than from a loop over acc, so acc is never indexed at
// run time (which would move it to local memory).
void writeOut(uint row, uint column, uint offC, vec4 value) {
    if (row >= p.m) { return; }
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
    uint batch = gl_WorkGroupID.z;
    uint offA = batch * p.strideA;
    uint offB = batch * p.strideB;
    uint offC = batch * p.strideC;

    // acc[i][h]: row (i < 4 ? 4·ty + i : 64 + 4·ty + i - 4), columns 4·tx + 64·h .. +3.
    vec4 acc[8][2];
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        acc[i][0] = vec4(0.0);
        acc[i][1] = vec4(0.0);
    }

    uint tiles = (p.k + BK - 1u) / BK;
    vec4 next[4];
    uint kg, g;
    if (tiles > 0u) {
        loadTile(tid, 0u, rowBase, colBase, offA, offB, next, kg, g);
        storeTile(tid, 0u, next, kg, g);
    }
    barrier();

    for (uint tile = 0u; tile < tiles; tile++) {
        uint current = tile & 1u;
        bool more = tile + 1u < tiles;
        if (more) { loadTile(tid, (tile + 1u) * BK, rowBase, colBase, offA, offB, next, kg, g); }
        [[unroll]] for (uint kk = 0u; kk < BK; kk++) {
            uint sw = swizzle(kk / 4u);  // < 16, so (x + 16) ^ sw = (x ^ sw) + 16
            vec4 a0 = As[current][kk][ty ^ sw];
            vec4 a1 = As[current][kk][(ty ^ sw) + 16u];
            vec4 b0 = Bs[current][kk][tx ^ sw];
            vec4 b1 = Bs[current][kk][(tx ^ sw) + 16u];
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                acc[i][0] += a0[i] * b0;
                acc[i][1] += a0[i] * b1;
                acc[i + 4u][0] += a1[i] * b0;
                acc[i + 4u][1] += a1[i] * b1;
            }
        }
        if (more) { storeTile(tid, current ^ 1u, next, kg, g); }
        barrier();
    }

    uint r0 = rowBase + 4u * ty;
    uint r1 = r0 + 64u;
    uint c0 = colBase + 4u * tx;
    uint c1 = c0 + 64u;
    writeOut(r0, c0, offC, acc[0][0]);
    writeOut(r0, c1, offC, acc[0][1]);
    writeOut(r0 + 1u, c0, offC, acc[1][0]);
    writeOut(r0 + 1u, c1, offC, acc[1][1]);
    writeOut(r0 + 2u, c0, offC, acc[2][0]);
    writeOut(r0 + 2u, c1, offC, acc[2][1]);
    writeOut(r0 + 3u, c0, offC, acc[3][0]);
    writeOut(r0 + 3u, c1, offC, acc[3][1]);
    writeOut(r1, c0, offC, acc[4][0]);
    writeOut(r1, c1, offC, acc[4][1]);
    writeOut(r1 + 1u, c0, offC, acc[5][0]);
    writeOut(r1 + 1u, c1, offC, acc[5][1]);
    writeOut(r1 + 2u, c0, offC, acc[6][0]);
    writeOut(r1 + 2u, c1, offC, acc[6][1]);
    writeOut(r1 + 3u, c0, offC, acc[7][0]);
    writeOut(r1 + 3u, c1, offC, acc[7][1]);
}
