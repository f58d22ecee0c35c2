#version 450
#extension GL_GOOGLE_include_directive : require
// Direct 2-D convolution over NCHW FP32 (any groups, depthwise included), one invocation per
// output element (grid-stride): y = act(bias[m] + Σ_{c, kh, kw} x · w), taps outside the input
// read as zero. The same contract as CPUBackend.convolve; the taps are added in (c, kh, kw)
// order after the bias, like the CPU's depthwise loop.
#include "Activation.glsl"

layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Weights { float w[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
    uint channels;       // C
    uint height;         // H
    uint width;          // W
    uint outChannels;    // M
    uint outHeight;      // OH
    uint outWidth;       // OW
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
    uint activation;
    float activationAlpha;
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
        float acc = p.hasBias != 0u ? bias[m] : 0.0;
        int h0 = int(oh * p.strideH) - int(p.padTop);
        int w0 = int(ow * p.strideW) - int(p.padLeft);
        for (uint c = 0u; c < cg; c++) {
            uint plane = ((n * p.channels) + g * cg + c) * p.height;
            uint filterBase = (m * cg + c) * p.kernelH;
            for (uint kh = 0u; kh < p.kernelH; kh++) {
                int h = h0 + int(kh * p.dilationH);
                if (h < 0 || h >= int(p.height)) { continue; }
                uint row = (plane + uint(h)) * p.width;
                uint taps = (filterBase + kh) * p.kernelW;
                for (uint kw = 0u; kw < p.kernelW; kw++) {
                    int wi = w0 + int(kw * p.dilationW);
                    if (wi < 0 || wi >= int(p.width)) { continue; }
                    acc += w[taps + kw] * x[row + uint(wi)];
                }
            }
        }
        y[i] = applyOp(p.activation, acc, p.activationAlpha);
    }
}
