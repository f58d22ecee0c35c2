#version 450
// 2-D max and average pooling over planes of FP32 (N · C planes), one invocation per output
// (grid-stride), the same contract as CPUBackend.pool: max over the taps inside the input
// (dilations allowed); average of the taps inside the input divided by their count (mode 1) or
// by the taps inside the padded input, a ceil_mode overhang left out (mode 2, onnxruntime's
// count_include_pad rule).
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { float y[]; };
layout(push_constant) uniform Params {
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
    uint padBottom;
    uint padRight;
    uint mode;           // 0 max, 1 average without padding, 2 average counting padding
    uint total;          // planes · OH · OW
} p;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.total; i += stride) {
        uint ow = i % p.outWidth;
        uint rest = i / p.outWidth;
        uint oh = rest % p.outHeight;
        uint plane = rest / p.outHeight;
        uint base = plane * p.height * p.width;
        int h0 = int(oh * p.strideH) - int(p.padTop);
        int w0 = int(ow * p.strideW) - int(p.padLeft);
        if (p.mode == 0u) {
            float best = uintBitsToFloat(0xff800000u);  // -inf
            for (uint kh = 0u; kh < p.kernelH; kh++) {
                int h = h0 + int(kh * p.dilationH);
                if (h < 0 || h >= int(p.height)) { continue; }
                for (uint kw = 0u; kw < p.kernelW; kw++) {
                    int w = w0 + int(kw * p.dilationW);
                    if (w >= 0 && w < int(p.width)) { best = max(best, x[base + uint(h) * p.width + uint(w)]); }
                }
            }
            y[i] = best;
        } else {
            int hEnd = min(h0 + int(p.kernelH), int(p.height + p.padBottom));
            int wEnd = min(w0 + int(p.kernelW), int(p.width + p.padRight));
            int padded = (hEnd - h0) * (wEnd - w0);
            int hs = max(h0, 0), ws = max(w0, 0), he = min(hEnd, int(p.height)), we = min(wEnd, int(p.width));
            float sum = 0.0;
            for (int h = hs; h < he; h++) {
                for (int w = ws; w < we; w++) { sum += x[base + uint(h) * p.width + uint(w)]; }
            }
            int count = p.mode == 2u ? padded : max(0, he - hs) * max(0, we - ws);
            y[i] = count > 0 ? sum / float(count) : 0.0;
        }
    }
}
