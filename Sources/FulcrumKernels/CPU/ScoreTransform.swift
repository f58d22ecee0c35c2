import Foundation

/// The `post_transform` of ONNX's classic machine-learning operators (tree ensembles, linear
/// models), computed in `Float` the way onnxruntime computes them.
public enum ScoreTransform: Sendable {
    case none, softmax, logistic, softmaxZero, probit

    /// The attribute's names (`NONE`, `SOFTMAX`, `LOGISTIC`, `SOFTMAX_ZERO`, `PROBIT`).
    public init?(name: String) {
        switch name {
        case "NONE": self = .none
        case "SOFTMAX": self = .softmax
        case "LOGISTIC": self = .logistic
        case "SOFTMAX_ZERO": self = .softmaxZero
        case "PROBIT": self = .probit
        default: return nil
        }
    }

    /// Transforms one row of `count` scores in place (softmax over the row; the others per value).
    public func apply(to out: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .none: break
        case .probit: for j in 0..<count { out[j] = Self.probit(out[j]) }
        case .logistic: for j in 0..<count { out[j] = Self.logistic(out[j]) }
        case .softmax:
            var top = -Float.greatestFiniteMagnitude
            for j in 0..<count { top = max(top, out[j]) }
            var sum: Float = 0
            for j in 0..<count {
                out[j] = expf(out[j] - top)
                sum += out[j]
            }
            for j in 0..<count { out[j] /= sum }
        case .softmaxZero:
            // Zeros stay (near) zero: they are scaled, not exponentiated.
            var top = -Float.greatestFiniteMagnitude
            for j in 0..<count { top = max(top, out[j]) }
            let scale = expf(-top)
            var sum: Float = 0
            for j in 0..<count {
                if out[j] > 0.0000001 || out[j] < -0.0000001 {
                    out[j] = expf(out[j] - top)
                    sum += out[j]
                } else {
                    out[j] *= scale
                }
            }
            for j in 0..<count { out[j] /= sum }
        }
    }

    public static func logistic(_ x: Float) -> Float {
        let v = 1 / (1 + expf(-abs(x)))
        return x < 0 ? 1 - v : v
    }

    /// √2 · erf⁻¹(2x − 1), by Newton's method on `erf` from a rough first guess.
    public static func probit(_ x: Float) -> Float {
        let y = 2 * Double(x) - 1
        guard y > -1 else { return -.infinity }
        guard y < 1 else { return .infinity }
        let w = -log((1 - y) * (1 + y))
        var z = y * (w < 5 ? 0.886 + 0.2 * w / 5 : 1.2 + 0.05 * (w - 5))
        for _ in 0..<40 {
            let e = erf(z) - y
            z -= e / (2 / Double.pi.squareRoot() * exp(-z * z))
            if abs(e) < 1e-15 { break }
        }
        return Float(2.0.squareRoot() * z)
    }
}
