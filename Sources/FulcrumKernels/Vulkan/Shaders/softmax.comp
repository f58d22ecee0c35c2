#version 450
#extension GL_GOOGLE_include_directive : require
// Softmax (or LogSoftmax) along the middle axis of [outer, axis, inner] row-major FP32: a "row"
// is one (outer, inner) position, its elements `inner` apart. Numerically stable (max first).
//   mode 0: one workgroup per row, 256 invocations stride along it, tree reductions in shared
//           memory (long axes); workgroups stride over the rows.
//   mode 1: one invocation per row, serial along the axis (short axes; with inner > 1
//           neighbouring invocations read neighbouring columns); grid-stride over the rows.
// `out` may be `in`: every element is read and written by the same invocation, and in mode 0
// the writes come after the reductions' barriers.
#include "WorkgroupReduce.glsl"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint rows;       // outer · inner
    uint axis;
    uint inner;
    uint logarithm;  // 1: LogSoftmax
    uint mode;
} p;

uint rowBase(uint row) {
    return (row / p.inner) * p.axis * p.inner + row % p.inner;
}

void main() {
    if (p.mode == 0u) {
        uint t = gl_LocalInvocationID.x;
        for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
            uint base = rowBase(row);
            float m = NEGATIVE_INFINITY;
            for (uint k = t; k < p.axis; k += 256u) m = max(m, x[base + k * p.inner]);
            m = workgroupMax(m);
            float s = 0.0;
            for (uint k = t; k < p.axis; k += 256u) s += exp(x[base + k * p.inner] - m);
            s = workgroupSum(s);
            if (p.logarithm != 0u) {
                float shift = m + log(s);
                for (uint k = t; k < p.axis; k += 256u) y[base + k * p.inner] = x[base + k * p.inner] - shift;
            } else {
                float scale = 1.0 / s;
                for (uint k = t; k < p.axis; k += 256u) y[base + k * p.inner] = exp(x[base + k * p.inner] - m) * scale;
            }
        }
    } else {
        uint stride = gl_NumWorkGroups.x * 256u;
        for (uint row = gl_GlobalInvocationID.x; row < p.rows; row += stride) {
            uint base = rowBase(row);
            float m = NEGATIVE_INFINITY;
            for (uint k = 0u; k < p.axis; k++) m = max(m, x[base + k * p.inner]);
            float s = 0.0;
            for (uint k = 0u; k < p.axis; k++) s += exp(x[base + k * p.inner] - m);
            if (p.logarithm != 0u) {
                float shift = m + log(s);
                for (uint k = 0u; k < p.axis; k++) y[base + k * p.inner] = x[base + k * p.inner] - shift;
            } else {
                float scale = 1.0 / s;
                for (uint k = 0u; k < p.axis; k++) y[base + k * p.inner] = exp(x[base + k * p.inner] - m) * scale;
            }
        }
    }
}
