#version 450
#extension GL_GOOGLE_include_directive : require
// Second pass of a split-K sgemm (matmulsplitk.comp with splits > 1): for each element of each
// batch's m × n C, adds the splits' partial sums from W[split][batch][m][n] and applies the
// epilogue once: C = act(alpha · sum + beta · C + bias). One invocation per element,
// gl_WorkGroupID.z the batch.
#include "Activation.glsl"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 1) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 2) buffer C { float c[]; };
layout(push_constant) uniform Params {
    uint m, n, ldc, strideC;
    uint splits, batches;
    uint hasBias;
    uint activation;     // an applyOp code
    float alpha, beta;
    float activationAlpha;
} p;

void main() {
    uint e = gl_GlobalInvocationID.x;
    uint batch = gl_WorkGroupID.z;
    uint size = p.m * p.n;
    if (e >= size) { return; }
    uint row = e / p.n;
    uint column = e % p.n;
    float sum = 0.0;
    for (uint s = 0u; s < p.splits; s++) { sum += w[(s * p.batches + batch) * size + e]; }
    uint index = batch * p.strideC + row * p.ldc + column;
    float v = p.alpha * sum;
    if (p.beta != 0.0) { v += p.beta * c[index]; }
    if (p.hasBias != 0u) { v += bias[column]; }
    c[index] = applyOp(p.activation, v, p.activationAlpha);
}
