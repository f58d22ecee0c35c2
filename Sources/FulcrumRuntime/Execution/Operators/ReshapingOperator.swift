import FulcrumKernels
import FulcrumSchema

/// Reshape, Flatten, Squeeze, Unsqueeze and Identity: the output is the input's bytes under
/// another shape, so the plan aliases the input's memory and runs nothing per batch.
///
/// - Reshape: `shape` input; 0 copies the input's dimension unless `allowzero = 1` (opset 14+),
///   one -1 is inferred.
/// - Flatten: `[prod(dims[..<axis]), prod(dims[axis...])]`, `axis` default 1 (negative from 11).
/// - Squeeze/Unsqueeze: `axes` attribute before opset 13, input from 13; Squeeze without axes
///   drops every 1.
struct ReshapingOperator: Operator {
    /// Which operator.
    enum Kind: Sendable {
        case reshape(allowZero: Bool)
        case flatten(axis: Int)
        case squeeze(axes: [Int]?)
        case unsqueeze(axes: [Int]?)
        case identity
    }

    let kind: Kind
    /// Whether Squeeze/Unsqueeze read `axes` from input 1 (opset 13+).
    let axesFromInput: Bool

    init(kind: Kind, axesFromInput: Bool = false) {
        self.kind = kind
        self.axesFromInput = axesFromInput
    }

    var viewInput: Int? { 0 }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard x.dataType.byteSize != nil else { throw unsupported(x.dataType, "fixed-size types") }
        let shape = try outputShape(x, inputs)
        // Small known integer tensors keep their values (the elements do not move).
        return [ValueType(dataType: x.dataType, shape: shape, values: x.values)]
    }

    private func axes(_ attribute: [Int]?, _ inputs: [ValueType?]) throws(RuntimeError) -> [Int]?? {
        guard axesFromInput else { return .some(attribute) }
        guard let given = optional(inputs, 1) else { return .some(nil) }
        guard let values = given.values else { return .none }  // not known yet
        return .some(values)
    }

    private func outputShape(_ x: ValueType, _ inputs: [ValueType?]) throws(RuntimeError) -> [Int]? {
        switch kind {
        case .identity:
            return x.shape
        case .reshape(let allowZero):
            let target = try required(inputs, 1, "shape")
            guard target.dataType == .int64 else { throw failure("shape must be INT64, got \(target.dataType.rawValue)") }
            guard let requested = target.values else {
                return target.shape?.first.flatMap { $0 >= 0 ? [Int](repeating: -1, count: $0) : nil }
            }
            var shape = requested
            let input = x.shape
            for (i, d) in requested.enumerated() where d == 0 && !allowZero {
                guard let input, i < input.count else { throw failure("shape \(requested) copies dimension \(i), which the input \(input ?? []) lacks") }
                shape[i] = input[i]
            }
            let unknown = requested.indices.filter { requested[$0] == -1 }
            guard unknown.count <= 1, requested.allSatisfy({ $0 >= -1 }) else { throw failure("shape \(requested) is not a valid target shape") }
            guard let input, input.allSatisfy({ $0 >= 0 }) else {
                return shape  // a -1 stays unknown until the batch is bound
            }
            let total = input.reduce(1, *)
            let known = shape.enumerated().filter { !unknown.contains($0.offset) }.map(\.element).reduce(1, *)
            if let u = unknown.first {
                guard known > 0, total % known == 0 else { throw failure("cannot reshape \(input) (\(total) elements) to \(requested)") }
                shape[u] = total / known
            } else if known != total {
                throw failure("cannot reshape \(input) (\(total) elements) to \(requested)")
            }
            return shape
        case .flatten(let axis):
            guard let shape = x.shape else { return [-1, -1] }
            let a = try resolveAxis(axis, rank: shape.count, inclusive: true)
            func product(_ dims: ArraySlice<Int>) -> Int { dims.contains { $0 < 0 } ? -1 : dims.reduce(1, *) }
            return [product(shape[..<a]), product(shape[a...])]
        case .squeeze(let attribute):
            guard let shape = x.shape else { return nil }
            guard let axes = try axes(attribute, inputs) else { return nil }
            guard let axes else {
                guard shape.allSatisfy({ $0 >= 0 }) else { return nil }
                return shape.filter { $0 != 1 }
            }
            var drop = Set<Int>()
            for axis in axes {
                let a = try resolveAxis(axis, rank: shape.count, "squeeze axis")
                guard shape[a] == 1 || shape[a] < 0 else { throw failure("cannot squeeze dimension \(a) of size \(shape[a])") }
                drop.insert(a)
            }
            return shape.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        case .unsqueeze(let attribute):
            guard let shape = x.shape else { return nil }
            guard let axes = try axes(attribute, inputs) else { return nil }
            guard let axes else { throw failure("axes are required") }
            let rank = shape.count + axes.count
            var insert = Set<Int>()
            for axis in axes {
                let a = try resolveAxis(axis, rank: rank, "unsqueeze axis")
                guard insert.insert(a).inserted else { throw failure("axis \(axis) is repeated") }
            }
            var result: [Int] = []
            var next = shape.makeIterator()
            for d in 0..<rank { result.append(insert.contains(d) ? 1 : next.next()!) }
            return result
        }
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        // Only reached when the plan could not alias (never in practice): copy.
        let source = UnsafeRawPointer(inputs[0]!.pointer)
        let out = outputs[0]
        return { if UnsafeRawPointer(out.pointer) != source { out.pointer.copyMemory(from: source, byteCount: out.byteCount) } }
    }
}
