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
    /// Relu, Neg, Abs, Sqrt, Exp, Sigmoid and Identity run 8 lanes at a time (`VectorMath`);
    /// Tanh, Log, Erf and Gelu call libm per element.
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
            simd(input, out, count, VectorMath.sigmoid, Self.sigmoid)
        case .exp:
            simd(input, out, count, VectorMath.exp, { VectorMath.exp(SIMD8(repeating: $0))[0] })
        case .tanh:
            for i in 0..<count { out[i] = tanhf(input[i]) }
        case .log:
            for i in 0..<count { out[i] = logf(input[i]) }
        case .erf:
            for i in 0..<count { out[i] = erff(input[i]) }
        case .gelu:
            for i in 0..<count {
                let x = input[i]
                out[i] = 0.5 * x * (1 + erff(x * 0.70710678118654752))
            }
        case .geluTanh:
            for i in 0..<count {
                let x = input[i]
                out[i] = 0.5 * x * (1 + tanhf(0.79788456080286536 * (x + 0.044715 * x * x * x)))
            }
        }
    }

    /// `out[i] = x < 0 ? alpha · x : x` (LeakyRelu). `out` may equal `input`.
    public func leakyRelu(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, alpha: Float) {
        simd(input, out, count, { $0.replacing(with: $0 * alpha, where: $0 .< 0) }, { $0 < 0 ? $0 * alpha : $0 })
    }

    /// `out[i] = min(max(input[i], low), high)` (Clip). `out` may equal `input`.
    public func clip(_ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, low: Float, high: Float) {
        simd(input, out, count, { $0.replacing(with: SIMD8(repeating: low), where: $0 .< low).replacing(with: SIMD8(repeating: high), where: $0 .> high) },
             { Swift.min(Swift.max($0, low), high) })
    }

    /// The logistic function for one element.
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        VectorMath.sigmoid(SIMD8(repeating: x))[0]
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
    /// `logarithm` computes LogSoftmax instead. The common contiguous case (`inner == 1`) runs
    /// 8 lanes at a time.
    public func softmax(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        outer: Int, axis: Int, inner: Int, logarithm: Bool = false
    ) {
        guard axis > 0 else { return }
        if inner == 1 && !logarithm {
            for o in 0..<outer {
                let x = input + o * axis
                let y = out + o * axis
                var maximum = -Float.infinity
                for k in 0..<axis { maximum = Swift.max(maximum, x[k]) }
                var sum: Float = 0
                var k = 0
                let raw = UnsafeMutableRawPointer(y)
                var vsum = SIMD8<Float>(repeating: 0)
                while k + 8 <= axis {
                    let e = VectorMath.exp(UnsafeRawPointer(x + k).loadUnaligned(as: SIMD8<Float>.self) - maximum)
                    raw.storeBytes(of: e, toByteOffset: k * 4, as: SIMD8<Float>.self)
                    vsum += e
                    k += 8
                }
                sum = vsum.sum()
                while k < axis {
                    let e = VectorMath.exp(SIMD8(repeating: x[k] - maximum))[0]
                    y[k] = e
                    sum += e
                    k += 1
                }
                let scale = 1 / sum
                simd(y, y, axis, { $0 * scale }, { $0 * scale })
            }
            return
        }
        for o in 0..<outer {
            for j in 0..<inner {
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
            }
        }
    }
}
