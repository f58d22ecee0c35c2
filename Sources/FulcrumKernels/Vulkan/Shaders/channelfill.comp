#version 450
// y[i] = values[(i / plane) % channels] over NCHW FP32 (a per-channel bias written ahead of a
// convolution's sgemm, which then adds the product with beta = 1). Grid-stride.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Values { float values[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint plane;
    uint channels;
    uint total;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        y[i] = values[(i / p.plane) % p.channels];
    }
}
