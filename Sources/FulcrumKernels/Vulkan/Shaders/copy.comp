#version 450
// Strided copy planned by CopyLayout: for each element of up to 8 merged loops (innermost last),
// dst[dstOffset + Σ i·dstStride] = src[srcOffset + Σ i·srcStride], offsets and strides in
// elements of `words` 32-bit words. Strides are signed (Slice with negative steps) and the
// index arithmetic wraps modulo 2^32, which is exact because the host checks that every
// element it reaches lies inside the buffers. Grid-stride loop.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Source { uint src[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Destination { uint dst[]; };
layout(push_constant) uniform Params {
    uint count;      // elements
    uint rank;       // 1...8
    uint words;      // words per element
    uint srcOffset;  // elements
    uint dstOffset;  // elements
    uint sizes[8];
    int srcStrides[8];
    int dstStrides[8];
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        uint rest = i;
        uint s = p.srcOffset;
        uint d = p.dstOffset;
        for (int k = int(p.rank) - 1; k >= 0; k--) {
            uint size = p.sizes[k];
            uint coord = rest % size;
            rest /= size;
            s += coord * uint(p.srcStrides[k]);
            d += coord * uint(p.dstStrides[k]);
        }
        if (p.words == 1u) {
            dst[d] = src[s];
        } else {
            s *= p.words;
            d *= p.words;
            for (uint w = 0u; w < p.words; w++) dst[d + w] = src[s + w];
        }
    }
}
