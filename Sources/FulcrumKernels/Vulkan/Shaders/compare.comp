#version 450
// out = (a op b) ? 1 : 0 (one 32-bit word per bool) with numpy broadcasting, as planned by
// BroadcastLayout: up to 8 merged loops, innermost last, element strides 0 where an input is
// broadcast. Operands: float32, int32, int64 (word pairs, low word first, compared exactly as
// signed 64-bit) or bool words (equal only, as x != 0). Grid-stride loop.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer A { uint a[]; };
layout(std430, set = 0, binding = 1) readonly buffer B { uint b[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform Params {
    uint count;
    uint op;    // 0 equal, 1 less, 2 greater
    uint type;  // 0 float32, 1 int32, 2 int64, 3 bool
    uint rank;  // 1...8
    uint sizes[8];
    uint stridesA[8];
    uint stridesB[8];
} p;

// -1, 0 or 1 as x is less than, equal to or greater than y; 2 when unordered (a NaN).
int order(uint ia, uint ib) {
    if (p.type == 0u) {
        float x = uintBitsToFloat(a[ia]);
        float y = uintBitsToFloat(b[ib]);
        return x < y ? -1 : (x > y ? 1 : (x == y ? 0 : 2));
    }
    if (p.type == 1u) {
        int x = int(a[ia]);
        int y = int(b[ib]);
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (p.type == 2u) {
        int xh = int(a[2u * ia + 1u]);
        int yh = int(b[2u * ib + 1u]);
        if (xh != yh) return xh < yh ? -1 : 1;
        uint xl = a[2u * ia];
        uint yl = b[2u * ib];
        return xl < yl ? -1 : (xl > yl ? 1 : 0);
    }
    return (a[ia] != 0u) == (b[ib] != 0u) ? 0 : 2;
}

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        uint rest = i;
        uint ia = 0u;
        uint ib = 0u;
        for (int d = int(p.rank) - 1; d >= 0; d--) {
            uint size = p.sizes[d];
            uint coord = rest % size;
            rest /= size;
            ia += coord * p.stridesA[d];
            ib += coord * p.stridesB[d];
        }
        int c = order(ia, ib);
        bool r = p.op == 0u ? c == 0 : (p.op == 1u ? c == -1 : c == 1);
        o[i] = r ? 1u : 0u;
    }
}
