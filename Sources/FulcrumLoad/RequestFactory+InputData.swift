import FulcrumProtocol
import Foundation

/// Requests read from a file in perf_analyzer's `--input-data` JSON format, so a Triton user's
/// existing input files drive `fulcrum loadtest --input-data FILE` unchanged:
///
/// ```json
/// {"data": [
///   {"INPUT0": [1, 2, 3, 4], "INPUT1": {"content": [1, 1, 1, 1], "shape": [4]}},
///   {"INPUT0": {"b64": "AQAAAAIAAAA=", "shape": [2]}, "INPUT1": [5, 6]}
/// ]}
/// ```
///
/// Each entry of `data` is one request; the requests are sent in turn, round-robin. An input is
/// a flat array of values (numbers, booleans, or strings for BYTES), or an object with `content`
/// (that array) or `b64` (the raw little-endian bytes, base64) and an optional `shape`. Without
/// `shape` the model's shape is used, which must then be fixed apart from the batch dimension.
/// The shape (given or not) leaves out the batch dimension of a model that batches (a leading
/// -1): the sample is repeated `batch` times (`--batch`).
extension RequestFactory {
    /// The requests of `json` (the file's contents) for the model in `metadata`.
    public static func requests(
        inputData json: Data, metadata: Inference_ModelMetadataResponse, version: String, batch: Int
    ) throws -> [Inference_ModelInferRequest] {
        guard let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any], let entries = root["data"] as? [Any] else {
            throw LoadError("input data: expected a JSON object with a \"data\" array (perf_analyzer's --input-data format)")
        }
        guard !entries.isEmpty else { throw LoadError("input data: \"data\" is empty") }
        return try entries.enumerated().map { index, entry in
            guard let entry = entry as? [String: Any] else {
                throw LoadError("input data: entry \(index) is not an object of input names")
            }
            if let unknown = entry.keys.sorted().first(where: { name in !metadata.inputs.contains { $0.name == name } }) {
                throw LoadError("input data: entry \(index) names '\(unknown)', which is not an input of model '\(metadata.name)' (\(metadata.inputs.map(\.name).joined(separator: ", ")))")
            }
            var request = Inference_ModelInferRequest()
            request.modelName = metadata.name
            request.modelVersion = version
            for tensor in metadata.inputs {
                guard let value = entry[tensor.name] else {
                    throw LoadError("input data: entry \(index) has no input '\(tensor.name)'")
                }
                let (sample, shape) = try sampleBytes(value, tensor: tensor, where: "entry \(index), input '\(tensor.name)'")
                let batched = tensor.shape.first == -1
                var input = Inference_ModelInferRequest.InferInputTensor()
                input.name = tensor.name
                input.datatype = tensor.datatype
                input.shape = batched ? [Int64(batch)] + shape : shape
                request.inputs.append(input)
                var data = Data()
                data.reserveCapacity(sample.count * (batched ? batch : 1))
                for _ in 0..<(batched ? batch : 1) { data.append(sample) }
                request.rawInputContents.append(data)
            }
            return request
        }
    }

    /// One sample's raw bytes and its shape (without the batch dimension).
    private static func sampleBytes(
        _ value: Any, tensor: Inference_ModelMetadataResponse.TensorMetadata, where place: String
    ) throws -> (Data, [Int64]) {
        let modelShape = tensor.shape.first == -1 ? Array(tensor.shape.dropFirst()) : tensor.shape
        var content: [Any]? = nil
        var raw: Data? = nil
        var shape: [Int64]? = nil
        if let array = value as? [Any] {
            content = array
        } else if let object = value as? [String: Any] {
            if let given = object["shape"] {
                guard let dims = given as? [Any], let parsed = Optional(dims.compactMap { ($0 as? NSNumber)?.int64Value }),
                    parsed.count == dims.count, parsed.allSatisfy({ $0 >= 0 })
                else { throw LoadError("input data: \(place): \"shape\" must be an array of non-negative integers") }
                shape = parsed
            }
            if let b64 = object["b64"] as? String {
                guard let decoded = Data(base64Encoded: b64) else { throw LoadError("input data: \(place): \"b64\" is not base64") }
                raw = decoded
            } else if let array = object["content"] as? [Any] {
                content = array
            } else {
                throw LoadError("input data: \(place): expected \"content\" (an array) or \"b64\" (a string)")
            }
        } else {
            throw LoadError("input data: \(place): expected an array of values or an object with \"content\" or \"b64\"")
        }
        let finalShape: [Int64]
        if let shape {
            guard shape.count == modelShape.count, zip(shape, modelShape).allSatisfy({ $1 < 0 || $0 == $1 }) else {
                throw LoadError("input data: \(place): shape \(shape) does not fit the model's \(modelShape)")
            }
            finalShape = shape
        } else {
            guard modelShape.allSatisfy({ $0 >= 0 }) else {
                throw LoadError("input data: \(place): the model's shape \(modelShape) has a variable dimension; give \"shape\"")
            }
            finalShape = modelShape
        }
        let elements = Int(finalShape.reduce(1, *))
        if let raw {
            if tensor.datatype != "BYTES", let size = elementSize(tensor.datatype), raw.count != elements * size {
                throw LoadError("input data: \(place): \(raw.count) bytes, but shape \(finalShape) of \(tensor.datatype) needs \(elements * size)")
            }
            return (raw, finalShape)
        }
        let values = content ?? []
        guard values.count == elements else {
            throw LoadError("input data: \(place): \(values.count) values, but shape \(finalShape) needs \(elements)")
        }
        return (try encode(values, datatype: tensor.datatype, where: place), finalShape)
    }

    private static func elementSize(_ datatype: String) -> Int? {
        switch datatype {
        case "BOOL", "INT8", "UINT8": 1
        case "INT16", "UINT16", "FP16", "BF16": 2
        case "INT32", "UINT32", "FP32": 4
        case "INT64", "UINT64", "FP64": 8
        default: nil
        }
    }

    /// JSON values as raw little-endian bytes of `datatype`.
    private static func encode(_ values: [Any], datatype: String, where place: String) throws -> Data {
        func numbers() throws -> [NSNumber] {
            try values.enumerated().map { i, v in
                guard let n = v as? NSNumber else { throw LoadError("input data: \(place): value \(i) is not a number") }
                return n
            }
        }
        func pack<T>(_ items: [T]) -> Data { items.withUnsafeBytes { Data($0) } }
        switch datatype {
        case "FP32": return pack(try numbers().map(\.floatValue))
        case "FP64": return pack(try numbers().map(\.doubleValue))
        case "INT8": return pack(try numbers().map(\.int8Value))
        case "INT16": return pack(try numbers().map(\.int16Value))
        case "INT32": return pack(try numbers().map(\.int32Value))
        case "INT64": return pack(try numbers().map(\.int64Value))
        case "UINT8": return pack(try numbers().map(\.uint8Value))
        case "UINT16": return pack(try numbers().map(\.uint16Value))
        case "UINT32": return pack(try numbers().map(\.uint32Value))
        case "UINT64": return pack(try numbers().map(\.uint64Value))
        case "BOOL": return pack(try numbers().map { UInt8($0.boolValue ? 1 : 0) })
        case "BYTES":
            var data = Data()
            for (i, v) in values.enumerated() {
                guard let text = v as? String else { throw LoadError("input data: \(place): value \(i) is not a string") }
                let bytes = Array(text.utf8)
                withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { data.append(contentsOf: $0) }
                data.append(contentsOf: bytes)
            }
            return data
        default:
            throw LoadError("input data: \(place): datatype \(datatype) cannot be given as JSON values; use \"b64\"")
        }
    }
}
