import FulcrumKernels
import FulcrumSchema

/// Equal, Less and Greater with broadcasting, producing BOOL. Inputs: FP32, INT32, INT64 (and
/// BOOL for Equal).
struct ComparisonOperator: Operator {
    /// Which comparison.
    enum Kind: String, Sendable {
        case equal = "Equal", less = "Less", greater = "Greater"
    }

    let kind: Kind

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        guard a.dataType == b.dataType else {
            throw failure("inputs have different types (\(a.dataType.rawValue) and \(b.dataType.rawValue))")
        }
        let allowed: [DataType] = kind == .equal ? [.fp32, .int32, .int64, .bool] : [.fp32, .int32, .int64]
        guard allowed.contains(a.dataType) else { throw unsupported(a.dataType, allowed.map(\.rawValue).joined(separator: ", ")) }
        guard let sa = a.shape, let sb = b.shape else { return [ValueType(dataType: .bool, shape: nil)] }
        guard let out = BroadcastLayout.broadcastShape(sa, sb) else { throw failure("shapes \(sa) and \(sb) do not broadcast") }
        return [ValueType(dataType: .bool, shape: out)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let a = inputs[0]!
        let b = inputs[1]!
        guard let layout = BroadcastLayout(a.shape, b.shape) else { throw failure("shapes \(a.shape) and \(b.shape) do not broadcast") }
        let out = outputs[0].pointer.assumingMemoryBound(to: UInt8.self)
        switch a.dataType {
        case .fp32: return Self.kernel(kind, UnsafePointer(a.floats()), UnsafePointer(b.floats()), out, layout, backend)
        case .int32: return Self.kernel(kind, UnsafePointer(a.int32s()), UnsafePointer(b.int32s()), out, layout, backend)
        case .int64: return Self.kernel(kind, UnsafePointer(a.int64s()), UnsafePointer(b.int64s()), out, layout, backend)
        default:
            let pa = UnsafePointer(a.pointer.assumingMemoryBound(to: UInt8.self))
            let pb = UnsafePointer(b.pointer.assumingMemoryBound(to: UInt8.self))
            return { backend.broadcast(pa, pb, out, layout: layout) { ($0 != 0) == ($1 != 0) ? 1 : 0 } }
        }
    }

    private static func kernel<T: Comparable>(
        _ kind: Kind, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ out: UnsafeMutablePointer<UInt8>,
        _ layout: BroadcastLayout, _ backend: CPUBackend
    ) -> Kernel {
        switch kind {
        case .equal: return { backend.broadcast(a, b, out, layout: layout) { $0 == $1 ? 1 : 0 } }
        case .less: return { backend.broadcast(a, b, out, layout: layout) { $0 < $1 ? 1 : 0 } }
        case .greater: return { backend.broadcast(a, b, out, layout: layout) { $0 > $1 ? 1 : 0 } }
        }
    }
}
