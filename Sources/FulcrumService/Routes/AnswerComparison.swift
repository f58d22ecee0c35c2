import FulcrumProtocol
import FulcrumSchema
import Foundation

/// How one answer differs from another to the same request, output by output (matched by name):
/// a shadow version's from the served one, or a replayed one from the logged one.
public struct AnswerComparison: Sendable, Equatable {
    public var identical = true
    public var maxAbsError = 0.0
    public var maxRelError = 0.0
    public var argmaxRows: UInt64 = 0
    public var argmaxAgreed: UInt64 = 0
    /// An output missing from the shadow, or of another type or shape, or BYTES that differ.
    public var incomparable = false

    public init(served: Inference_ModelInferResponse, shadow: Inference_ModelInferResponse) {
        let shadowOutputs = Dictionary(
            shadow.outputs.indices.map { (shadow.outputs[$0].name, $0) }, uniquingKeysWith: { first, _ in first })
        for (index, output) in served.outputs.enumerated() {
            guard let other = shadowOutputs[output.name], index < served.rawOutputContents.count, other < shadow.rawOutputContents.count,
                shadow.outputs[other].datatype == output.datatype, shadow.outputs[other].shape == output.shape
            else {
                identical = false
                incomparable = true
                continue
            }
            let a = served.rawOutputContents[index]
            let b = shadow.rawOutputContents[other]
            // Columns of the last dimension (bounded by the bytes present, so no product overflows).
            let columns = output.shape.last.map { Int(clamping: max(1, min($0, Int64(a.count)))) } ?? 1
            if a == b {
                // Identical outputs agree on every row.
                if columns > 1, let size = DataType(rawValue: output.datatype)?.byteSize, a.count % (size * columns) == 0 {
                    argmaxRows += UInt64(a.count / (size * columns))
                    argmaxAgreed += UInt64(a.count / (size * columns))
                }
                continue
            }
            identical = false
            guard let dataType = DataType(rawValue: output.datatype), a.count == b.count,
                let left = Self.numbers(a, dataType), let right = Self.numbers(b, dataType)
            else {
                incomparable = true
                continue
            }
            for (x, y) in zip(left, right) {
                let difference = abs(x - y)
                guard difference.isFinite else {
                    if !(x.isNaN && y.isNaN) && x != y {
                        maxAbsError = .infinity
                        maxRelError = .infinity
                    }
                    continue
                }
                maxAbsError = max(maxAbsError, difference)
                let scale = max(abs(x), abs(y))
                if scale > 0 { maxRelError = max(maxRelError, difference / scale) }
            }
            // Argmax per row for outputs whose last dimension has more than one column.
            if columns > 1, left.count % columns == 0 {
                for row in stride(from: 0, to: left.count, by: columns) {
                    argmaxRows += 1
                    if Self.argmax(left[row..<(row + columns)]) == Self.argmax(right[row..<(row + columns)]) { argmaxAgreed += 1 }
                }
            }
        }
    }

    /// Raw little-endian elements as Double; nil for BYTES and half floats.
    public static func numbers(_ data: Data, _ dataType: DataType) -> [Double]? {
        func read<T>(_ type: T.Type, _ convert: (T) -> Double) -> [Double] {
            let size = MemoryLayout<T>.size
            return data.withUnsafeBytes { raw in
                (0..<(raw.count / size)).map { convert(raw.loadUnaligned(fromByteOffset: $0 * size, as: T.self)) }
            }
        }
        switch dataType {
        case .fp32: return read(Float.self) { Double($0) }
        case .fp64: return read(Double.self) { $0 }
        case .int8: return read(Int8.self) { Double($0) }
        case .int16: return read(Int16.self) { Double($0) }
        case .int32: return read(Int32.self) { Double($0) }
        case .int64: return read(Int64.self) { Double($0) }
        case .uint8: return read(UInt8.self) { Double($0) }
        case .uint16: return read(UInt16.self) { Double($0) }
        case .uint32: return read(UInt32.self) { Double($0) }
        case .uint64: return read(UInt64.self) { Double($0) }
        case .bool: return read(UInt8.self) { $0 == 0 ? 0 : 1 }
        case .bytes, .fp16, .bf16: return nil
        }
    }

    private static func argmax(_ values: ArraySlice<Double>) -> Int {
        var best = values.startIndex
        for index in values.indices where values[index] > values[best] { best = index }
        return best - values.startIndex
    }
}
