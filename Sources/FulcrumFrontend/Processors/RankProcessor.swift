import FulcrumSchema

/// `platform: "fulcrum_rank"`: sorts candidates by score and keeps the best k, with their ids.
///
/// Input 0: the scores, one per candidate ([candidates] or [candidates, 1], any numeric type);
/// input 1: the candidates' ids ([candidates], INT64, INT32 or TYPE_STRING). Output 0: the top k
/// ids (the ids' type, [k]); output 1: their scores (FP32, [k]). Parameters: `top_k` (default
/// 10; fewer when there are fewer candidates), `order` = `descending` (the default) or
/// `ascending`. Equal scores keep the candidates' order. Configure it with `max_batch_size: 0`:
/// the first dimension is the candidates of one request.
struct RankProcessor: Processor {
    let scores: String
    let ids: String
    let topIDs: String
    let topScores: String
    let k: Int
    let descending: Bool

    static let kind = ProcessorKind(platform: "fulcrum_rank") { setup in try RankProcessor(setup) }

    init(_ setup: ProcessorSetup) throws(ProcessorError) {
        guard setup.configuration.maxBatchSize == 0 else {
            throw setup.error("a rank processor takes one request's candidates: set max_batch_size: 0")
        }
        scores = try setup.tensor(\.inputs, 0, "a first input: the scores [candidates]").name
        let idInput = try setup.tensor(\.inputs, 1, "a second input: the candidates' ids [candidates]")
        guard [.int64, .int32, .bytes].contains(idInput.dataType) else {
            throw setup.error("input '\(idInput.name)' must be TYPE_INT64, TYPE_INT32 or TYPE_STRING")
        }
        ids = idInput.name
        let outIDs = try setup.tensor(\.outputs, 0, "a first output: the top ids [k]")
        guard outIDs.dataType == idInput.dataType else {
            throw setup.error("output '\(outIDs.name)' must have the ids' type \(idInput.dataType.configName)")
        }
        topIDs = outIDs.name
        let outScores = try setup.tensor(\.outputs, 1, "a second output: the top scores, TYPE_FP32 [k]")
        guard outScores.dataType == .fp32 else { throw setup.error("output '\(outScores.name)' must be TYPE_FP32") }
        topScores = outScores.name
        k = try setup.integer("top_k", default: 10, in: 1...1_000_000)
        descending = try setup.choice("order", default: "descending", in: ["descending", "ascending"]) == "descending"
    }

    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor] {
        guard let scoreTensor = inputs[scores], let values = scoreTensor.doubles else {
            throw ProcessorError.invalidInput("input '\(scores)' is missing or not numeric")
        }
        guard let idTensor = inputs[ids] else { throw ProcessorError.invalidInput("input '\(ids)' is missing") }
        let count = idTensor.shape.first ?? 0
        guard idTensor.shape.count == 1, values.count == count, scoreTensor.shape.first == count else {
            throw ProcessorError.invalidInput("\(count) ids but scores of shape \(scoreTensor.shape): one score per candidate is needed")
        }
        let descending = descending
        let order = values.indices.sorted { a, b in
            if values[a] != values[b] { return descending ? values[a] > values[b] : values[a] < values[b] }
            return a < b
        }.prefix(k)
        let top = Array(order)
        let topScoreTensor = Tensor(shape: [top.count], scalars: top.map { Float(values[$0]) })
        let topIDTensor: Tensor
        switch idTensor.dataType {
        case .int64:
            let all = idTensor.scalars(as: Int64.self)
            topIDTensor = Tensor(shape: [top.count], scalars: top.map { all[$0] })
        case .int32:
            let all = idTensor.scalars(as: Int32.self)
            topIDTensor = Tensor(shape: [top.count], scalars: top.map { all[$0] })
        default:
            guard let all = idTensor.byteElements, all.count == count else {
                throw ProcessorError.invalidInput("input '\(ids)' is not a well-formed TYPE_STRING tensor of \(count) elements")
            }
            topIDTensor = Tensor(bytes: top.map { all[$0] }, shape: [top.count])
        }
        return [topIDs: topIDTensor, topScores: topScoreTensor]
    }
}
