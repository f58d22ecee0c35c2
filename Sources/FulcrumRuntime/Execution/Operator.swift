import FulcrumKernels
import FulcrumSchema

/// The per-batch work of one node, with its buffers already bound. Runs on the calling thread;
/// throws only for data-dependent failures a shape check cannot catch (an index out of range).
typealias Kernel = () throws(RuntimeError) -> Void

/// A value bound to memory in a plan bound to concrete shapes.
struct BoundValue {
    var dataType: DataType
    var shape: [Int]
    var pointer: UnsafeMutableRawPointer

    var elementCount: Int { shape.reduce(1, *) }
    var byteCount: Int { elementCount * (dataType.byteSize ?? 0) }

    func floats() -> UnsafeMutablePointer<Float> { pointer.assumingMemoryBound(to: Float.self) }
    func int32s() -> UnsafeMutablePointer<Int32> { pointer.assumingMemoryBound(to: Int32.self) }
    func int64s() -> UnsafeMutablePointer<Int64> { pointer.assumingMemoryBound(to: Int64.self) }

    /// The elements of an FP32 or FP64 tensor as `Double`s; `nil` for other types.
    func reals() -> [Double]? {
        let count = elementCount
        switch dataType {
        case .fp32: return (0..<count).map { Double(floats()[$0]) }
        case .fp64: return (0..<count).map { pointer.load(fromByteOffset: $0 * 8, as: Double.self) }
        default: return nil
        }
    }

    /// The elements of an integer (INT64, INT32, BOOL, INT8, UINT8) tensor as `Int`s; `nil` for
    /// other types.
    func integers() -> [Int]? {
        let count = elementCount
        switch dataType {
        case .int64: return (0..<count).map { Int(int64s()[$0]) }
        case .int32: return (0..<count).map { Int(int32s()[$0]) }
        case .bool, .uint8: return (0..<count).map { Int(pointer.load(fromByteOffset: $0, as: UInt8.self)) }
        case .int8: return (0..<count).map { Int(pointer.load(fromByteOffset: $0, as: Int8.self)) }
        default: return nil
        }
    }
}

/// One ONNX operator, configured from a node's attributes and the model's opset.
///
/// Planning happens in two steps so the per-batch path does no work but the kernels:
/// `inferTypes` runs at load with partially known shapes (to refuse a malformed model early) and
/// again when a plan is bound to concrete input shapes (to size every buffer); `makeKernel` then
/// captures the buffers and any precomputed layout in a closure. Errors are `.invalidModel` with
/// a message about the inputs; the plan adds the node's name and op type.
///
/// Kernels write every element of their outputs: buffers are shared between values whose
/// lifetimes do not overlap, so an output starts with another value's bytes.
protocol Operator: Sendable {
    /// Output types from input types (`nil` for an omitted optional input). Inputs' `values`
    /// are set when their contents are known while planning.
    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType]
    /// The per-batch work over bound, concrete buffers.
    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel
    /// When output 0 is input `viewInput`'s bytes under another shape (Reshape, Flatten,
    /// Squeeze, Unsqueeze, Identity): the plan aliases the memory and runs no kernel.
    var viewInput: Int? { get }
    /// Whether the outputs depend only on the inputs' shapes, never their contents (Shape):
    /// such a node runs once when the plan is bound, not per batch.
    var readsOnlyShapes: Bool { get }
}

extension Operator {
    var viewInput: Int? { nil }
    var readsOnlyShapes: Bool { false }

    /// Shorthand for a `.invalidModel` error.
    func failure(_ message: String) -> RuntimeError {
        RuntimeError(code: .invalidModel, message: message)
    }

    /// Shorthand for an `.unsupportedOperator` error about a data type.
    func unsupported(_ type: DataType, _ supported: String) -> RuntimeError {
        RuntimeError(code: .unsupportedOperator, message: "type \(type.rawValue) is not supported (supported: \(supported))")
    }

    /// The input at `index`, which must be present.
    func required(_ inputs: [ValueType?], _ index: Int, _ role: String) throws(RuntimeError) -> ValueType {
        guard index < inputs.count, let value = inputs[index] else {
            throw failure("input \(index) (\(role)) is required")
        }
        return value
    }

    /// The input at `index` if present.
    func optional(_ inputs: [ValueType?], _ index: Int) -> ValueType? {
        index < inputs.count ? inputs[index] : nil
    }

    /// `axis` resolved against `rank` (negative counts from the end); `inclusive` allows `rank`
    /// itself (Unsqueeze, Flatten).
    func resolveAxis(_ axis: Int, rank: Int, inclusive: Bool = false, _ role: String = "axis") throws(RuntimeError) -> Int {
        let limit = inclusive ? rank + 1 : rank
        let resolved = axis < 0 ? axis + rank : axis
        guard resolved >= 0, resolved < limit else {
            throw failure("\(role) \(axis) is out of range for rank \(rank)")
        }
        return resolved
    }
}
