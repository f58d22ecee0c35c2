// ONNX Where for elements of WORDS 32-bit words (select.comp: 1, select64.comp: 2):
// out[i] = condition[ic] != 0 ? x[ix] : y[iy] over up to 8 loops (innermost last; unused outer
// loops have size 1), element strides per operand (0 where broadcast), out contiguous. The
// element count is the product of the sizes, so the push constants are exactly the 128 bytes
// every Vulkan device offers. Index arithmetic wraps modulo 2^32, exact because the host checks
// every element reached lies inside the buffers. Grid-stride loop.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Condition { uint c[]; };
layout(std430, set = 0, binding = 1) readonly buffer X { uint x[]; };
layout(std430, set = 0, binding = 2) readonly buffer Y { uint y[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Out { uint o[]; };
layout(push_constant) uniform Params {
    uint sizes[8];
    int conditionStrides[8];
    int xStrides[8];
    int yStrides[8];
} p;

void main() {
    uint count = 1u;
    for (int d = 0; d < 8; d++) count *= p.sizes[d];
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < count; i += stride) {
        uint rest = i;
        uint ic = 0u;
        uint ix = 0u;
        uint iy = 0u;
        for (int d = 7; d >= 0; d--) {
            uint size = p.sizes[d];
            uint coord = rest % size;
            rest /= size;
            ic += coord * uint(p.conditionStrides[d]);
            ix += coord * uint(p.xStrides[d]);
            iy += coord * uint(p.yStrides[d]);
        }
        bool pickX = c[ic] != 0u;
        for (uint w = 0u; w < WORDS; w++) o[i * WORDS + w] = pickX ? x[ix * WORDS + w] : y[iy * WORDS + w];
    }
}
