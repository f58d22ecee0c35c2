import FulcrumProtocol
import GRPCCore

/// ModelStreamInfer for any service: each request on the stream is answered in order with its
/// response, or with its error in `error_message` — an error ends that request, not the stream.
public enum StreamInfer {
    public static func serve(
        _ requests: RPCAsyncSequence<Inference_ModelInferRequest, any Error>,
        into responses: RPCWriter<Inference_ModelStreamInferResponse>,
        infer: (Inference_ModelInferRequest) async throws -> Inference_ModelInferResponse
    ) async throws {
        for try await message in requests {
            var reply = Inference_ModelStreamInferResponse()
            do {
                reply.inferResponse = try await infer(message)
            } catch let error as RPCError {
                reply.errorMessage = error.message
            } catch {
                reply.errorMessage = "\(error)"
            }
            try await responses.write(reply)
        }
    }
}
