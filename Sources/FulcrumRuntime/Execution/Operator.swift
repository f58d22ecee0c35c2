import FulcrumKernels

/// The per-batch work of one node, with its buffers already bound. Runs on the calling thread.
typealias Kernel = () -> Void

/// A value bound to memory in a plan bound to concrete shapes.
struct BoundValue {
    var dataType: DataType
    var shape: [Int]
    var pointer: UnsafeMutableRawPointer

    var elementCount: Int { shape.reduce(1, *) }

    func floats() -> UnsafeMutablePointer<Float> { pointer.assumingMemoryBound(to: Float.self) }
    func int32s() -> UnsafeMutablePointer<Int32> { pointer.assumingMemoryBound(to: Int32.self) }
}

/// One ONNX operator, configured from a node's attributes and the model's opset.
///
/// Planning happens in two steps so the per-batch path does no work but the kernels:
/// `inferTypes` runs at load with partially known shapes (to refuse a malformed model early) and
/// again when a plan is bound to concrete input shapes (to size every buffer); `makeKernel` then
/// captures the buffers and any precomputed layout in a closure. Errors are `.invalidModel` with
/// a message about the inputs; the plan adds the node's name and op type.
protocol Operator: Sendable {
    /// Output types from input types (`nil` for an omitted optional input).
    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType]
    /// The per-batch work over bound, concrete buffers.
    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel
}

extension Operator {
    /// Shorthand for a `.invalidModel` error.
    func failure(_ message: String) -> RuntimeError {
        RuntimeError(code: .invalidModel, message: message)
    }

    /// The input at `index`, which must be present.
    func required(_ inputs: [ValueType?], _ index: Int, _ role: String) throws(RuntimeError) -> ValueType {
        guard index < inputs.count, let value = inputs[index] else {
            throw failure("input \(index) (\(role)) is required")
        }
        return value
    }
}
