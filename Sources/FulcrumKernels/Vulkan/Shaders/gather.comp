#version 450
// Gather along an axis: data viewed as [outer, axisSize, inner] elements of `words` words,
// out[o, j, i] = data[o, index(j), i] for indexCount indices (int32, or int64 as word pairs,
// low word first; negative counts from the end). An index outside [-axisSize, axisSize) writes
// zeros and raises status[0] to at least j + 1 (atomicMax), so status[0] != 0 says the batch
// failed and status[0] - 1 is the position of an offending index. Grid-stride loop.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Data { uint data[]; };
layout(std430, set = 0, binding = 1) readonly buffer Indices { uint indices[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { uint o[]; };
layout(std430, set = 0, binding = 3) buffer Status { uint status[]; };
layout(push_constant) uniform Params {
    uint count;       // output elements: outer · indexCount · inner
    uint inner;
    uint indexCount;
    uint axisSize;
    uint words;       // words per element
    uint wideIndices; // 1: int64 indices (two words each), 0: int32
} p;

// The resolved index in [0, axisSize), or axisSize when out of range.
uint resolve(uint j) {
    uint lo, hi;
    if (p.wideIndices != 0u) {
        lo = indices[2u * j];
        hi = indices[2u * j + 1u];
    } else {
        lo = indices[j];
        hi = (lo & 0x80000000u) != 0u ? 0xFFFFFFFFu : 0u;
    }
    if (hi == 0u) return lo < p.axisSize ? lo : p.axisSize;
    if (hi == 0xFFFFFFFFu) {
        // value = lo - 2^32 (negative); in range when -value <= axisSize.
        uint magnitude = 0u - lo;  // lo != 0 here since the value is negative
        return (lo != 0u && magnitude <= p.axisSize) ? p.axisSize - magnitude : p.axisSize;
    }
    return p.axisSize;
}

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint e = gl_GlobalInvocationID.x; e < p.count; e += stride) {
        uint i = e % p.inner;
        uint rest = e / p.inner;
        uint j = rest % p.indexCount;
        uint outer = rest / p.indexCount;
        uint index = resolve(j);
        uint d = e * p.words;
        if (index >= p.axisSize) {
            for (uint w = 0u; w < p.words; w++) o[d + w] = 0u;
            atomicMax(status[0], j + 1u);
        } else {
            uint s = ((outer * p.axisSize + index) * p.inner + i) * p.words;
            for (uint w = 0u; w < p.words; w++) o[d + w] = data[s + w];
        }
    }
}
