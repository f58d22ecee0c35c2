import FulcrumProtocol
import Synchronization

/// The worker's identity and lifecycle state, shared by its services.
final class WorkerState: Sendable {
    private struct State {
        var id: String
        var phase: Fulcrum_Control_V1_WorkerState
    }

    private let state: Mutex<State>

    init(name: String) {
        state = Mutex(State(id: name, phase: .starting))
    }

    /// The id the balancer assigned (the configured name until it has joined).
    var id: String {
        get { state.withLock { $0.id } }
        set { state.withLock { $0.id = newValue } }
    }

    /// STARTING while models load, READY while serving, DRAINING once stopping.
    var phase: Fulcrum_Control_V1_WorkerState {
        get { state.withLock { $0.phase } }
        set { state.withLock { $0.phase = newValue } }
    }

    var isReady: Bool { phase == .ready }
}
