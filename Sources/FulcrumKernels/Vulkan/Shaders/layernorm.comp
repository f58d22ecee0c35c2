#version 450
#extension GL_GOOGLE_include_directive : require
// Layer normalisation of `rows` contiguous rows of `columns` FP32 elements:
// y = (x - mean) / sqrt(var + epsilon) · scale + bias, mean and variance in two passes (as
// CPUBackend.layerNormalization). One 256-invocation workgroup per row, tree reductions in
// shared memory; workgroups stride over the rows. `out` may be `in` (each element is read and
// written by one invocation, after the reductions' barriers).
#include "WorkgroupReduce.glsl"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(std430, set = 0, binding = 2) readonly buffer Scale { float scale[]; };
layout(std430, set = 0, binding = 3) readonly buffer Bias { float bias[]; };
layout(push_constant) uniform Params {
    uint rows;
    uint columns;
    uint hasBias;
    float epsilon;
} p;

void main() {
    uint t = gl_LocalInvocationID.x;
    for (uint row = gl_WorkGroupID.x; row < p.rows; row += gl_NumWorkGroups.x) {
        uint base = row * p.columns;
        float s = 0.0;
        for (uint k = t; k < p.columns; k += 256u) s += x[base + k];
        float mean = workgroupSum(s) / float(p.columns);
        float squares = 0.0;
        for (uint k = t; k < p.columns; k += 256u) {
            float d = x[base + k] - mean;
            squares += d * d;
        }
        float inverse = 1.0 / sqrt(workgroupSum(squares) / float(p.columns) + p.epsilon);
        for (uint k = t; k < p.columns; k += 256u) {
            float b = p.hasBias != 0u ? bias[k] : 0.0;
            y[base + k] = (x[base + k] - mean) * inverse * scale[k] + b;
        }
    }
}
