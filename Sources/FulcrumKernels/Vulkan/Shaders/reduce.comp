#version 450
#extension GL_GOOGLE_include_directive : require
// Sum / mean / max of a contiguous FP32 tensor over some axes, as planned by
// VulkanRecording.reduce: the shape merged into at most 4 kept and 4 reduced loops (innermost
// last, input element strides), output contiguous over the kept loops.
//   mode 0: one 256-invocation workgroup per output, striding over its reduced elements, tree
//           reduction in shared memory (long reductions, innermost loop reduced)
//   mode 1: one invocation per output, serial over its reduced elements (neighbouring
//           invocations read neighbouring inputs when the innermost loop is kept)
// Empty reductions give the start value: 0 (sum, mean) or -inf (max).
#include "WorkgroupReduce.glsl"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint outputs;
    uint reduced;      // input elements per output
    uint op;           // 0 sum, 1 mean, 2 max
    uint mode;
    uint keptRank;     // 0...4
    uint reducedRank;  // 0...4
    float scale;       // mean: 1 / reduced (1 when reduced == 0)
    uint pad;
    uvec4 keptSizes;
    uvec4 keptStrides;
    uvec4 reducedSizes;
    uvec4 reducedStrides;
} p;

uint keptOffset(uint index) {
    uint offset = 0u;
    for (int d = int(p.keptRank) - 1; d >= 0; d--) {
        offset += (index % p.keptSizes[d]) * p.keptStrides[d];
        index /= p.keptSizes[d];
    }
    return offset;
}

uint reducedOffset(uint index) {
    uint offset = 0u;
    for (int d = int(p.reducedRank) - 1; d >= 0; d--) {
        offset += (index % p.reducedSizes[d]) * p.reducedStrides[d];
        index /= p.reducedSizes[d];
    }
    return offset;
}

float combine(float acc, float v) {
    return p.op == 2u ? max(acc, v) : acc + v;
}

float finish(float acc) {
    return p.op == 1u ? acc * p.scale : acc;
}

void main() {
    float start = p.op == 2u ? NEGATIVE_INFINITY : 0.0;
    if (p.mode == 0u) {
        uint t = gl_LocalInvocationID.x;
        for (uint o = gl_WorkGroupID.x; o < p.outputs; o += gl_NumWorkGroups.x) {
            uint base = keptOffset(o);
            float acc = start;
            for (uint r = t; r < p.reduced; r += 256u) acc = combine(acc, x[base + reducedOffset(r)]);
            acc = p.op == 2u ? workgroupMax(acc) : workgroupSum(acc);
            if (t == 0u) y[o] = finish(acc);
        }
    } else {
        uint stride = gl_NumWorkGroups.x * 256u;
        for (uint o = gl_GlobalInvocationID.x; o < p.outputs; o += stride) {
            uint base = keptOffset(o);
            float acc = start;
            for (uint r = 0u; r < p.reduced; r++) acc = combine(acc, x[base + reducedOffset(r)]);
            y[o] = finish(acc);
        }
    }
}
