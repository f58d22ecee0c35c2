import Foundation
import FulcrumProtocol
import FulcrumSchema
import GRPCCore

/// Converts between the wire's tensors (`raw_input_contents` / typed `contents`) and runtime
/// `Tensor`s. Call `InferRequestValidator.validate` first: decoding assumes a valid request.
public enum TensorCodec {
    /// Decodes every input of a validated request, keyed by input name.
    public static func decodeInputs(_ request: Inference_ModelInferRequest) throws(RPCError) -> [String: Tensor] {
        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(request.inputs.count)
        for (index, input) in request.inputs.enumerated() {
            guard let dataType = DataType(rawValue: input.datatype) else {
                throw RPCError(code: .invalidArgument, message: "input '\(input.name)': '\(input.datatype)' is not a datatype")
            }
            let shape = input.shape.map { Int($0) }
            let bytes: [UInt8]
            if !request.rawInputContents.isEmpty {
                bytes = [UInt8](request.rawInputContents[index])
            } else {
                guard let typed = typedBytes(input.contents, dataType: dataType) else {
                    throw RPCError(code: .invalidArgument, message: "input '\(input.name)': typed contents are not supported for \(dataType.rawValue)")
                }
                bytes = typed
            }
            tensors[input.name] = Tensor(dataType: dataType, shape: shape, data: bytes)
        }
        return tensors
    }

    /// Fills `response.outputs` and `response.rawOutputContents` with the requested outputs (all
    /// of the signature's outputs, in its order, when the request names none).
    /// A requested output with the `classification: k` parameter comes back as its top k classes
    /// (see `Classification`), labelled from `labels[outputName]` when the model has a label file.
    public static func encodeOutputs(
        _ outputs: [String: Tensor],
        requested: [Inference_ModelInferRequest.InferRequestedOutputTensor],
        signature: ModelSignature,
        labels: [String: [String]] = [:],
        into response: inout Inference_ModelInferResponse
    ) throws(RPCError) {
        let names = requested.isEmpty ? signature.outputs.map(\.name) : requested.map(\.name)
        response.outputs.reserveCapacity(names.count)
        response.rawOutputContents.reserveCapacity(names.count)
        for (position, name) in names.enumerated() {
            guard var tensor = outputs[name] else {
                throw RPCError(code: .internalError, message: "the model produced no output '\(name)'")
            }
            if !requested.isEmpty, let parameter = requested[position].parameters["classification"] {
                guard let k = parameter.integerValue, k > 0 else {
                    throw RPCError(code: .invalidArgument, message: "output '\(name)': parameter 'classification' must be a positive integer")
                }
                tensor = try Classification.topK(tensor, k: Int(k), labels: labels[name], batching: signature.maxBatchSize > 0, output: name)
            }
            var wire = Inference_ModelInferResponse.InferOutputTensor()
            wire.name = name
            wire.datatype = tensor.dataType.rawValue
            wire.shape = tensor.shape.map { Int64($0) }
            response.outputs.append(wire)
            response.rawOutputContents.append(Data(tensor.data))
        }
    }

    /// The number of values typed `contents` hold for `dataType`, or nil when the protocol has
    /// no typed field for it (FP16, BF16).
    public static func typedElementCount(_ contents: Inference_InferTensorContents, dataType: DataType) -> Int? {
        switch dataType {
        case .bool: contents.boolContents.count
        case .int8, .int16, .int32: contents.intContents.count
        case .int64: contents.int64Contents.count
        case .uint8, .uint16, .uint32: contents.uintContents.count
        case .uint64: contents.uint64Contents.count
        case .fp32: contents.fp32Contents.count
        case .fp64: contents.fp64Contents.count
        case .bytes: contents.bytesContents.count
        case .fp16, .bf16: nil
        }
    }

    /// Typed contents as the raw little-endian bytes of `dataType`.
    static func typedBytes(_ contents: Inference_InferTensorContents, dataType: DataType) -> [UInt8]? {
        switch dataType {
        case .bool: return contents.boolContents.map { $0 ? 1 : 0 }
        case .int8: return pack(contents.intContents.map { Int8(truncatingIfNeeded: $0) })
        case .int16: return pack(contents.intContents.map { Int16(truncatingIfNeeded: $0) })
        case .int32: return pack(contents.intContents)
        case .int64: return pack(contents.int64Contents)
        case .uint8: return contents.uintContents.map { UInt8(truncatingIfNeeded: $0) }
        case .uint16: return pack(contents.uintContents.map { UInt16(truncatingIfNeeded: $0) })
        case .uint32: return pack(contents.uintContents)
        case .uint64: return pack(contents.uint64Contents)
        case .fp32: return pack(contents.fp32Contents)
        case .fp64: return pack(contents.fp64Contents)
        case .bytes:
            var out: [UInt8] = []
            for element in contents.bytesContents {
                withUnsafeBytes(of: UInt32(element.count).littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: element)
            }
            return out
        case .fp16, .bf16: return nil
        }
    }

    /// The bytes of `values` in memory order (little-endian on every platform Fulcrum runs on).
    static func pack<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.withUnsafeBytes { [UInt8]($0) }
    }

    static func pack(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { [UInt8]($0) } }
    static func pack(_ values: [Double]) -> [UInt8] { values.withUnsafeBytes { [UInt8]($0) } }
}
