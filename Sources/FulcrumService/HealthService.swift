import FulcrumProtocol
import GRPCCore

/// `grpc.health.v1.Health` for one process: SERVING while `isServing()` is true. The empty
/// service name asks about the whole server; so does the name of any service it serves.
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    private let isServing: @Sendable () async -> Bool
    private let services: Set<String>

    /// - Parameters:
    ///   - services: The fully qualified service names this server answers for.
    ///   - isServing: Whether the process is ready to take traffic now.
    public init(services: Set<String>, isServing: @escaping @Sendable () async -> Bool) {
        self.services = services
        self.isServing = isServing
    }

    public func check(
        request: Grpc_Health_V1_HealthCheckRequest,
        context: ServerContext
    ) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard request.service.isEmpty || services.contains(request.service) else {
            throw RPCError(code: .notFound, message: "unknown service '\(request.service)'")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = await isServing() ? .serving : .notServing
        return response
    }

    public func watch(
        request: Grpc_Health_V1_HealthCheckRequest,
        response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
        context: ServerContext
    ) async throws {
        var last: Grpc_Health_V1_HealthCheckResponse.ServingStatus? = nil
        while !Task.isCancelled {
            let status: Grpc_Health_V1_HealthCheckResponse.ServingStatus =
                request.service.isEmpty || services.contains(request.service)
                ? (await isServing() ? .serving : .notServing) : .serviceUnknown
            if status != last {
                var message = Grpc_Health_V1_HealthCheckResponse()
                message.status = status
                try await response.write(message)
                last = status
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
