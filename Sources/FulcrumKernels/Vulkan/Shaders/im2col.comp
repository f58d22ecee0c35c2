#version 450
// im2col for a one-group 2-D convolution over NCHW FP32: for each image n, a [C·KH·KW, OH·OW]
// matrix, row (c, kh, kw), column (oh, ow), holding the input tap that output sees (zero
// outside the input). conv = W[M, C·KH·KW] · columns, done by the sgemm kernels. One
// invocation per matrix element (grid-stride).
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Columns { float columns[]; };
layout(push_constant) uniform Params {
    uint channels;
    uint height;
    uint width;
    uint outHeight;
    uint outWidth;
    uint kernelH;
    uint kernelW;
    uint strideH;
    uint strideW;
    uint dilationH;
    uint dilationW;
    uint padTop;
    uint padLeft;
    uint total;          // N · C · KH · KW · OH · OW
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    uint plane = p.outHeight * p.outWidth;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        uint column = i % plane;
        uint row = i / plane;
        uint ow = column % p.outWidth;
        uint oh = column / p.outWidth;
        uint kw = row % p.kernelW;
        uint rest = row / p.kernelW;
        uint kh = rest % p.kernelH;
        rest /= p.kernelH;
        uint c = rest % p.channels;
        uint n = rest / p.channels;
        int h = int(oh * p.strideH + kh * p.dilationH) - int(p.padTop);
        int w = int(ow * p.strideW + kw * p.dilationW) - int(p.padLeft);
        float value = 0.0;
        if (h >= 0 && h < int(p.height) && w >= 0 && w < int(p.width)) {
            value = x[((n * p.channels + c) * p.height + uint(h)) * p.width + uint(w)];
        }
        columns[i] = value;
    }
}
