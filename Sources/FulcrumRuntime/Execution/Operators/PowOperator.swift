#if canImport(Glibc)
import FulcrumSchema
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FulcrumKernels

/// Pow: `X ^ Y` with broadcasting; X is FP32, Y is FP32, INT32 or INT64 (opset 12+ allows
/// mixed types). An exponent of exactly 2 or 0.5 runs as a product or a square root.
struct PowOperator: Operator {
    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "X")
        let y = try required(inputs, 1, "Y")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32 base") }
        guard [.fp32, .int32, .int64].contains(y.dataType) else { throw unsupported(y.dataType, "FP32, INT32, INT64 exponent") }
        guard let sx = x.shape, let sy = y.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard let out = BroadcastLayout.broadcastShape(sx, sy) else { throw failure("shapes \(sx) and \(sy) do not broadcast") }
        return [ValueType(dataType: .fp32, shape: out)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let y = inputs[1]!
        guard let layout = BroadcastLayout(x.shape, y.shape) else { throw failure("shapes \(x.shape) and \(y.shape) do not broadcast") }
        let px = UnsafePointer(x.floats())
        let out = outputs[0].floats()
        switch y.dataType {
        case .int32:
            let py = UnsafePointer(y.int32s())
            return { backend.broadcast(px, py, out, layout: layout) { powf($0, Float($1)) } }
        case .int64:
            let py = UnsafePointer(y.int64s())
            return { backend.broadcast(px, py, out, layout: layout) { powf($0, Float($1)) } }
        default:
            let py = UnsafePointer(y.floats())
            return {
                backend.broadcast(px, py, out, layout: layout) { base, exponent in
                    exponent == 2 ? base * base : exponent == 0.5 ? base.squareRoot() : powf(base, exponent)
                }
            }
        }
    }
}
