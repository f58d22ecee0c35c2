import Foundation
import FulcrumSchema
import ONNXFormat

extension Onnx_TensorProto {
    /// Decodes an initializer into Fulcrum's layout (row-major, little-endian bytes).
    ///
    /// `raw_data` wins over typed fields; typed values come from `float_data`, `int32_data`
    /// (also int8/int16/uint8/uint16/bool/float16/bfloat16), `int64_data`, `double_data` or
    /// `uint64_data` (uint32/uint64). External data is read from `location` relative to
    /// `modelDirectory`, refusing locations that leave it. Throws `.invalidModel` naming the tensor.
    func decoded(modelDirectory: String) throws(RuntimeError) -> (type: ValueType, bytes: [UInt8]) {
        func fail(_ text: String) -> RuntimeError {
            RuntimeError(code: .invalidModel, message: "initializer '\(name)': \(text)")
        }
        guard let dataType = FulcrumSchema.DataType(onnxElementType: self.dataType) else {
            throw fail("element type \(FulcrumSchema.DataType.onnxName(self.dataType)) is not supported")
        }
        guard let size = dataType.byteSize else {
            throw fail("STRING initializers are not supported")
        }
        var count = 1
        for dim in dims {
            guard dim >= 0, let d = Int(exactly: dim) else { throw fail("dimension \(dim) is negative") }
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= Int(Int32.max) * 16 else { throw fail("shape \(dims) is too large") }
            count = product
        }
        let type = ValueType(dataType: dataType, shape: dims.map { Int($0) })
        let byteCount = count * size

        if dataLocation == .external {
            return (type, try readExternal(byteCount: byteCount, modelDirectory: modelDirectory, fail: fail))
        }
        if !rawData.isEmpty || count == 0 {
            guard rawData.count == byteCount else {
                throw fail("raw_data holds \(rawData.count) bytes, but \(dataType.rawValue)\(dims) needs \(byteCount)")
            }
            return (type, [UInt8](rawData))
        }
        func check(_ available: Int, _ field: String) throws(RuntimeError) {
            guard available == count else {
                throw fail("\(field) holds \(available) values, but shape \(dims) needs \(count)")
            }
        }
        switch dataType {
        case .fp32:
            try check(floatData.count, "float_data")
            return (type, floatData.withUnsafeBytes { [UInt8]($0) })
        case .int32:
            try check(int32Data.count, "int32_data")
            return (type, int32Data.withUnsafeBytes { [UInt8]($0) })
        case .int64:
            try check(int64Data.count, "int64_data")
            return (type, int64Data.withUnsafeBytes { [UInt8]($0) })
        case .fp64:
            try check(doubleData.count, "double_data")
            return (type, doubleData.withUnsafeBytes { [UInt8]($0) })
        case .uint64:
            try check(uint64Data.count, "uint64_data")
            return (type, uint64Data.withUnsafeBytes { [UInt8]($0) })
        case .uint32:
            try check(uint64Data.count, "uint64_data")
            return (type, uint64Data.map { UInt32(truncatingIfNeeded: $0) }.withUnsafeBytes { [UInt8]($0) })
        case .int8, .uint8, .bool:
            try check(int32Data.count, "int32_data")
            return (type, int32Data.map { UInt8(truncatingIfNeeded: $0) })
        case .int16, .uint16, .fp16, .bf16:
            try check(int32Data.count, "int32_data")
            return (type, int32Data.map { UInt16(truncatingIfNeeded: $0) }.withUnsafeBytes { [UInt8]($0) })
        case .bytes:
            throw fail("STRING initializers are not supported")
        }
    }

    private func readExternal(
        byteCount: Int, modelDirectory: String, fail: (String) -> RuntimeError
    ) throws(RuntimeError) -> [UInt8] {
        var location: String?
        var offset = 0
        var length: Int?
        for entry in externalData {
            switch entry.key {
            case "location": location = entry.value
            case "offset":
                guard let value = Int(entry.value), value >= 0 else { throw fail("external offset '\(entry.value)' is not a byte offset") }
                offset = value
            case "length":
                guard let value = Int(entry.value), value >= 0 else { throw fail("external length '\(entry.value)' is not a byte count") }
                length = value
            default: break  // "checksum" and future keys are informational
            }
        }
        guard let location, !location.isEmpty else { throw fail("external data has no 'location'") }
        let base = URL(fileURLWithPath: modelDirectory).standardizedFileURL.resolvingSymlinksInPath()
        let target = base.appendingPathComponent(location).standardizedFileURL.resolvingSymlinksInPath()
        guard !location.hasPrefix("/"), target.path.hasPrefix(base.path.hasSuffix("/") ? base.path : base.path + "/") else {
            throw fail("external data location '\(location)' is outside the model's folder \(modelDirectory)")
        }
        if let length, length != byteCount {
            throw fail("external data length \(length) does not match the \(byteCount) bytes the shape \(dims) needs")
        }
        guard let handle = FileHandle(forReadingAtPath: target.path) else {
            throw fail("cannot open external data file '\(location)' in \(modelDirectory)")
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: byteCount) ?? Data()
            guard data.count == byteCount else {
                throw fail("external data file '\(location)' holds \(data.count) bytes at offset \(offset), need \(byteCount)")
            }
            return [UInt8](data)
        } catch let error as RuntimeError {
            throw error
        } catch {
            throw fail("cannot read external data file '\(location)': \(error)")
        }
    }
}
