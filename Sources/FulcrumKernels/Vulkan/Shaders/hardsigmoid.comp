#version 450
// HardSigmoid y = max(0, min(1, alpha · x + beta)) and HardSwish y = x · HardSigmoid(x) for
// i < count (as the CPU kernel: alpha · x and + beta rounded separately, no fused multiply-add).
// Grid-stride; `y` may be `x`.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint count;
    float alpha;
    float beta;
    uint swish;
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        float v = x[i];
        precise float scaled = p.alpha * v;
        precise float shifted = scaled + p.beta;
        float gate = max(0.0, min(1.0, shifted));
        y[i] = p.swish != 0u ? v * gate : gate;
    }
}
