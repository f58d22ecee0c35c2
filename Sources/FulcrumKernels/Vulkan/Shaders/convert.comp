#version 450
// Element type conversion, out[i] = cast(in[i]), ONNX Cast semantics for float32, int32, int64
// (word pairs, low word first) and bool (one word, 0 or 1; any nonzero word reads as true):
// float → integer truncates toward zero (NaN → 0; beyond int64 saturates, and int32 keeps the
// low word of that int64, as CPUBackend's Cast does); integer → float rounds to nearest even
// (exact integer arithmetic, no int64 extension); anything → bool is x != 0 (NaN → true).
// Grid-stride loop.
layout(local_size_x = 256) in;
layout(std430, set = 0, binding = 0) readonly buffer Input { uint x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Output { uint y[]; };
layout(push_constant) uniform Params {
    uint count;
    uint from;  // 0 float32, 1 int32, 2 int64, 3 bool
    uint to;    // same codes
} p;

// Two's complement negation of the 64-bit value (lo, hi).
uvec2 negate64(uvec2 v) {
    uint lo = ~v.x + 1u;
    uint hi = ~v.y + (lo == 0u ? 1u : 0u);
    return uvec2(lo, hi);
}

// Truncation toward zero of f as int64 (lo, hi): NaN → 0, saturating at ±2^63.
uvec2 floatToInt64(float f) {
    if (isnan(f)) return uvec2(0u);
    float t = trunc(f);
    float m = abs(t);
    if (m >= 9223372036854775808.0) return t < 0.0 ? uvec2(0u, 0x80000000u) : uvec2(0xFFFFFFFFu, 0x7FFFFFFFu);
    // m < 2^63 is an integer: the division by 2^32 and the subtraction are exact.
    float high = floor(m * (1.0 / 4294967296.0));
    uint hi = uint(high);
    uint lo = uint(m - high * 4294967296.0);
    uvec2 v = uvec2(lo, hi);
    return t < 0.0 ? negate64(v) : v;
}

// The float nearest to the int64 (lo, hi), ties to even (what Swift's Float(Int64) gives).
float int64ToFloat(uvec2 v) {
    bool negative = (v.y & 0x80000000u) != 0u;
    uvec2 m = negative ? negate64(v) : v;  // magnitude; 2^63 stays (0, 0x80000000) as unsigned
    if (m.y == 0u && m.x < 16777216u) {
        float small = float(m.x);  // exact
        return negative ? -small : small;
    }
    int top = m.y != 0u ? 32 + findMSB(m.y) : findMSB(m.x);  // 24...63
    int shift = top - 23;                                      // 1...40
    // mantissa = m >> shift (24 bits); rest = the bits shifted out; half = 1 << (shift - 1).
    uint mantissa;
    uvec2 rest;
    uvec2 half_;
    if (shift < 32) {
        mantissa = (m.x >> uint(shift)) | (m.y << uint(32 - shift));
        rest = uvec2(m.x & ((1u << uint(shift)) - 1u), 0u);
        half_ = uvec2(1u << uint(shift - 1), 0u);
    } else {
        mantissa = m.y >> uint(shift - 32);
        uint highMask = shift == 32 ? 0u : (1u << uint(shift - 32)) - 1u;
        rest = uvec2(m.x, m.y & highMask);
        half_ = shift == 32 ? uvec2(0x80000000u, 0u) : uvec2(0u, 1u << uint(shift - 33));
    }
    bool above = rest.y > half_.y || (rest.y == half_.y && rest.x > half_.x);
    bool tie = rest == half_;
    if (above || (tie && (mantissa & 1u) != 0u)) mantissa += 1u;
    int exponent = top;
    if (mantissa == 16777216u) {
        mantissa >>= 1;
        exponent += 1;
    }
    uint bits = (uint(exponent + 127) << 23) | (mantissa & 0x7FFFFFu) | (negative ? 0x80000000u : 0u);
    return uintBitsToFloat(bits);
}

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
        if (p.from == p.to) {  // the same type: the words unchanged (bool normalised to 0/1)
            if (p.from == 2u) {
                y[2u * i] = x[2u * i];
                y[2u * i + 1u] = x[2u * i + 1u];
            } else {
                y[i] = p.from == 3u ? (x[i] != 0u ? 1u : 0u) : x[i];
            }
            continue;
        }
        // Read as either a float or an int64 (lo, hi).
        bool isFloat = p.from == 0u;
        float f = 0.0;
        uvec2 v = uvec2(0u);
        if (p.from == 0u) {
            f = uintBitsToFloat(x[i]);
        } else if (p.from == 1u) {
            uint w = x[i];
            v = uvec2(w, (w & 0x80000000u) != 0u ? 0xFFFFFFFFu : 0u);
        } else if (p.from == 2u) {
            v = uvec2(x[2u * i], x[2u * i + 1u]);
        } else {
            v = uvec2(x[i] != 0u ? 1u : 0u, 0u);
        }
        if (p.to == 0u) {
            y[i] = floatBitsToUint(isFloat ? f : int64ToFloat(v));
        } else if (p.to == 3u) {
            bool nonzero = isFloat ? (isnan(f) || f != 0.0) : (v.x | v.y) != 0u;
            y[i] = nonzero ? 1u : 0u;
        } else {
            uvec2 r = isFloat ? floatToInt64(f) : v;
            if (p.to == 1u) {
                y[i] = r.x;
            } else {
                y[2u * i] = r.x;
                y[2u * i + 1u] = r.y;
            }
        }
    }
}
