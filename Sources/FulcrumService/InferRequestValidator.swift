import Foundation
import FulcrumProtocol
import FulcrumSchema
import GRPCCore

/// Checks a `ModelInferRequest` against a model's signature before it costs anything: names,
/// datatypes, shapes, batch size, raw byte counts, and that typed and raw contents are not mixed.
/// The frontend runs it before a request leaves; the worker runs it again (it may be called
/// directly). Every failure is INVALID_ARGUMENT naming the input and what was expected.
public enum InferRequestValidator {
    /// Returns the batch size of a valid request (1 for models that do not batch).
    @discardableResult
    public static func validate(
        _ request: Inference_ModelInferRequest,
        against signature: ModelSignature
    ) throws(RPCError) -> Int {
        let usesRaw = !request.rawInputContents.isEmpty
        if usesRaw {
            if let typed = request.inputs.first(where: { $0.hasContents }) {
                throw invalid(
                    "input '\(typed.name)': typed 'contents' and 'raw_input_contents' cannot be mixed in one request"
                )
            }
            if request.rawInputContents.count != request.inputs.count {
                throw invalid(
                    "expected \(request.inputs.count) raw_input_contents entries (one per input), got \(request.rawInputContents.count)"
                )
            }
        }

        var seen = Set<String>()
        var batchSize: Int? = nil
        for (index, input) in request.inputs.enumerated() {
            guard let spec = signature.inputs.first(where: { $0.name == input.name }) else {
                let expected = signature.inputs.map { "'\($0.name)'" }.joined(separator: ", ")
                throw invalid("unexpected input '\(input.name)' for model '\(signature.name)'; its inputs are \(expected)")
            }
            guard seen.insert(input.name).inserted else {
                throw invalid("input '\(input.name)' appears more than once")
            }
            guard let dataType = DataType(rawValue: input.datatype) else {
                throw invalid("input '\(input.name)': '\(input.datatype)' is not a datatype")
            }
            guard dataType == spec.dataType else {
                throw invalid(
                    "input '\(input.name)': datatype \(input.datatype) does not match the model's \(spec.dataType.rawValue)"
                )
            }
            let shape = input.shape.map { Int($0) }
            let expectedShape = spec.metadataShape(batching: signature.maxBatchSize > 0)
            let shapeText = "[\(shape.map(String.init).joined(separator: ","))]"
            let expectedText = "[\(expectedShape.map(String.init).joined(separator: ","))]"
            guard shape.count == expectedShape.count else {
                throw invalid("input '\(input.name)': shape \(shapeText) does not match the model's \(expectedText)")
            }
            for (dim, expected) in zip(shape, expectedShape) where dim < 0 || (expected >= 0 && dim != expected) {
                throw invalid("input '\(input.name)': shape \(shapeText) does not match the model's \(expectedText)")
            }
            if signature.maxBatchSize > 0 {
                let batch = shape[0]
                if batch < 1 || batch > signature.maxBatchSize {
                    throw invalid(
                        "input '\(input.name)': batch size \(batch) is outside 1...\(signature.maxBatchSize) (the model's max_batch_size is \(signature.maxBatchSize))"
                    )
                }
                if let other = batchSize, other != batch {
                    throw invalid("input '\(input.name)': batch size \(batch) differs from the other inputs' \(other)")
                }
                batchSize = batch
            }
            guard let elements = elementCount(shape) else {
                throw invalid(
                    "input '\(input.name)': shape \(shapeText) holds more than \(maximumElements) elements"
                )
            }
            if usesRaw {
                let bytes = request.rawInputContents[index]
                if let size = dataType.byteSize {
                    guard bytes.count == elements * size else {
                        throw invalid(
                            "input '\(input.name)': raw content has \(bytes.count) bytes but shape \(shapeText) of \(dataType.rawValue) needs \(elements * size)"
                        )
                    }
                } else {
                    let count = try countBytesElements(bytes, input: input.name)
                    guard count == elements else {
                        throw invalid("input '\(input.name)': raw content holds \(count) BYTES elements but shape \(shapeText) needs \(elements)")
                    }
                }
            } else {
                guard input.hasContents else {
                    throw invalid("input '\(input.name)': no data (neither 'contents' nor 'raw_input_contents')")
                }
                let count = TensorCodec.typedElementCount(input.contents, dataType: dataType)
                guard let count else {
                    throw invalid("input '\(input.name)': typed contents are not supported for \(dataType.rawValue); send raw_input_contents")
                }
                guard count == elements else {
                    throw invalid("input '\(input.name)': contents hold \(count) values but shape \(shapeText) needs \(elements)")
                }
            }
        }
        for spec in signature.inputs where !spec.optional && !seen.contains(spec.name) {
            throw invalid("missing input '\(spec.name)' (\(spec.dataType.rawValue) \(spec.metadataShape(batching: signature.maxBatchSize > 0)))")
        }
        for output in request.outputs where !signature.outputs.contains(where: { $0.name == output.name }) {
            let known = signature.outputs.map { "'\($0.name)'" }.joined(separator: ", ")
            throw invalid("unknown requested output '\(output.name)'; the model's outputs are \(known)")
        }
        return batchSize ?? 1
    }

    /// The most elements one input may declare (2^31 - 1). The shape is checked against it with
    /// overflow detection before anything is sized from it.
    public static let maximumElements = Int(Int32.max)

    /// The product of `shape`'s dimensions (all non-negative), or `nil` when it passes
    /// `maximumElements`. A zero dimension makes the product zero, but the other dimensions must
    /// still multiply within the limit, so `[0, huge, huge]` cannot hide an overflow.
    static func elementCount(_ shape: [Int]) -> Int? {
        var extent = 1
        var hasZero = false
        for dim in shape {
            if dim == 0 {
                hasZero = true
                continue
            }
            let (product, overflow) = extent.multipliedReportingOverflow(by: dim)
            guard dim > 0, !overflow, product <= maximumElements else { return nil }
            extent = product
        }
        return hasZero ? 0 : extent
    }

    private static func countBytesElements(_ data: Data, input: String) throws(RPCError) -> Int {
        var offset = 0
        var count = 0
        while offset < data.count {
            guard offset + 4 <= data.count else {
                throw invalid("input '\(input)': BYTES element length prefix is truncated")
            }
            let length = data.withUnsafeBytes { raw in
                Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            }
            offset += 4 + length
            guard offset <= data.count else {
                throw invalid("input '\(input)': BYTES element runs past the end of the raw content")
            }
            count += 1
        }
        return count
    }

    private static func invalid(_ message: String) -> RPCError {
        RPCError(code: .invalidArgument, message: message)
    }
}
