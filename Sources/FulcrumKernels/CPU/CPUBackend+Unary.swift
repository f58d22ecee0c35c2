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
    /// `x` (a copy).
    case identity
}

extension CPUBackend {
    /// `out[i] = f(input[i])` for `count` FP32 elements. `out` may equal `input` (in place).
    /// Relu, Neg, Abs, Sqrt and Identity run 8 lanes at a time; the transcendental ones call libm
    /// per element.
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
            for i in 0..<count {
                let x = input[i]
                // Stable for large |x|: never computes exp of a large positive number.
                if x >= 0 {
                    out[i] = 1 / (1 + expf(-x))
                } else {
                    let e = expf(x)
                    out[i] = e / (1 + e)
                }
            }
        case .tanh:
            for i in 0..<count { out[i] = tanhf(input[i]) }
        case .exp:
            for i in 0..<count { out[i] = expf(input[i]) }
        case .log:
            for i in 0..<count { out[i] = logf(input[i]) }
        }
    }

    @inline(__always)
    private func simd(
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
    /// `logarithm` computes LogSoftmax instead.
    public func softmax(
        _ input: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
        outer: Int, axis: Int, inner: Int, logarithm: Bool = false
    ) {
        guard axis > 0 else { return }
        for o in 0..<outer {
            for j in 0..<inner {
                let base = o * axis * inner + j
                var maximum = -Float.infinity
                for k in 0..<axis { maximum = max(maximum, input[base + k * inner]) }
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
