import FulcrumKernels
import FulcrumSchema

/// Add, Sub, Mul, Div over FP32, INT32 or INT64 with multidirectional (numpy) broadcasting
/// (opset 7+). INT64 is what exported shape arithmetic uses.
struct BinaryElementwiseOperator: Operator {
    let kind: BinaryOperator
    static let supportedTypes: [DataType] = [.fp32, .int32, .int64]

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let a = try required(inputs, 0, "A")
        let b = try required(inputs, 1, "B")
        guard a.dataType == b.dataType else {
            throw failure("inputs have different types (\(a.dataType.rawValue) and \(b.dataType.rawValue))")
        }
        guard Self.supportedTypes.contains(a.dataType) else { throw unsupported(a.dataType, "FP32, INT32, INT64") }
        guard let sa = a.shape, let sb = b.shape else { return [ValueType(dataType: a.dataType, shape: nil)] }
        guard let out = BroadcastLayout.broadcastShape(sa, sb) else {
            throw failure("shapes \(sa) and \(sb) do not broadcast")
        }
        return [ValueType(dataType: a.dataType, shape: out)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let a = inputs[0]!
        let b = inputs[1]!
        let out = outputs[0]
        guard let layout = BroadcastLayout(a.shape, b.shape) else {
            throw failure("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let kind = self.kind
        switch a.dataType {
        case .fp32:
            let (pa, pb, po) = (UnsafePointer(a.floats()), UnsafePointer(b.floats()), out.floats())
            return { backend.binary(kind, pa, pb, po, layout: layout) }
        case .int32:
            let (pa, pb, po) = (UnsafePointer(a.int32s()), UnsafePointer(b.int32s()), out.int32s())
            return { backend.binary(kind, pa, pb, po, layout: layout) }
        case .int64:
            let (pa, pb, po) = (UnsafePointer(a.int64s()), UnsafePointer(b.int64s()), out.int64s())
            return { backend.binary(kind, pa, pb, po, layout: layout) }
        default:
            throw RuntimeError(code: .internalError, message: "no kernel for \(a.dataType.rawValue)")
        }
    }
}
