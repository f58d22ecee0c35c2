import ArgumentParser
import FulcrumService

/// `--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-revoked` and `--insecure`: the cluster's mutual
/// TLS, the same in every service (`ClusterTLS`).
public struct TLSOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(ClusterTLS.certificateHelp, valueName: "pem"))
    public var tlsCert: String?

    @Option(name: .long, help: ArgumentHelp(ClusterTLS.keyHelp, valueName: "pem"))
    public var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp(ClusterTLS.caHelp, valueName: "pem"))
    public var tlsCA: String?

    @Option(name: .long, help: ArgumentHelp(ClusterTLS.revokedHelp, valueName: "pem"))
    public var tlsRevoked: String?

    @Flag(name: .long, help: ArgumentHelp(ClusterTLS.insecureHelp))
    public var insecure = false

    public init() {}

    /// The files read and checked, nil for plaintext; `hosts` are the addresses the service
    /// binds (plaintext on anything but loopback needs `--insecure`).
    public func setting(listening hosts: [String]) throws -> ClusterTLS? {
        do throws(ClusterTLSError) {
            return try ClusterTLS.setting(certificate: tlsCert, key: tlsKey, ca: tlsCA, revoked: tlsRevoked, insecure: insecure, listen: hosts)
        } catch {
            throw ValidationError(error.message)
        }
    }
}
