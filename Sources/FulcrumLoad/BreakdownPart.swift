import FulcrumService

/// The parts of Fulcrum's timing breakdown, as sent in response parameters.
public enum BreakdownPart: String, Sendable, CaseIterable, Codable {
    /// `fulcrum.frontend_us`.
    case frontend
    /// `fulcrum.network_us`.
    case network
    /// `fulcrum.queue_us`.
    case queue
    /// `fulcrum.compute_us`.
    case compute

    /// The response parameter that carries this part.
    public var parameterKey: String {
        switch self {
        case .frontend: ResponseParameters.frontend
        case .network: ResponseParameters.network
        case .queue: ResponseParameters.queue
        case .compute: ResponseParameters.compute
        }
    }
}
