import Foundation
import Logging
import ServiceLifecycle

/// Shuts its service group down when the process that started it goes away (the process is
/// re-parented), so that children of `fulcrum up` or of the process scaler never outlive it,
/// even when it is killed with SIGKILL.
public struct ParentWatch: Service {
    private let parent: pid_t
    private let logger: Logger

    /// Watches the current parent process.
    public init(logger: Logger) {
        self.parent = getppid()
        self.logger = logger
    }

    /// Polls twice a second; returns (ending the group gracefully) once the parent is gone.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if getppid() != parent {
                logger.warning("parent process \(parent) exited: shutting down")
                return
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
