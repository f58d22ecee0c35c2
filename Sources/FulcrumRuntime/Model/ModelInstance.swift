import FulcrumSchema

/// One execution context of a `Model`: it owns the scratch buffers of the plans bound to the
/// batch shapes it has seen, and runs one batch at a time.
///
/// `@unchecked Sendable`: an instance may move between threads or tasks, but callers must
/// serialise `execute` calls on one instance (the worker's batcher gives each instance one
/// batch at a time); run several instances for parallelism. Bound plans are cached per input
/// shape (up to `cacheLimit`, least recently used evicted), so steady traffic at a few batch
/// sizes never allocates beyond the output tensors.
public final class ModelInstance: @unchecked Sendable {
    /// The model this instance runs.
    public let model: Model
    private var bound: [BoundPlan] = []
    private let cacheLimit = 8

    init(model: Model) {
        self.model = model
    }

    /// Runs the model once. `inputs` are keyed by config input name; with `maxBatchSize > 0`
    /// each input is `[batch] + dims` with the same batch size (1...maxBatchSize). Returns every
    /// config output by name. Validates names, data types, shapes and byte counts first and
    /// throws `.invalidInput` naming the input and what was expected.
    public func execute(_ inputs: [String: Tensor]) throws(RuntimeError) -> [String: Tensor] {
        let config = model.configuration
        let plan = model.plan
        for name in inputs.keys where !config.inputs.contains(where: { $0.name == name }) {
            throw RuntimeError(
                code: .invalidInput,
                message: "unexpected input '\(name)'; the model's inputs are \(config.inputs.map { "'\($0.name)'" }.joined(separator: ", "))")
        }
        var graphShapes = plan.inputs.map { $0.declared.shape ?? [] }
        var provided = [Bool](repeating: false, count: plan.inputs.count)
        var batch: Int?
        var sources: [(graphIndex: Int, tensor: Tensor)] = []
        for (configIndex, input) in config.inputs.enumerated() {
            guard let tensor = inputs[input.name] else {
                if input.optional && model.inputIndices[configIndex] < 0 { continue }
                throw RuntimeError(code: .invalidInput, message: "input '\(input.name)' is missing")
            }
            guard tensor.dataType == input.dataType else {
                throw RuntimeError(
                    code: .invalidInput,
                    message: "input '\(input.name)' has data type \(tensor.dataType.rawValue); the model expects \(input.dataType.rawValue)")
            }
            var shape = tensor.shape
            let expected = (config.maxBatchSize > 0 ? [-1] : []) + input.dims
            guard shape.count == expected.count,
                zip(shape, expected).allSatisfy({ $0 >= 0 && ($1 < 0 || $0 == $1) })
            else {
                let batchNote = config.maxBatchSize > 0 ? " ([batch] + dims, batch 1...\(config.maxBatchSize))" : ""
                throw RuntimeError(
                    code: .invalidInput,
                    message: "input '\(input.name)' has shape \(tensor.shape); the model expects \(expected)\(batchNote), -1 = any")
            }
            if config.maxBatchSize > 0 {
                let size = shape[0]
                guard size >= 1, size <= config.maxBatchSize else {
                    throw RuntimeError(
                        code: .invalidInput,
                        message: "input '\(input.name)' has batch size \(size); the model accepts 1...\(config.maxBatchSize)")
                }
                if let batch, batch != size {
                    throw RuntimeError(
                        code: .invalidInput,
                        message: "input '\(input.name)' has batch size \(size), but other inputs have \(batch)")
                }
                batch = size
            }
            guard let byteCount = tensor.expectedByteCount, tensor.data.count == byteCount else {
                throw RuntimeError(
                    code: .invalidInput,
                    message: "input '\(input.name)' holds \(tensor.data.count) bytes; \(tensor.dataType.rawValue)\(tensor.shape) needs \(tensor.expectedByteCount.map(String.init) ?? "a fixed size per element")")
            }
            if let reshape = input.reshape {
                // The model sees the reshaped tensor; resolve one -1 from the element count.
                let prefix = config.maxBatchSize > 0 ? [shape[0]] : []
                shape = prefix + Self.resolve(reshape, elementCount: tensor.elementCount / max(1, prefix.first ?? 1))
            }
            let graphIndex = model.inputIndices[configIndex]
            guard graphIndex >= 0 else { continue }
            graphShapes[graphIndex] = shape
            provided[graphIndex] = true
            sources.append((graphIndex, tensor))
        }
        if let missing = provided.firstIndex(of: false) {
            throw RuntimeError(code: .invalidInput, message: "the model needs input '\(plan.inputs[missing].name)'")
        }

        let boundPlan = try bind(graphShapes)
        for (graphIndex, tensor) in sources {
            let destination = boundPlan.inputPointer(graphIndex)
            tensor.data.withUnsafeBytes { raw in
                if let base = raw.baseAddress { destination.copyMemory(from: base, byteCount: raw.count) }
            }
        }
        try boundPlan.run()

        var results: [String: Tensor] = [:]
        for (configIndex, output) in config.outputs.enumerated() {
            var tensor = boundPlan.output(model.outputIndices[configIndex])
            if output.reshape != nil {
                let prefix = config.maxBatchSize > 0 ? [tensor.shape.first ?? 1] : []
                let perBatch = tensor.elementCount / max(1, prefix.first ?? 1)
                tensor.shape = prefix + Self.resolve(output.dims, elementCount: perBatch)
            }
            results[output.name] = tensor
        }
        return results
    }

    /// The bound plan for these graph-input shapes, binding (and caching) it when new.
    private func bind(_ shapes: [[Int]]) throws(RuntimeError) -> BoundPlan {
        if let index = bound.firstIndex(where: { $0.inputShapes == shapes }) {
            let plan = bound.remove(at: index)
            bound.append(plan)
            return plan
        }
        let plan = try BoundPlan(plan: model.plan, inputShapes: shapes)
        if bound.count >= cacheLimit { bound.removeFirst() }
        bound.append(plan)
        return plan
    }

    /// Replaces a single -1 in `dims` so the product equals `elementCount`.
    private static func resolve(_ dims: [Int], elementCount: Int) -> [Int] {
        guard let unknown = dims.firstIndex(of: -1) else { return dims }
        let known = dims.filter { $0 >= 0 }.reduce(1, *)
        var result = dims
        result[unknown] = known > 0 ? elementCount / known : 0
        return result
    }
}
