import FulcrumKernels
import FulcrumSchema

/// Cast between FP32, FP64, INT64, INT32, INT8, UINT8 and BOOL (`to` attribute). Float to
/// integer truncates toward zero; anything to BOOL is `value != 0`.
struct CastOperator: Operator {
    let target: DataType
    static let supported: [DataType] = [.fp32, .fp64, .int64, .int32, .int8, .uint8, .bool]

    init(attributes: NodeAttributes) throws(RuntimeError) {
        let to = try attributes.int("to", default: 0)
        guard let type = DataType(onnxElementType: Int32(clamping: to)), Self.supported.contains(type) else {
            throw RuntimeError(
                code: .unsupportedOperator,
                message: "Cast to \(DataType.onnxName(Int32(clamping: to))) is not supported (supported: \(Self.supported.map(\.rawValue).joined(separator: ", ")))")
        }
        target = type
    }

    func inferTypes(_ inputs: [ValueType?]) throws(RuntimeError) -> [ValueType] {
        let x = try required(inputs, 0, "input")
        guard Self.supported.contains(x.dataType) else { throw unsupported(x.dataType, Self.supported.map(\.rawValue).joined(separator: ", ")) }
        return [ValueType(dataType: target, shape: x.shape)]
    }

    func makeKernel(inputs: [BoundValue?], outputs: [BoundValue], backend: CPUBackend) throws(RuntimeError) -> Kernel {
        let source = inputs[0]!
        let out = outputs[0]
        let count = out.elementCount
        let (from, to) = (source.dataType, target)
        let (input, output) = (UnsafeRawPointer(source.pointer), out.pointer)
        if from == to { return { output.copyMemory(from: input, byteCount: out.byteCount) } }
        if from == .fp32 && to == .int64 {
            return { for i in 0..<count { output.storeBytes(of: Self.truncate(input.load(fromByteOffset: i * 4, as: Float.self)), toByteOffset: i * 8, as: Int64.self) } }
        }
        if from == .int64 && to == .fp32 {
            return { for i in 0..<count { output.storeBytes(of: Float(input.load(fromByteOffset: i * 8, as: Int64.self)), toByteOffset: i * 4, as: Float.self) } }
        }
        let floating = from == .fp32 || from == .fp64 || to == .fp32 || to == .fp64
        return {
            for i in 0..<count {
                if floating {
                    Self.store(Self.load(input, i, from), output, i, to)
                } else {
                    Self.storeInteger(Self.loadInteger(input, i, from), output, i, to)
                }
            }
        }
    }

    @inline(__always) static func truncate(_ value: Float) -> Int64 {
        value.isNaN ? 0 : Int64(exactly: value.rounded(.towardZero)) ?? (value < 0 ? .min : .max)
    }

    @inline(__always) static func load(_ p: UnsafeRawPointer, _ i: Int, _ type: DataType) -> Double {
        switch type {
        case .fp32: Double(p.load(fromByteOffset: i * 4, as: Float.self))
        case .fp64: p.load(fromByteOffset: i * 8, as: Double.self)
        case .int64: Double(p.load(fromByteOffset: i * 8, as: Int64.self))
        case .int32: Double(p.load(fromByteOffset: i * 4, as: Int32.self))
        case .int8: Double(p.load(fromByteOffset: i, as: Int8.self))
        default: Double(p.load(fromByteOffset: i, as: UInt8.self))
        }
    }

    @inline(__always) static func store(_ value: Double, _ p: UnsafeMutableRawPointer, _ i: Int, _ type: DataType) {
        let integer = value.isNaN ? 0 : Int64(exactly: value.rounded(.towardZero)) ?? (value < 0 ? .min : .max)
        switch type {
        case .fp32: p.storeBytes(of: Float(value), toByteOffset: i * 4, as: Float.self)
        case .fp64: p.storeBytes(of: value, toByteOffset: i * 8, as: Double.self)
        case .bool: p.storeBytes(of: value != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self)
        default: storeInteger(integer, p, i, type)
        }
    }

    @inline(__always) static func loadInteger(_ p: UnsafeRawPointer, _ i: Int, _ type: DataType) -> Int64 {
        switch type {
        case .int64: p.load(fromByteOffset: i * 8, as: Int64.self)
        case .int32: Int64(p.load(fromByteOffset: i * 4, as: Int32.self))
        case .int8: Int64(p.load(fromByteOffset: i, as: Int8.self))
        default: Int64(p.load(fromByteOffset: i, as: UInt8.self))
        }
    }

    @inline(__always) static func storeInteger(_ value: Int64, _ p: UnsafeMutableRawPointer, _ i: Int, _ type: DataType) {
        switch type {
        case .int64: p.storeBytes(of: value, toByteOffset: i * 8, as: Int64.self)
        case .int32: p.storeBytes(of: Int32(truncatingIfNeeded: value), toByteOffset: i * 4, as: Int32.self)
        case .int8: p.storeBytes(of: Int8(truncatingIfNeeded: value), toByteOffset: i, as: Int8.self)
        case .bool: p.storeBytes(of: value != 0 ? 1 : 0, toByteOffset: i, as: UInt8.self)
        case .fp32: p.storeBytes(of: Float(value), toByteOffset: i * 4, as: Float.self)
        case .fp64: p.storeBytes(of: Double(value), toByteOffset: i * 8, as: Double.self)
        default: p.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: i, as: UInt8.self)
        }
    }
}
