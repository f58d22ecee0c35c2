import Dispatch
import Foundation
import Logging
import ServiceLifecycle

/// Runs a process's reload actions on SIGHUP, in order: one signal source per process, since a
/// signal reaches only one of several sources. Runs as a ServiceLifecycle service until
/// shutdown (give it at least one action: a service that returns at once ends its group).
public struct HangupReloader: Service {
    let actions: [@Sendable () -> Void]

    public init(_ actions: [@Sendable () -> Void]) {
        self.actions = actions
    }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let actions = actions
        source.setEventHandler {
            for action in actions { action() }
        }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }
}

extension ClusterTLS {
    /// The SIGHUP action that rotates this service's cluster certificate without a restart:
    /// issue a new set from the same CA (`fulcrum certs --out NEW --ca-dir OLD`), put the new
    /// pair where `--tls-cert` and `--tls-key` point, send SIGHUP. A pair that does not check out
    /// is logged and the one in force stays.
    public func reloadAction(logger: Logger) -> @Sendable () -> Void {
        let tls = self
        return {
            do throws(ClusterTLSError) {
                let expiry = try tls.reload()
                logger.notice("SIGHUP: reloaded the cluster certificate from \(tls.files.certificate) (valid until \(expiry)); new connections present it")
            } catch {
                logger.error("SIGHUP: kept the cluster certificate in force: \(error.message)")
            }
        }
    }
}
