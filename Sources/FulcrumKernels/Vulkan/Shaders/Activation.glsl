// Elementwise functions shared by unary.comp and matmul.comp's epilogue. Codes match
// VulkanKernels.UnaryCode in Swift; keep both in step.
const uint OP_IDENTITY = 0u;
const uint OP_RELU = 1u;
const uint OP_SIGMOID = 2u;
const uint OP_TANH = 3u;
const uint OP_NEG = 4u;
const uint OP_ABS = 5u;
const uint OP_EXP = 6u;
const uint OP_LOG = 7u;
const uint OP_SQRT = 8u;
const uint OP_ERF = 9u;
const uint OP_GELU = 10u;
const uint OP_GELU_TANH = 11u;
const uint OP_LEAKY_RELU = 12u;

// tanh without the overflow of (e^2x - 1) / (e^2x + 1) for large |x|: tanh(±15) is ±1 in FP32.
float safeTanh(float x) {
    return tanh(clamp(x, -15.0, 15.0));
}

// Abramowitz & Stegun 7.1.26: |error| ≤ 1.5e-7.
float erfApprox(float x) {
    float s = sign(x);
    float z = abs(x);
    float t = 1.0 / (1.0 + 0.3275911 * z);
    float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1.0 - poly * exp(-z * z));
}

float applyOp(uint op, float x, float alpha) {
    switch (op) {
    case OP_RELU: return max(x, 0.0);
    case OP_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case OP_TANH: return safeTanh(x);
    case OP_NEG: return -x;
    case OP_ABS: return abs(x);
    case OP_EXP: return exp(x);
    case OP_LOG: return log(x);
    case OP_SQRT: return sqrt(x);
    case OP_ERF: return erfApprox(x);
    case OP_GELU: return 0.5 * x * (1.0 + erfApprox(x * 0.70710678118654752));
    case OP_GELU_TANH: return 0.5 * x * (1.0 + safeTanh(0.79788456080286536 * (x + 0.044715 * x * x * x)));
    case OP_LEAKY_RELU: return x < 0.0 ? alpha * x : x;
    default: return x;
    }
}
