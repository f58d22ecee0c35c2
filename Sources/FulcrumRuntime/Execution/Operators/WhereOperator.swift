import FulcrumKernels
import FulcrumSchema

/// Where: `condition ? X : Y` elementwise with three-way broadcasting; condition is BOOL, X and
/// Y any fixed-size type (the same).
struct WhereOperator: Operator {
    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let c = try required(inputs, 0, "condition")
        let x = try required(inputs, 1, "X")
        let y = try required(inputs, 2, "Y")
        guard c.dataType == .bool else { throw failure("condition must be BOOL, got \(c.dataType.rawValue)") }
        guard x.dataType == y.dataType, x.dataType.byteSize != nil else {
            throw failure("X and Y must have the same fixed-size type, got \(x.dataType.rawValue) and \(y.dataType.rawValue)")
        }
        guard let sc = c.shape, let sx = x.shape, let sy = y.shape else { return [ValueType(dataType: x.dataType, shape: nil)] }
        guard let xy = BroadcastLayout.broadcastShape(sx, sy), let out = BroadcastLayout.broadcastShape(sc, xy) else {
            throw failure("shapes \(sc), \(sx) and \(sy) do not broadcast")
        }
        return [ValueType(dataType: x.dataType, shape: out)]
    }

    /// Element strides of `shape` read as `output` (0 where broadcast).
    static func broadcastStrides(_ shape: [Int], to output: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: output.count - shape.count) + shape
        let contiguous = CopyLayout.contiguousStrides(padded)
        return zip(padded, contiguous).map { $0 == 1 ? 0 : $1 }
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let (c, x, y, out) = (inputs[0]!, inputs[1]!, inputs[2]!, outputs[0])
        let shape = out.shape
        let size = out.dataType.byteSize ?? 1
        let destination = CopyLayout.contiguousStrides(shape)
        // Copy X everywhere, then Y where the condition is false: two broadcast copies and a select.
        let fromX = CopyLayout(shape: shape, sourceStrides: Self.broadcastStrides(x.shape, to: shape), destinationStrides: destination)
        let fromY = CopyLayout(shape: shape, sourceStrides: Self.broadcastStrides(y.shape, to: shape), destinationStrides: destination)
        let fromC = CopyLayout(shape: shape, sourceStrides: Self.broadcastStrides(c.shape, to: shape), destinationStrides: destination)
        let count = out.elementCount
        let scratch = TensorBuffer(byteCount: count * (size + 1))
        let (px, py, pc, po) = (UnsafeRawPointer(x.pointer), UnsafeRawPointer(y.pointer), UnsafeRawPointer(c.pointer), out.pointer)
        return {
            let ys = scratch.pointer
            let mask = scratch.pointer + count * size
            backend.copy(fromX, from: px, to: po, elementSize: size)
            backend.copy(fromY, from: py, to: ys, elementSize: size)
            backend.copy(fromC, from: pc, to: mask, elementSize: 1)
            for i in 0..<count where mask.load(fromByteOffset: i, as: UInt8.self) == 0 {
                (po + i * size).copyMemory(from: ys + i * size, byteCount: size)
            }
        }
    }
}
