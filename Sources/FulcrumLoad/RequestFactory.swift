import FulcrumProtocol
import Foundation

/// Makes inference requests with random inputs from a model's metadata: the right names,
/// datatypes and shapes, values drawn at random within each datatype (floats in [0, 1), integers
/// in [0, 100), booleans, 8-byte strings), as raw input contents. A handful of distinct requests
/// are made up front and reused, so the generator spends no CPU on data while it sends.
public enum RequestFactory {
    /// `count` requests for the model in `metadata`. A leading -1 dimension is the batch and
    /// becomes `batch`; any other -1 becomes `dimensionValue`, which must then be given.
    public static func requests(
        metadata: Inference_ModelMetadataResponse, version: String, batch: Int, dimensionValue: Int?,
        count: Int, seed: UInt64
    ) throws -> [Inference_ModelInferRequest] {
        guard !metadata.inputs.isEmpty else {
            throw LoadError("model '\(metadata.name)' declares no inputs in its metadata; nothing to send")
        }
        var generator = SeededGenerator(seed: seed ^ 0x5EED)
        var shapes: [[Int64]] = []
        for tensor in metadata.inputs {
            shapes.append(try shape(of: tensor, batch: batch, dimensionValue: dimensionValue))
        }
        return (0..<max(1, count)).map { _ in
            var request = Inference_ModelInferRequest()
            request.modelName = metadata.name
            request.modelVersion = version
            for (tensor, shape) in zip(metadata.inputs, shapes) {
                var input = Inference_ModelInferRequest.InferInputTensor()
                input.name = tensor.name
                input.datatype = tensor.datatype
                input.shape = shape
                request.inputs.append(input)
                request.rawInputContents.append(randomData(datatype: tensor.datatype, count: Int(shape.reduce(1, *)), generator: &generator))
            }
            return request
        }
    }

    /// The concrete shape sent for `tensor`.
    static func shape(of tensor: Inference_ModelMetadataResponse.TensorMetadata, batch: Int, dimensionValue: Int?) throws -> [Int64] {
        var shape = tensor.shape
        for index in shape.indices where shape[index] < 0 {
            if index == 0 {
                shape[index] = Int64(batch)
            } else if let dimensionValue {
                shape[index] = Int64(dimensionValue)
            } else {
                throw LoadError("input '\(tensor.name)' has shape \(tensor.shape) with a variable dimension at position \(index); give its size with --dim-value N")
            }
        }
        return shape
    }

    /// `count` random elements of `datatype` as raw little-endian bytes.
    static func randomData(datatype: String, count: Int, generator: inout SeededGenerator) -> Data {
        func values<T>(_ make: (inout SeededGenerator) -> T) -> Data {
            var array: [T] = []
            array.reserveCapacity(count)
            for _ in 0..<count { array.append(make(&generator)) }
            return array.withUnsafeBytes { Data($0) }
        }
        func small(_ g: inout SeededGenerator) -> UInt64 { g.next() % 100 }
        switch datatype {
        case "FP32": return values { Float($0.unitInterval()) }
        case "FP64": return values { $0.unitInterval() }
        case "FP16": return values { g in UInt16(0x3800 + g.next() % 0x400) }  // [0.5, 1) as IEEE half
        case "BF16": return values { g in UInt16(truncatingIfNeeded: Float(g.unitInterval()).bitPattern >> 16) }
        case "INT8": return values { Int8(small(&$0)) }
        case "INT16": return values { Int16(small(&$0)) }
        case "INT32": return values { Int32(small(&$0)) }
        case "INT64": return values { Int64(small(&$0)) }
        case "UINT8": return values { UInt8(small(&$0)) }
        case "UINT16": return values { UInt16(small(&$0)) }
        case "UINT32": return values { UInt32(small(&$0)) }
        case "UINT64": return values { small(&$0) }
        case "BOOL": return values { UInt8($0.next() & 1) }
        default:  // BYTES: length-prefixed strings
            var data = Data()
            for _ in 0..<count {
                withUnsafeBytes(of: UInt32(8).littleEndian) { data.append(contentsOf: $0) }
                for _ in 0..<8 { data.append(UInt8(97 + generator.next() % 26)) }
            }
            return data
        }
    }
}
