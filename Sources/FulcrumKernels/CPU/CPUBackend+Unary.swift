#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An elementwise FP32 operator of one input.
public enum UnaryOperator: String, Sendable, CaseIterable {
    /// `max(x, 0)`.
    case relu
    /// `1 / (1 + exp(-x))`.
    case sigmoid
    /// `tanh(x)`.
    case tanh
    /// `-x`.
    case neg
    /// `|x|`.
    case abs
    /// `exp(x)`.
    case exp
    /// Natural logarithm.
    case log
    /// Square root.
    case sqrt
    /// The Gauss error function.
    case erf
    /// `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))` (ONNX Gelu, `approximate = "none"`).
    case gelu
    /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))` (ONNX Gelu, `approximate = "tanh"`).
    case geluTanh
    /// `x` (a copy).
    case identity
}

extension CPUBackend {
    /// `out[i] = f(input[i])` for `count` FP32 elements. `out` may equal `input` (in place).
    /// Everything but Log runs 8 lanes at a time (`VectorMath`: Exp, Sigmoid, Tanh, Erf and
    /// Gelu are approximations within a few ulp, see there); Log calls libm per element.
    public func unary(_ op: UnaryOperator, _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        switch op {
        case .relu:
            simd(input, out, count, { $0.replacing(with: 0, where: $0 .< 0) }, { $0 < 0 ? 0 : $0 })
        case .neg:
            simd(input, out, count, { -$0 }, { -$0 })
        case .abs:
            simd(input, out, count, { $0.replacing(with: -$0, where: $0 .< 0) }, { Swift.abs($0) })
        case .sqrt:
            simd(input, out, count, { $0.squareRoot() }, { $0.squareRoot() })
        case .identity:
            if UnsafePointer(out) != input { out.update(from: input, count: count) }
        case .sigmoid:
            lanes16(input, out, count) { VectorMath.sigmoid($0) }
        case .exp:
            lanes16(input, out, count) { VectorMath.exp($0) }
        case .tanh:
            lanes16(input, out, count) { VectorMath.tanh($0) }
        case .log:
            for i in 0..<count { out[i] = logf(input[i]) }
        case .erf:
            lanes16(input, out, count) { VectorMath.erf($0) }
        case .gelu:
            lanes16(input, out, count) { VectorMath.gelu($0) }
        case .geluTanh:
            lanes16(input, out, count) { 0.5 * $0 * (1 + VectorMath.tanh(0.79788456080286536 * ($0 + 0.044715 * $0 * $0 * $0))) }
        }
    }

    /// `out[i] = x < 0 ? alpha · x : x` (LeakyRelu). `out` may equal `input`.
    public func leakyRelu(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, alpha: Float) {
        simd(input, out, count, { $0.replacing(with: $0 * alpha, where: $0 .< 0) }, { $0 < 0 ? $0 * alpha : $0 })
    }

    /// `out[i] = g` (HardSigmoid) or `input[i] · g` (HardSwish, `swish`), with
    /// `g = min(max(alpha · input[i] + beta, 0), 1)`. `out` may equal `input`.
    public func hardSigmoid(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, alpha: Float, beta: Float, swish: Bool) {
        // Explicit 8-lane loops: a closure capturing alpha and beta is not inlined into `simd`.
        let raw = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= count {
            let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD8<Float>.self)
            var gate = v * alpha + beta
            gate = gate.replacing(with: 0, where: gate .< 0)
            gate = gate.replacing(with: 1, where: gate .> 1)
            raw.storeBytes(of: swish ? v * gate : gate, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            let gate = Swift.min(Swift.max(input[i] * alpha + beta, 0), 1)
            out[i] = swish ? input[i] * gate : gate
            i += 1
        }
    }

    /// `out[i] = min(max(input[i], low), high)` (Clip; with `low > high` every element is
    /// `high`, as in ONNX). `out` may equal `input`.
    public func clip(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, low: Float, high: Float) {
        simd(input, out, count, { VectorMath.clamp($0, low, high) }, { Swift.min(Swift.max($0, low), high) })
    }

    /// `out[i] = f(input[i])` 16 lanes at a time (four SSE registers per operation, so the
    /// long polynomial chains of neighbouring lanes overlap); the last `count % 16` elements go
    /// through `f` once, padded with zeros.
    @inline(__always)
    func lanes16(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int,
        _ vector: (SIMD16<Float>) -> SIMD16<Float>
    ) {
        var i = 0
        let raw = UnsafeMutableRawPointer(out)
        while i + 16 <= count {
            let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD16<Float>.self)
            raw.storeBytes(of: vector(v), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        if i < count {
            var v = SIMD16<Float>(repeating: 0)
            for lane in 0..<(count - i) { v[lane] = input[i + lane] }
            let y = vector(v)
            for lane in 0..<(count - i) { out[i + lane] = y[lane] }
        }
    }

    @inline(__always)
    func simd(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int,
        _ vector: (SIMD8<Float>) -> SIMD8<Float>, _ scalar: (Float) -> Float
    ) {
        var i = 0
        let raw = UnsafeMutableRawPointer(out)
        while i + 8 <= count {
            let v = UnsafeRawPointer(input + i).loadUnaligned(as: SIMD8<Float>.self)
            raw.storeBytes(of: vector(v), toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            out[i] = scalar(input[i])
            i += 1
        }
    }

    /// Softmax over the middle axis of a tensor viewed as `[outer, axis, inner]` (row-major):
    /// `out = exp(x - max) / sum(exp(x - max))` along `axis`. For ONNX opset < 13 the caller
    /// flattens to 2-D (`inner = 1`); from 13 it uses the real axis. `out` may equal `input`.
    /// `logarithm` computes LogSoftmax instead. Contiguous rows (`inner == 1`) run 8 lanes at a
    /// time along the row; otherwise 8 neighbouring columns (`inner` positions) run together.
    public func softmax(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        outer: Int, axis: Int, inner: Int, logarithm: Bool = false
    ) {
        guard axis > 0, inner > 0 else { return }
        if inner == 1 {
            for o in 0..<outer {
                Self.softmaxRow(input + o * axis, out + o * axis, axis, bias: nil, biasStride: 0, logarithm: logarithm)
            }
            return
        }
        for o in 0..<outer {
            var j = 0
            while j + 8 <= inner {
                let x = input + o * axis * inner + j
                let y = out + o * axis * inner + j
                @inline(__always) func load(_ p: UnsafePointer<Float>, _ k: Int) -> SIMD8<Float> {
                    UnsafeRawPointer(p + k * inner).loadUnaligned(as: SIMD8<Float>.self)
                }
                @inline(__always) func store(_ v: SIMD8<Float>, _ k: Int) {
                    UnsafeMutableRawPointer(y + k * inner).storeBytes(of: v, as: SIMD8<Float>.self)
                }
                var maximum = load(x, 0)
                for k in 1..<axis { maximum = VectorMath.maximum(maximum, load(x, k)) }
                var sum = SIMD8<Float>(repeating: 0)
                if logarithm {
                    for k in 0..<axis { sum += VectorMath.exp(load(x, k) - maximum) }
                    var shift = maximum
                    for lane in 0..<8 { shift[lane] += logf(sum[lane]) }
                    for k in 0..<axis { store(load(x, k) - shift, k) }
                } else {
                    for k in 0..<axis {
                        let e = VectorMath.exp(load(x, k) - maximum)
                        store(e, k)
                        sum += e
                    }
                    let scale = 1 / sum
                    for k in 0..<axis { store(load(UnsafePointer(y), k) * scale, k) }
                }
                j += 8
            }
            while j < inner {
                let base = o * axis * inner + j
                var maximum = -Float.infinity
                for k in 0..<axis { maximum = Swift.max(maximum, input[base + k * inner]) }
                var sum: Float = 0
                if logarithm {
                    for k in 0..<axis { sum += expf(input[base + k * inner] - maximum) }
                    let shift = maximum + logf(sum)
                    for k in 0..<axis { out[base + k * inner] = input[base + k * inner] - shift }
                } else {
                    for k in 0..<axis {
                        let e = expf(input[base + k * inner] - maximum)
                        out[base + k * inner] = e
                        sum += e
                    }
                    let scale = 1 / sum
                    for k in 0..<axis { out[base + k * inner] *= scale }
                }
                j += 1
            }
        }
    }
}
