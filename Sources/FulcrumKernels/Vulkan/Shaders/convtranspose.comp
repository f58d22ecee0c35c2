#version 450
// 2-D transposed convolution over NCHW FP32 (groups, strides, dilations, pads; output_padding
// is in the output size), gathered per output element (grid-stride): y[n, m, oh, ow] =
// bias[m] + Σ x[n, c, ih, iw] · w[c, m mod M/g, kh, kw] over the group's input channels c and the
// taps with ih·s − pad + kh·d = oh (and the same across). W is [C, M/group, kH, kW].
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Weights { float w[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint channels;       // C
    uint height;
    uint width;
    uint outChannels;    // M
    uint outHeight;
    uint outWidth;
    uint groups;
    uint kernelH;
    uint kernelW;
    uint strideH;
    uint strideW;
    uint dilationH;
    uint dilationW;
    uint padTop;
    uint padLeft;
    uint hasBias;
    uint total;          // N · M · OH · OW
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    uint cg = p.channels / p.groups;
    uint mg = p.outChannels / p.groups;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        uint ow = i % p.outWidth;
        uint rest = i / p.outWidth;
        uint oh = rest % p.outHeight;
        rest /= p.outHeight;
        uint m = rest % p.outChannels;
        uint n = rest / p.outChannels;
        uint g = m / mg;
        uint om = m % mg;
        float acc = p.hasBias != 0u ? bias[m] : 0.0;
        for (uint c = g * cg; c < (g + 1u) * cg; c++) {
            uint plane = (n * p.channels + c) * p.height;
            uint taps = (c * mg + om) * p.kernelH;
            for (uint kh = 0u; kh < p.kernelH; kh++) {
                int t = int(oh + p.padTop) - int(kh * p.dilationH);
                if (t < 0 || uint(t) % p.strideH != 0u) { continue; }
                uint ih = uint(t) / p.strideH;
                if (ih >= p.height) { continue; }
                for (uint kw = 0u; kw < p.kernelW; kw++) {
                    int u = int(ow + p.padLeft) - int(kw * p.dilationW);
                    if (u < 0 || uint(u) % p.strideW != 0u) { continue; }
                    uint iw = uint(u) / p.strideW;
                    if (iw >= p.width) { continue; }
                    acc += x[(plane + ih) * p.width + iw] * w[(taps + kh) * p.kernelW + kw];
                }
            }
        }
        y[i] = acc;
    }
}
