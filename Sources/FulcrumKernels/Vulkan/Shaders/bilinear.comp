#version 450
// Bilinear resize of FP32 planes (Resize mode linear on the last two axes): per output row
// (r0, r1, fy) and per output column (c0, c1, fx) from tables the host computed (indices as
// uint words, weights as float bits), combined as the CPU kernel does:
// top = a·(1−fx) + b·fx, bottom = c·(1−fx) + d·fx, y = top·(1−fy) + bottom·fy, no fused
// multiply-adds. One invocation per output element (grid-stride).
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Tables { uint tables[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint height;
    uint width;
    uint outHeight;
    uint outWidth;
    uint total;          // planes · outHeight · outWidth
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        uint j = i % p.outWidth;
        uint rest = i / p.outWidth;
        uint r = rest % p.outHeight;
        uint plane = rest / p.outHeight;
        uint row = 3u * r;
        uint column = 3u * (p.outHeight + j);
        uint r0 = tables[row], r1 = tables[row + 1u];
        float fy = uintBitsToFloat(tables[row + 2u]);
        uint c0 = tables[column], c1 = tables[column + 1u];
        float fx = uintBitsToFloat(tables[column + 2u]);
        uint base = plane * p.height * p.width;
        precise float top = x[base + r0 * p.width + c0] * (1.0 - fx) + x[base + r0 * p.width + c1] * fx;
        precise float bottom = x[base + r1 * p.width + c0] * (1.0 - fx) + x[base + r1 * p.width + c1] * fx;
        precise float value = top * (1.0 - fy) + bottom * fy;
        y[i] = value;
    }
}
