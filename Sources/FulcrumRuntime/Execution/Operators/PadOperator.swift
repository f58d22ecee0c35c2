import FulcrumKernels
import FulcrumSchema

/// Pad (FP32, any rank): `constant` (value from the attribute before opset 11, from input 2
/// after), `reflect` and `edge`; pads from the attribute (< 11) or input 1, optionally for the
/// axes of input 3 (opset 18), known while planning. Negative pads crop.
struct PadOperator: Operator {
    enum Mode: String { case constant, reflect, edge }
    let mode: Mode
    let opset: Int
    /// Opset < 11: the `pads` and `value` attributes.
    let attributePads: [Int]?
    let attributeValue: Float

    init(attributes: NodeAttributes, opset: Int) throws(RuntimeError) {
        let name = try attributes.string("mode", default: "constant")
        guard let mode = Mode(rawValue: name) else {
            throw RuntimeError(code: .unsupportedOperator, message: "mode '\(name)' is not supported (supported: constant, reflect, edge)")
        }
        self.mode = mode
        self.opset = opset
        attributePads = opset < 11 ? try attributes.ints("pads") : nil
        attributeValue = opset < 11 ? try attributes.float("value", default: 0) : 0
        if opset < 11, attributePads == nil { throw RuntimeError(code: .invalidModel, message: "attribute 'pads' is required before opset 11") }
    }

    /// Begin and end pads per axis, when known.
    func pads(_ inputs: [ValueType?], rank: Int) throws(RuntimeError) -> (begin: [Int], end: [Int])? {
        let flat: [Int]
        var axes = Array(0..<rank)
        if let attributePads {
            flat = attributePads
        } else {
            guard let given = try required(inputs, 1, "pads").values else { return nil }
            flat = given
            if let axesInput = optional(inputs, 3) {
                guard let values = axesInput.values else { return nil }
                axes = []
                for axis in values { axes.append(try resolveAxis(axis, rank: rank, "axes")) }
            }
        }
        guard flat.count == 2 * axes.count, Set(axes).count == axes.count else {
            throw failure("pads has \(flat.count) values for \(axes.count) axes (it needs two per axis)")
        }
        guard flat.allSatisfy({ abs($0) <= 1 << 24 }) else { throw failure("pads \(flat) are out of range") }
        var begin = [Int](repeating: 0, count: rank)
        var end = [Int](repeating: 0, count: rank)
        for (k, axis) in axes.enumerated() {
            begin[axis] = flat[k]
            end[axis] = flat[k + axes.count]
        }
        return (begin, end)
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "data")
        guard x.dataType == .fp32 else { throw unsupported(x.dataType, "FP32") }
        guard let shape = x.shape else { return [ValueType(dataType: .fp32, shape: nil)] }
        guard let (begin, end) = try pads(inputs, rank: shape.count) else {
            return [ValueType(dataType: .fp32, shape: [Int](repeating: -1, count: shape.count))]
        }
        var out: [Int] = []
        for axis in shape.indices {
            guard shape[axis] >= 0 else { out.append(-1); continue }
            guard shape[axis] <= 1 << 40 else { throw failure("axis \(axis) of size \(shape[axis]) is out of range") }
            let size = shape[axis] + begin[axis] + end[axis]
            guard size >= 0 else { throw failure("pads \(begin[axis]), \(end[axis]) crop more than axis \(axis)'s \(shape[axis]) elements") }
            if mode == .reflect, shape[axis] < 2, begin[axis] > 0 || end[axis] > 0 {
                throw failure("reflect padding needs at least 2 elements on axis \(axis)")
            }
            if mode == .edge, shape[axis] == 0, size > 0 { throw failure("edge padding of an empty axis \(axis)") }
            out.append(size)
        }
        return [ValueType(dataType: .fp32, shape: out)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let x = inputs[0]!
        let types = inputs.map { $0.map(ValueType.init(known:)) }
        guard let (begin, _) = try pads(types, rank: x.shape.count) else { throw failure("pads must be known while planning (a constant)") }
        var value = attributeValue
        if opset >= 11, let constant = optional(types, 2) {
            guard constant.dataType == .fp32, let reals = constant.reals, reals.count == 1 else { throw failure("constant_value must be one FP32 value") }
            value = Float(reals[0])
        }
        let out = outputs[0]
        // Per axis, the input index each output index reads (-1: the constant).
        let mode = mode
        let maps: [[Int]] = x.shape.indices.map { axis in
            let size = x.shape[axis]
            return (0..<out.shape[axis]).map { o in
                var i = o - begin[axis]
                if i >= 0, i < size { return i }
                switch mode {
                case .constant: return -1
                case .edge: return Swift.min(Swift.max(i, 0), size - 1)
                case .reflect:
                    let period = 2 * (size - 1)
                    i = ((i % period) + period) % period
                    return i < size ? i : period - i
                }
            }
        }
        let inputStrides = CopyLayout.contiguousStrides(x.shape)
        let (input, output, count, rank) = (UnsafePointer(x.floats()), out.floats(), out.elementCount, x.shape.count)
        let outShape = out.shape
        return {
            guard count > 0 else { return }
            withUnsafeTemporaryAllocation(of: Int.self, capacity: rank) { index in
                index.initialize(repeating: 0)
                for o in 0..<count {
                    var source = 0
                    var inside = true
                    for axis in 0..<rank {
                        let i = maps[axis][index[axis]]
                        if i < 0 { inside = false; break }
                        source += i * inputStrides[axis]
                    }
                    output[o] = inside ? input[source] : value
                    var axis = rank - 1
                    while axis >= 0 {
                        index[axis] += 1
                        if index[axis] < outShape[axis] { break }
                        index[axis] = 0
                        axis -= 1
                    }
                }
            }
        }
    }
}
