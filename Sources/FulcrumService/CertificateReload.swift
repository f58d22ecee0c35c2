import Dispatch
import Foundation
import Logging
import ServiceLifecycle

/// Reloads a service's cluster certificate and key (`ClusterTLS.reload()`) on SIGHUP, so that
/// certificates are rotated without a restart: issue a new set from the same CA
/// (`fulcrum certs --out NEW --ca-dir OLD`), put each service's new pair where its `--tls-cert`
/// and `--tls-key` point, and send SIGHUP. A pair that does not check out is logged and the one
/// in force stays. Runs as a ServiceLifecycle service until shutdown.
public struct CertificateReloadService: Service {
    let tls: ClusterTLS
    let logger: Logger

    public init(tls: ClusterTLS, logger: Logger) {
        self.tls = tls
        self.logger = logger
    }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        let tls = tls
        let logger = logger
        source.setEventHandler {
            do throws(ClusterTLSError) {
                let expiry = try tls.reload()
                logger.notice("SIGHUP: reloaded the cluster certificate from \(tls.files.certificate) (valid until \(expiry)); new connections present it")
            } catch {
                logger.error("SIGHUP: kept the cluster certificate in force: \(error.message)")
            }
        }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }
}
