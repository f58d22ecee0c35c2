import FulcrumSchema

/// Reading and writing the tensors processors see: numbers of any numeric type as Double, and
/// BYTES elements (each a 4-byte little-endian length and its bytes).
extension Tensor {
    /// The elements as Double (numeric types and BOOL), nil for BYTES and half floats.
    var doubles: [Double]? {
        switch dataType {
        case .fp32: scalars(as: Float.self).map(Double.init)
        case .fp64: scalars(as: Double.self)
        case .int8: scalars(as: Int8.self).map(Double.init)
        case .int16: scalars(as: Int16.self).map(Double.init)
        case .int32: scalars(as: Int32.self).map(Double.init)
        case .int64: scalars(as: Int64.self).map(Double.init)
        case .uint8: scalars(as: UInt8.self).map(Double.init)
        case .uint16: scalars(as: UInt16.self).map(Double.init)
        case .uint32: scalars(as: UInt32.self).map(Double.init)
        case .uint64: scalars(as: UInt64.self).map(Double.init)
        case .bool: scalars(as: Bool.self).map { $0 ? 1 : 0 }
        case .bytes, .fp16, .bf16: nil
        }
    }

    /// The BYTES elements, or nil when the data is not a well-formed BYTES encoding.
    var byteElements: [[UInt8]]? {
        guard dataType == .bytes else { return nil }
        var elements: [[UInt8]] = []
        var offset = 0
        while offset < data.count {
            guard data.count - offset >= 4 else { return nil }
            let length = Int(data[offset]) | Int(data[offset + 1]) << 8 | Int(data[offset + 2]) << 16 | Int(data[offset + 3]) << 24
            offset += 4
            guard length <= data.count - offset else { return nil }
            elements.append(Array(data[offset..<(offset + length)]))
            offset += length
        }
        return elements
    }

    /// A BYTES tensor of `elements`.
    init(bytes elements: [[UInt8]], shape: [Int]) {
        var data: [UInt8] = []
        data.reserveCapacity(elements.reduce(0) { $0 + 4 + $1.count })
        for element in elements {
            withUnsafeBytes(of: UInt32(element.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: element)
        }
        self.init(dataType: .bytes, shape: shape, data: data)
    }
}
