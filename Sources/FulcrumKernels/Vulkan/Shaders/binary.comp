#version 450
// out = a ∘ b with numpy broadcasting, as planned by BroadcastLayout: up to 8 merged loops,
// innermost last, element strides 0 where an input is broadcast. Grid-stride loop.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { float b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Params {
    uint count;
    uint op;    // 0 add, 1 sub, 2 mul, 3 div
    uint rank;  // 1...8
    uint pad;
    uvec4 sizes[2];
    uvec4 stridesA[2];
    uvec4 stridesB[2];
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        uint rest = i;
        uint ia = 0u;
        uint ib = 0u;
        for (int d = int(p.rank) - 1; d >= 0; d--) {
            uint size = p.sizes[d / 4][d % 4];
            uint coord = rest % size;
            rest /= size;
            ia += coord * p.stridesA[d / 4][d % 4];
            ib += coord * p.stridesB[d / 4][d % 4];
        }
        float x = a[ia];
        float y = b[ib];
        float r;
        switch (p.op) {
        case 0u: r = x + y; break;
        case 1u: r = x - y; break;
        case 2u: r = x * y; break;
        default: r = x / y; break;
        }
        o[i] = r;
    }
}
