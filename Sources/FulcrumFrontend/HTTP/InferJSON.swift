import FulcrumProtocol
import Foundation

/// Translates the HTTP/REST form of ModelInfer to and from the protobuf messages the frontend
/// already serves over gRPC, so both transports reach `FrontendInferenceService.infer` with the
/// same request and pass the same validation.
///
/// Requests: a JSON header (`{"id"?, "parameters"?, "inputs": [...], "outputs"?: [...]}`)
/// optionally followed by raw tensors (the binary tensor extension: the header's length is in
/// `Inference-Header-Content-Length`, each binary input carries `parameters.binary_data_size`,
/// tensors follow in input order). Every input becomes one `raw_input_contents` entry: JSON data
/// (flat or nested arrays) is packed into little-endian bytes of its datatype.
///
/// Responses: JSON outputs carry `data` as a flat array; outputs asked for in binary (per output
/// `parameters.binary_data`, or `binary_data_output` for the whole request) carry
/// `parameters.binary_data_size` and their raw bytes follow the JSON header.
///
/// Pure functions over bytes: no I/O, tested without a server.
enum InferJSON {
    /// A decoded HTTP infer request: the protobuf request plus how the client wants outputs.
    struct DecodedRequest: Sendable {
        /// The request as the gRPC path would have received it (raw contents for every input).
        var request: Inference_ModelInferRequest
        /// Outputs whose `binary_data` parameter was given, with its value.
        var binaryPerOutput: [String: Bool] = [:]
        /// The request-wide `binary_data_output` parameter (default false).
        var binaryByDefault = false

        /// Whether output `name` goes back as raw bytes after the JSON header.
        func wantsBinary(_ name: String) -> Bool {
            binaryPerOutput[name] ?? binaryByDefault
        }
    }

    /// An encoded HTTP infer response.
    struct EncodedResponse: Sendable {
        /// The JSON header, followed by the binary outputs' bytes if any.
        var body: [UInt8]
        /// The JSON header's length when binary outputs follow it (the value of the
        /// `Inference-Header-Content-Length` header); nil for a JSON-only body.
        var headerLength: Int?
    }

    /// Request parameters that belong to the HTTP transport and are not forwarded.
    static let binaryDataOutput = "binary_data_output"
    /// Input and output parameter giving the size of a tensor's raw bytes in the body.
    static let binaryDataSize = "binary_data_size"
    /// Requested-output parameter asking for raw bytes.
    static let binaryData = "binary_data"

    // MARK: Requests

    /// Decodes `body` (the whole HTTP body) into a ModelInfer request for `model` at `version`.
    /// `headerLength` is the `Inference-Header-Content-Length` header, if any.
    static func decodeRequest(
        _ body: [UInt8],
        headerLength: Int?,
        model: String,
        version: String
    ) throws(HTTPFailure) -> DecodedRequest {
        let jsonEnd: Int
        if let headerLength {
            guard headerLength >= 0, headerLength <= body.count else {
                throw .badRequest("Inference-Header-Content-Length is \(headerLength) but the body has only \(body.count) bytes")
            }
            jsonEnd = headerLength
        } else {
            jsonEnd = body.count
        }
        let header: JSONValue
        do {
            header = try JSONParser.parse(Array(body[0..<jsonEnd]))
        } catch {
            throw .badRequest("the request is not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard case .object = header else {
            throw .badRequest("the request must be a JSON object, not \(header.kind)")
        }

        var decoded = DecodedRequest(request: Inference_ModelInferRequest())
        decoded.request.modelName = model
        decoded.request.modelVersion = version
        if let id = header["id"] {
            guard case .string(let text) = id else { throw .badRequest("'id' must be a string, not \(id.kind)") }
            decoded.request.id = text
        }
        if let parameters = header["parameters"] {
            var converted = try Self.parameters(parameters, of: "the request")
            if let flag = converted.removeValue(forKey: binaryDataOutput) {
                guard case .boolParam(let value) = flag.parameterChoice else {
                    throw .badRequest("parameter '\(binaryDataOutput)' must be a boolean")
                }
                decoded.binaryByDefault = value
            }
            decoded.request.parameters = converted
        }

        guard case .array(let inputs) = header["inputs"] ?? .null else {
            throw .badRequest("the request needs an 'inputs' array")
        }
        var offset = jsonEnd
        for (position, input) in inputs.enumerated() {
            guard case .object = input else { throw .badRequest("inputs[\(position)] must be an object, not \(input.kind)") }
            guard case .string(let name) = input["name"] ?? .null else { throw .badRequest("inputs[\(position)] needs a 'name' string") }
            guard case .string(let datatype) = input["datatype"] ?? .null else { throw .badRequest("input '\(name)' needs a 'datatype' string") }
            guard case .array(let dims) = input["shape"] ?? .null else { throw .badRequest("input '\(name)' needs a 'shape' array") }
            var wire = Inference_ModelInferRequest.InferInputTensor()
            wire.name = name
            wire.datatype = datatype
            for dim in dims {
                guard let value = dim.int64 else { throw .badRequest("input '\(name)': shape must hold integers") }
                wire.shape.append(value)
            }
            var binarySize: Int? = nil
            if let parameters = input["parameters"] {
                var converted = try Self.parameters(parameters, of: "input '\(name)'")
                if let size = converted.removeValue(forKey: binaryDataSize) {
                    guard let value = size.integerValue, value >= 0 else {
                        throw .badRequest("input '\(name)': '\(binaryDataSize)' must be a non-negative integer")
                    }
                    binarySize = Int(value)
                }
                wire.parameters = converted
            }
            let raw: [UInt8]
            if let binarySize {
                guard input["data"] == nil else {
                    throw .badRequest("input '\(name)' has both 'data' and '\(binaryDataSize)'; send one")
                }
                guard headerLength != nil else {
                    throw .badRequest("input '\(name)' has '\(binaryDataSize)' but the request has no Inference-Header-Content-Length header")
                }
                guard binarySize <= body.count - offset else {
                    throw .badRequest("input '\(name)': '\(binaryDataSize)' is \(binarySize) but only \(body.count - offset) bytes of binary data remain in the body")
                }
                raw = Array(body[offset..<(offset + binarySize)])
                offset += binarySize
            } else {
                guard let data = input["data"] else {
                    throw .badRequest("input '\(name)' has neither 'data' nor '\(binaryDataSize)'")
                }
                raw = try pack(data, datatype: datatype, input: name)
            }
            decoded.request.inputs.append(wire)
            decoded.request.rawInputContents.append(Data(raw))
        }
        guard offset == body.count else {
            throw .badRequest("\(body.count - offset) bytes of binary data follow the JSON header that no input's '\(binaryDataSize)' accounts for")
        }

        if let outputs = header["outputs"] {
            guard case .array(let items) = outputs else { throw .badRequest("'outputs' must be an array, not \(outputs.kind)") }
            for (position, output) in items.enumerated() {
                guard case .object = output else { throw .badRequest("outputs[\(position)] must be an object, not \(output.kind)") }
                guard case .string(let name) = output["name"] ?? .null else { throw .badRequest("outputs[\(position)] needs a 'name' string") }
                var wire = Inference_ModelInferRequest.InferRequestedOutputTensor()
                wire.name = name
                if let parameters = output["parameters"] {
                    var converted = try Self.parameters(parameters, of: "output '\(name)'")
                    if let flag = converted.removeValue(forKey: binaryData) {
                        guard case .boolParam(let value) = flag.parameterChoice else {
                            throw .badRequest("output '\(name)': '\(binaryData)' must be a boolean")
                        }
                        decoded.binaryPerOutput[name] = value
                    }
                    wire.parameters = converted
                }
                decoded.request.outputs.append(wire)
            }
        }
        return decoded
    }

    /// Converts a JSON `parameters` object into protocol parameters: booleans, integers (int64,
    /// or uint64 above Int64.max), other numbers (double) and strings.
    static func parameters(_ json: JSONValue, of owner: String) throws(HTTPFailure) -> [String: Inference_InferParameter] {
        guard case .object(let members) = json else {
            throw .badRequest("'parameters' of \(owner) must be an object, not \(json.kind)")
        }
        var result: [String: Inference_InferParameter] = [:]
        for (key, value) in members {
            var parameter = Inference_InferParameter()
            switch value {
            case .bool(let v): parameter.boolParam = v
            case .int(let v): parameter.int64Param = v
            case .uint(let v): parameter.uint64Param = v
            case .double(let v): parameter.doubleParam = v
            case .float(let v): parameter.doubleParam = Double(v)
            case .string(let v): parameter.stringParam = v
            default: throw .badRequest("parameter '\(key)' of \(owner) must be a boolean, number or string, not \(value.kind)")
            }
            result[key] = parameter
        }
        return result
    }

    /// Packs JSON tensor data (flat or nested arrays, or a single value) into the little-endian
    /// raw bytes of `datatype`. BYTES elements are strings, each written as a 4-byte length and
    /// its UTF-8 bytes. FP16 and BF16 have no JSON form here: send them with the binary extension.
    static func pack(_ data: JSONValue, datatype: String, input: String) throws(HTTPFailure) -> [UInt8] {
        var elements: [JSONValue] = []
        flatten(data, into: &elements)
        var out: [UInt8] = []
        func element(_ index: Int, _ value: JSONValue) -> HTTPFailure {
            .badRequest("input '\(input)': data[\(index)] is \(value.kind) \(String(decoding: value.serialized.prefix(40), as: UTF8.self)), not a valid \(datatype) value")
        }
        func integers<T: FixedWidthInteger>(_ type: T.Type) throws(HTTPFailure) {
            out.reserveCapacity(elements.count * MemoryLayout<T>.size)
            for (index, value) in elements.enumerated() {
                let converted: T?
                switch value {
                case .int(let v): converted = T(exactly: v)
                case .uint(let v): converted = T(exactly: v)
                case .double(let v): converted = T(exactly: v)
                default: converted = nil
                }
                guard let converted else { throw element(index, value) }
                withUnsafeBytes(of: converted.littleEndian) { out.append(contentsOf: $0) }
            }
        }
        switch datatype {
        case "BOOL":
            for (index, value) in elements.enumerated() {
                switch value {
                case .bool(let v): out.append(v ? 1 : 0)
                case .int(0): out.append(0)
                case .int(1): out.append(1)
                default: throw element(index, value)
                }
            }
        case "INT8": try integers(Int8.self)
        case "INT16": try integers(Int16.self)
        case "INT32": try integers(Int32.self)
        case "INT64": try integers(Int64.self)
        case "UINT8": try integers(UInt8.self)
        case "UINT16": try integers(UInt16.self)
        case "UINT32": try integers(UInt32.self)
        case "UINT64": try integers(UInt64.self)
        case "FP32":
            out.reserveCapacity(elements.count * 4)
            for (index, value) in elements.enumerated() {
                guard let number = value.number else { throw element(index, value) }
                withUnsafeBytes(of: Float(number).bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        case "FP64":
            out.reserveCapacity(elements.count * 8)
            for (index, value) in elements.enumerated() {
                guard let number = value.number else { throw element(index, value) }
                withUnsafeBytes(of: number.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            }
        case "BYTES":
            for (index, value) in elements.enumerated() {
                guard case .string(let text) = value else { throw element(index, value) }
                let bytes = Array(text.utf8)
                withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: bytes)
            }
        case "FP16", "BF16":
            throw .badRequest("input '\(input)': \(datatype) data cannot be sent as JSON; send it with the binary tensor extension ('\(binaryDataSize)')")
        default:
            throw .badRequest("input '\(input)': '\(datatype)' is not a datatype")
        }
        return out
    }

    private static func flatten(_ value: JSONValue, into elements: inout [JSONValue]) {
        if case .array(let items) = value {
            for item in items { flatten(item, into: &elements) }
        } else {
            elements.append(value)
        }
    }

    // MARK: Responses

    /// Encodes a ModelInfer response, putting the outputs `decoded` asks for in binary after
    /// the JSON header and the others in `data`. Expects `raw_output_contents` (what workers send).
    static func encodeResponse(_ response: Inference_ModelInferResponse, for decoded: DecodedRequest) throws(HTTPFailure) -> EncodedResponse {
        guard response.rawOutputContents.count == response.outputs.count else {
            throw HTTPFailure(status: .internalServerError, message: "the worker answered without raw output contents")
        }
        var header: [String: JSONValue] = [
            "model_name": .string(response.modelName),
            "model_version": .string(response.modelVersion),
        ]
        if !response.id.isEmpty { header["id"] = .string(response.id) }
        if !response.parameters.isEmpty { header["parameters"] = json(response.parameters) }
        var binary: [UInt8] = []
        var outputs: [JSONValue] = []
        for (output, raw) in zip(response.outputs, response.rawOutputContents) {
            var item: [String: JSONValue] = [
                "name": .string(output.name),
                "datatype": .string(output.datatype),
                "shape": .array(output.shape.map { .int($0) }),
            ]
            var parameters = output.parameters.mapValues(json)
            if decoded.wantsBinary(output.name) {
                parameters[binaryDataSize] = .int(Int64(raw.count))
                binary.append(contentsOf: raw)
            } else {
                item["data"] = try unpack(raw, datatype: output.datatype, output: output.name)
            }
            if !parameters.isEmpty { item["parameters"] = .object(parameters) }
            outputs.append(.object(item))
        }
        header["outputs"] = .array(outputs)
        var body = JSONValue.object(header).serialized
        let headerLength = body.count
        let anyBinary = response.outputs.contains { decoded.wantsBinary($0.name) }
        body.append(contentsOf: binary)
        return EncodedResponse(body: body, headerLength: anyBinary ? headerLength : nil)
    }

    /// Reads the little-endian raw bytes of `datatype` as a flat JSON array.
    static func unpack(_ raw: Data, datatype: String, output: String) throws(HTTPFailure) -> JSONValue {
        let bytes = [UInt8](raw)
        func values<T: FixedWidthInteger>(_ type: T.Type, _ make: (T) -> JSONValue) throws(HTTPFailure) -> JSONValue {
            let size = MemoryLayout<T>.size
            guard bytes.count % size == 0 else { throw truncated() }
            return .array(bytes.withUnsafeBytes { buffer in
                stride(from: 0, to: bytes.count, by: size).map { make(T(littleEndian: buffer.loadUnaligned(fromByteOffset: $0, as: T.self))) }
            })
        }
        func truncated() -> HTTPFailure {
            HTTPFailure(status: .internalServerError, message: "output '\(output)': \(bytes.count) raw bytes are not a whole number of \(datatype) values")
        }
        switch datatype {
        case "BOOL": return .array(bytes.map { .bool($0 != 0) })
        case "INT8": return try values(Int8.self) { .int(Int64($0)) }
        case "INT16": return try values(Int16.self) { .int(Int64($0)) }
        case "INT32": return try values(Int32.self) { .int(Int64($0)) }
        case "INT64": return try values(Int64.self) { .int($0) }
        case "UINT8": return try values(UInt8.self) { .int(Int64($0)) }
        case "UINT16": return try values(UInt16.self) { .int(Int64($0)) }
        case "UINT32": return try values(UInt32.self) { .int(Int64($0)) }
        case "UINT64": return try values(UInt64.self) { .uint($0) }
        case "FP16": return try values(UInt16.self) { .float(Float(Float16(bitPattern: $0))) }
        case "BF16": return try values(UInt16.self) { .float(Float(bitPattern: UInt32($0) << 16)) }
        case "FP32": return try values(UInt32.self) { .float(Float(bitPattern: $0)) }
        case "FP64": return try values(UInt64.self) { .double(Double(bitPattern: $0)) }
        case "BYTES":
            var items: [JSONValue] = []
            var offset = 0
            while offset < bytes.count {
                guard offset + 4 <= bytes.count else { throw truncated() }
                let length = Int(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24)
                offset += 4
                guard length <= bytes.count - offset else { throw truncated() }
                items.append(.string(String(decoding: bytes[offset..<(offset + length)], as: UTF8.self)))
                offset += length
            }
            return .array(items)
        default:
            throw HTTPFailure(status: .internalServerError, message: "output '\(output)': unknown datatype '\(datatype)'")
        }
    }

    /// Protocol parameters as a JSON object (int64 and uint64 as numbers, strings as strings).
    static func json(_ parameters: [String: Inference_InferParameter]) -> JSONValue {
        .object(parameters.mapValues(json))
    }

    /// One protocol parameter as a JSON value.
    static func json(_ parameter: Inference_InferParameter) -> JSONValue {
        switch parameter.parameterChoice {
        case .boolParam(let v): .bool(v)
        case .int64Param(let v): .int(v)
        case .uint64Param(let v): Int64(exactly: v).map(JSONValue.int) ?? .uint(v)
        case .doubleParam(let v): .double(v)
        case .stringParam(let v): .string(v)
        case nil: .null
        }
    }
}
