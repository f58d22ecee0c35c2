import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore

/// `fulcrum infer`: one prediction through any open inference protocol endpoint, with inputs given
/// as `NAME=v1,v2,...` (datatype and shape come from the model's metadata; the batch dimension is
/// 1), printing the outputs and Fulcrum's timing breakdown.
public enum Infer {
    /// Builds the request, sends it, and returns the text to print.
    public static func run(
        url: HostPort, model: String, version: String, inputs: [String], timeout: Duration, edgeCA: String? = nil
    ) async throws -> String {
        try await withGRPCClient(url, edge: edgeCA.map { .caFile($0) }) { client in
            let service = Inference_GRPCInferenceService.Client(wrapping: client)
            var options = CallOptions.defaults
            options.timeout = timeout
            var metadataRequest = Inference_ModelMetadataRequest()
            metadataRequest.name = model
            metadataRequest.version = version
            let metadata = try await service.modelMetadata(metadataRequest, options: options)
            let request = try makeRequest(metadata: metadata, version: version, inputs: inputs)
            let response = try await service.modelInfer(request, options: options)
            return format(response)
        }
    }

    /// The request for `inputs` (`NAME=v1,v2,...`) against the model's metadata.
    public static func makeRequest(
        metadata: Inference_ModelMetadataResponse, version: String, inputs: [String]
    ) throws -> Inference_ModelInferRequest {
        var values: [String: [String]] = [:]
        for item in inputs {
            guard let equals = item.firstIndex(of: "=") else {
                throw OperatorError("--input '\(item)': expected NAME=v1,v2,...")
            }
            let name = String(item[..<equals])
            values[name] = item[item.index(after: equals)...].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        var request = Inference_ModelInferRequest()
        request.modelName = metadata.name
        request.modelVersion = version
        for tensor in metadata.inputs {
            guard let given = values.removeValue(forKey: tensor.name) else {
                throw OperatorError("missing --input \(tensor.name)=... (\(tensor.datatype) \(tensor.shape))")
            }
            let shape = try resolveShape(tensor.shape.map { Int($0) }, count: given.count, name: tensor.name)
            var input = Inference_ModelInferRequest.InferInputTensor()
            input.name = tensor.name
            input.datatype = tensor.datatype
            input.shape = shape.map(Int64.init)
            request.inputs.append(input)
            request.rawInputContents.append(try encode(given, datatype: tensor.datatype, name: tensor.name))
        }
        if let extra = values.keys.sorted().first {
            throw OperatorError("model '\(metadata.name)' has no input '\(extra)'; its inputs are \(metadata.inputs.map(\.name).joined(separator: ", "))")
        }
        return request
    }

    /// Replaces a leading -1 (batch) with 1 and one other -1 with whatever makes `count` values fit.
    static func resolveShape(_ shape: [Int], count: Int, name: String) throws -> [Int] {
        var shape = shape
        if let first = shape.first, first == -1, shape.count > 1 { shape[0] = 1 }
        let known = shape.filter { $0 >= 0 }.reduce(1, *)
        let unknown = shape.indices.filter { shape[$0] < 0 }
        if unknown.count == 1, known > 0, count % known == 0 {
            shape[unknown[0]] = count / known
        } else if !unknown.isEmpty {
            throw OperatorError("input '\(name)': cannot infer its shape \(shape) from \(count) values")
        }
        guard shape.reduce(1, *) == count else {
            throw OperatorError("input '\(name)': \(count) values given, shape \(shape) needs \(shape.reduce(1, *))")
        }
        return shape
    }

    static func encode(_ values: [String], datatype: String, name: String) throws -> Data {
        func parse<T>(_ convert: (String) -> T?) throws -> [T] {
            try values.map { text in
                guard let value = convert(text) else { throw OperatorError("input '\(name)': '\(text)' is not a \(datatype) value") }
                return value
            }
        }
        switch datatype {
        case "FP32": return try parse(Float.init).withUnsafeBytes { Data($0) }
        case "FP64": return try parse(Double.init).withUnsafeBytes { Data($0) }
        case "INT8": return try parse(Int8.init).withUnsafeBytes { Data($0) }
        case "INT16": return try parse(Int16.init).withUnsafeBytes { Data($0) }
        case "INT32": return try parse(Int32.init).withUnsafeBytes { Data($0) }
        case "INT64": return try parse(Int64.init).withUnsafeBytes { Data($0) }
        case "UINT8": return try parse(UInt8.init).withUnsafeBytes { Data($0) }
        case "UINT16": return try parse(UInt16.init).withUnsafeBytes { Data($0) }
        case "UINT32": return try parse(UInt32.init).withUnsafeBytes { Data($0) }
        case "UINT64": return try parse(UInt64.init).withUnsafeBytes { Data($0) }
        case "BOOL": return Data(try parse { ["true", "1"].contains($0.lowercased()) ? 1 : ["false", "0"].contains($0.lowercased()) ? 0 : nil } as [UInt8])
        case "BYTES":
            var data = Data()
            for value in values {
                withUnsafeBytes(of: UInt32(value.utf8.count).littleEndian) { data.append(contentsOf: $0) }
                data.append(contentsOf: Array(value.utf8))
            }
            return data
        default: throw OperatorError("input '\(name)': \(datatype) cannot be given on the command line")
        }
    }

    /// The outputs and timing as printed by `fulcrum infer`.
    public static func format(_ response: Inference_ModelInferResponse) -> String {
        var lines = ["model \(response.modelName) version \(response.modelVersion)"]
        for (index, output) in response.outputs.enumerated() {
            let raw = index < response.rawOutputContents.count ? response.rawOutputContents[index] : Data()
            let shape = "[" + output.shape.map(String.init).joined(separator: ",") + "]"
            lines.append("\(output.name) \(output.datatype) \(shape): \(decode(raw, datatype: output.datatype).joined(separator: ", "))")
        }
        func us(_ key: String) -> String {
            response.parameters[key]?.integerValue.map { "\($0) µs" } ?? "-"
        }
        if response.parameters[ResponseParameters.compute] != nil {
            let worker: String
            if case .stringParam(let id)? = response.parameters[ResponseParameters.worker]?.parameterChoice { worker = id } else { worker = "-" }
            lines.append(
                "timing: frontend \(us(ResponseParameters.frontend)), network \(us(ResponseParameters.network)), queue \(us(ResponseParameters.queue)), compute \(us(ResponseParameters.compute)) (worker \(worker))"
            )
        }
        // A pipeline's answer: each step's round trip, in step order.
        let steps = response.parameters.keys.compactMap { key -> (Int, String)? in
            guard key.hasPrefix("fulcrum.step."), key.hasSuffix("_us") else { return nil }
            let rest = key.dropFirst("fulcrum.step.".count).dropLast(3)
            guard let dot = rest.firstIndex(of: "."), let index = Int(rest[..<dot]) else { return nil }
            return (index, "step \(index) \(rest[rest.index(after: dot)...]) \(us(key))")
        }.sorted { $0.0 < $1.0 }.map(\.1)
        if !steps.isEmpty { lines.append("steps: " + steps.joined(separator: ", ")) }
        return lines.joined(separator: "\n")
    }

    static func decode(_ data: Data, datatype: String) -> [String] {
        func values<T>(_ type: T.Type) -> [T] {
            data.withUnsafeBytes { raw in
                (0..<(raw.count / MemoryLayout<T>.size)).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
            }
        }
        switch datatype {
        case "FP32": return values(Float.self).map { "\($0)" }
        case "FP64": return values(Double.self).map { "\($0)" }
        case "INT8": return values(Int8.self).map { "\($0)" }
        case "INT16": return values(Int16.self).map { "\($0)" }
        case "INT32": return values(Int32.self).map { "\($0)" }
        case "INT64": return values(Int64.self).map { "\($0)" }
        case "UINT8": return values(UInt8.self).map { "\($0)" }
        case "UINT16": return values(UInt16.self).map { "\($0)" }
        case "UINT32": return values(UInt32.self).map { "\($0)" }
        case "UINT64": return values(UInt64.self).map { "\($0)" }
        case "BOOL": return data.map { $0 != 0 ? "true" : "false" }
        case "BYTES":
            // Each element: a 4-byte little-endian length, then its bytes; shown quoted when UTF-8.
            var elements: [String] = []
            var offset = data.startIndex
            while data.endIndex - offset >= 4 {
                let length = data[offset..<(offset + 4)].reversed().reduce(0) { $0 << 8 | Int($1) }
                offset += 4
                guard length <= data.endIndex - offset else { return ["<\(data.count) bytes, malformed>"] }
                let element = data[offset..<(offset + length)]
                offset += length
                if let text = String(data: element, encoding: .utf8) {
                    elements.append("\"\(text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"")
                } else {
                    elements.append("<\(length) bytes>")
                }
            }
            return offset == data.endIndex ? elements : ["<\(data.count) bytes, malformed>"]
        default: return ["<\(data.count) bytes>"]
        }
    }
}
