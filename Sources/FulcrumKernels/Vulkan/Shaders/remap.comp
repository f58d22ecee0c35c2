#version 450
// out[o] = in[Σ map_a[o_a] · stride_a], or `constant` when any axis's map gives -1: one lookup
// table per output axis (at most 8), concatenated in `maps`. Pad (constant, reflect, edge,
// negative pads cropping) and nearest Resize are such tables, computed on the host at record
// time. One invocation per output element (grid-stride).
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Maps { int maps[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint rank;
    uint total;
    float constant;
    uint sizes[8];       // output sizes, outermost first
    uint strides[8];     // input strides in elements
    uint offsets[8];     // where each axis's table starts in `maps`
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        uint rest = i;
        uint source = 0u;
        bool inside = true;
        for (int a = int(p.rank) - 1; a >= 0; a--) {
            uint coordinate = rest % p.sizes[a];
            rest /= p.sizes[a];
            int index = maps[p.offsets[a] + coordinate];
            if (index < 0) { inside = false; } else { source += uint(index) * p.strides[a]; }
        }
        y[i] = inside ? x[source] : p.constant;
    }
}
