#version 450
// out[i] = min(max(in[i], low), high) for i < count (as CPUBackend.clip); grid-stride loop.
// `out` may be `in`.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint count;
    float low;
    float high;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        y[i] = min(max(x[i], p.low), p.high);
    }
}
