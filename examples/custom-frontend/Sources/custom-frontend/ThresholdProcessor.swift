import FulcrumFrontend
import FulcrumSchema

/// `platform: "fulcrum_threshold"`: a business rule in the frontend — turns a model's risk score
/// into a decision. Input 0: scores, FP32 [batch, 1]; output 0: TYPE_STRING [batch, 1], one of
/// "approve" (score below `approve_below`), "decline" (at or above `decline_from`) or "review".
struct ThresholdProcessor: Processor {
    let scores: String
    let decision: String
    let approveBelow: Float
    let declineFrom: Float

    static let kind = ProcessorKind(platform: "fulcrum_threshold") { setup in try ThresholdProcessor(setup) }

    init(_ setup: ProcessorSetup) throws(ProcessorError) {
        scores = try setup.tensor(\.inputs, 0, "an input: the scores, FP32 [batch, 1]").name
        decision = try setup.tensor(\.outputs, 0, "an output: the decisions, TYPE_STRING [batch, 1]").name
        guard let approve = Float(setup.parameter("approve_below") ?? ""), let decline = Float(setup.parameter("decline_from") ?? ""),
              approve <= decline
        else {
            throw setup.error("needs the parameters approve_below <= decline_from (numbers)")
        }
        approveBelow = approve
        declineFrom = decline
    }

    func process(_ inputs: [String: Tensor], context: ProcessorContext) async throws -> [String: Tensor] {
        guard let tensor = inputs[scores], tensor.dataType == .fp32 else {
            throw ProcessorError.invalidInput("input '\(scores)' must be FP32 scores")
        }
        var data: [UInt8] = []
        for score in tensor.scalars(as: Float.self) {
            let word = score < approveBelow ? "approve" : score >= declineFrom ? "decline" : "review"
            withUnsafeBytes(of: UInt32(word.utf8.count).littleEndian) { data.append(contentsOf: $0) }
            data.append(contentsOf: word.utf8)
        }
        return [decision: Tensor(dataType: .bytes, shape: tensor.shape, data: data)]
    }
}
