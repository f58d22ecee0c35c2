#version 450
#extension GL_GOOGLE_include_directive : require
// out[i] = f(in[i]) for i < count; grid-stride loop so any count fits the dispatch limits.
#include "Activation.glsl"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint count;
    uint op;
    float alpha;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        y[i] = applyOp(p.op, x[i], p.alpha);
    }
}
