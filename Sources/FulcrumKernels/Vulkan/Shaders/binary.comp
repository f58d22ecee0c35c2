#version 450
// out = a ∘ b with numpy broadcasting, as planned by BroadcastLayout: up to 8 merged loops,
// innermost last, element strides 0 where an input is broadcast. Grid-stride loop.
// float32, or int32 as CPUBackend computes it: add, sub and mul wrap modulo 2^32; div
// truncates toward zero, gives 0 for a division by zero and INT32_MIN for INT32_MIN / -1
// (computed on magnitudes, so no undefined OpSDiv case is ever reached).
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer A { uint a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { uint b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform Params {
    uint count;
    uint op;    // 0 add, 1 sub, 2 mul, 3 div
    uint rank;  // 1...8
    uint type;  // 0 float32, 1 int32
    uvec4 sizes[2];
    uvec4 stridesA[2];
    uvec4 stridesB[2];
} p;

uint floatOp(uint xa, uint yb) {
    float x = uintBitsToFloat(xa);
    float y = uintBitsToFloat(yb);
    float r;
    switch (p.op) {
    case 0u: r = x + y; break;
    case 1u: r = x - y; break;
    case 2u: r = x * y; break;
    default: r = x / y; break;
    }
    return floatBitsToUint(r);
}

uint intOp(uint x, uint y) {
    switch (p.op) {
    case 0u: return x + y;
    case 1u: return x - y;
    case 2u: return x * y;  // the low 32 bits are the same signed or unsigned
    default:
        if (y == 0u) return 0u;
        bool nx = (x & 0x80000000u) != 0u;
        bool ny = (y & 0x80000000u) != 0u;
        uint q = (nx ? 0u - x : x) / (ny ? 0u - y : y);
        return nx != ny ? 0u - q : q;
    }
}

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
        o[i] = p.type == 0u ? floatOp(a[ia], b[ib]) : intOp(a[ia], b[ib]);
    }
}
