import FulcrumProtocol
import FulcrumSchema
import Foundation

extension Fulcrum_Log_V1_PredictionRecord {
    /// The record as a JSON object for `fulcrum log show`: ids, time, tenant, model, version and
    /// hash, status, latency, the timing breakdown, and each input and output tensor with its
    /// values (numbers; BYTES as strings, or `{"base64": ...}` when not UTF-8; half floats as
    /// `{"base64": ...}`).
    public var jsonObject: [String: Any] {
        var inputs: [[String: Any]] = []
        for (index, input) in request.inputs.enumerated() {
            var data: Data? = index < request.rawInputContents.count ? request.rawInputContents[index] : nil
            if data == nil, let dataType = DataType(rawValue: input.datatype) {
                data = TensorCodec.typedBytes(input.contents, dataType: dataType).map { Data($0) }
            }
            inputs.append(Self.tensorJSON(name: input.name, datatype: input.datatype, shape: input.shape, data: data))
        }
        var outputs: [[String: Any]] = []
        for (index, output) in response.outputs.enumerated() {
            let data = index < response.rawOutputContents.count ? response.rawOutputContents[index] : nil
            outputs.append(Self.tensorJSON(name: output.name, datatype: output.datatype, shape: output.shape, data: data))
        }
        var timing: [String: Any] = [:]
        for (key, value) in response.parameters where key.hasPrefix("fulcrum.") && key.hasSuffix("_us") {
            if case .int64Param(let micros)? = value.parameterChoice { timing[String(key.dropFirst("fulcrum.".count))] = Int(micros) }
        }
        var parameters: [String: Any] = [:]
        for (key, value) in request.parameters {
            switch value.parameterChoice {
            case .stringParam(let v)?: parameters[key] = v
            case .int64Param(let v)?: parameters[key] = Int(v)
            case .uint64Param(let v)?: parameters[key] = UInt(v)
            case .boolParam(let v)?: parameters[key] = v
            case .doubleParam(let v)?: parameters[key] = v
            default: break
            }
        }
        let time = Date(timeIntervalSince1970: Double(receivedUnixUs) / 1_000_000)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return [
            "request_id": requestID, "trace_id": traceID, "time": formatter.string(from: time), "received_unix_us": Int(receivedUnixUs),
            "tenant": tenant, "model": model, "version": modelVersion, "model_hash": modelHash, "frontend": frontendID,
            "status": ["code": Int(statusCode), "message": statusMessage] as [String: Any], "latency_us": Int(latencyUs), "replay": replay,
            "timing": timing, "parameters": parameters, "inputs": inputs, "outputs": outputs,
        ]
    }

    static func tensorJSON(name: String, datatype: String, shape: [Int64], data: Data?) -> [String: Any] {
        var object: [String: Any] = ["name": name, "datatype": datatype, "shape": shape.map { Int($0) }]
        guard let data, let dataType = DataType(rawValue: datatype) else {
            object["data"] = NSNull()
            return object
        }
        if let numbers = AnswerComparison.numbers(data, dataType) {
            object["data"] = numbers.map { value -> Any in
                value.isFinite ? (value == value.rounded() && abs(value) < 9e15 && dataType != .fp32 && dataType != .fp64 ? Int(value) as Any : value as Any) : String(value)
            }
        } else if dataType == .bytes {
            var elements: [Any] = []
            var offset = 0
            let bytes = [UInt8](data)
            while bytes.count - offset >= 4 {
                let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
                offset += 4
                guard length <= bytes.count - offset else { break }
                let element = Array(bytes[offset..<(offset + length)])
                offset += length
                if let text = String(validating: element, as: UTF8.self) {
                    elements.append(text)
                } else {
                    elements.append(["base64": Data(element).base64EncodedString()])
                }
            }
            object["data"] = elements
        } else {
            object["data"] = ["base64": data.base64EncodedString()]
        }
        return object
    }
}
