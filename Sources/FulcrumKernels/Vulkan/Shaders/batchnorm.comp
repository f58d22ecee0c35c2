#version 450
// Inference batch normalisation over [batch, channels, spatial] FP32, as
// CPUBackend.batchNormalization: per channel factor = scale / sqrt(variance + epsilon) and
// shift = bias - mean · factor, then y = x · factor + shift. Three dispatches of this shader
// (three bindings each, a temporary `t` of 2 · channels floats):
//   mode 0: a = scale, b = variance: t[c] = factor
//   mode 1: a = bias,  b = mean:     t[channels + c] = shift
//   mode 2: a = x,     b = y:        y[i] = x[i] · t[c] + t[channels + c] (b may be a)
// Grid-stride loops.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) buffer B { float b[]; };
layout(std430, set = 0, binding = 2) buffer T { float t[]; };
layout(push_constant) uniform Params {
    uint mode;
    uint channels;
    uint spatial;
    uint count;  // mode 2: batch · channels · spatial
    float epsilon;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    if (p.mode == 0u) {
        for (uint c = gl_GlobalInvocationID.x; c < p.channels; c += stride) t[c] = a[c] / sqrt(b[c] + p.epsilon);
    } else if (p.mode == 1u) {
        for (uint c = gl_GlobalInvocationID.x; c < p.channels; c += stride) t[p.channels + c] = a[c] - b[c] * t[c];
    } else {
        for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
            uint c = (i / p.spatial) % p.channels;
            b[i] = a[i] * t[c] + t[p.channels + c];
        }
    }
}
