import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCertificateReloading
import NIOSSL
import Synchronization
import X509

/// The cluster's mutual TLS: every connection between the tiers (frontend ⇄ worker, worker and
/// frontend ⇄ balancer, the `fulcrum` CLI ⇄ balancer) runs over TLS 1.3, and both ends present a
/// certificate signed by the cluster's CA (docs/security.md).
///
/// A certificate's role is the SPIFFE-style URI in its subject alternative names,
/// `spiffe://fulcrum/<role>` (`Role`); `fulcrum certs` and `fulcrum up` issue one per role.
/// Host names are not checked: the cluster's CA is private to the cluster, so any certificate it
/// signed identifies a member, and workers move between addresses. What a member may call is
/// decided by its role (`PeerRoleInterceptor`).
///
/// Every file is read and checked at start, so that a missing or mismatched file is a clear error
/// before anything listens. `reload()` (a service calls it on SIGHUP) reads the certificate and
/// key again: new connections, in both directions, present the new pair; connections already
/// open keep theirs. The CA is fixed for the life of the process.
public struct ClusterTLS: Sendable {
    /// What a cluster certificate is for.
    public enum Role: String, Sendable, CaseIterable {
        case balancer
        case frontend
        case worker
        /// An operator: the `fulcrum` CLI's status, plan and load test calls to the balancer.
        case admin

        /// The subject alternative name URI that marks a certificate as this role's.
        public var uri: String { "\(ClusterTLS.roleURIPrefix)\(rawValue)" }
    }

    public static let roleURIPrefix = "spiffe://fulcrum/"

    /// The certificate chain, leaf first, as PEM.
    public let certificatePEM: [UInt8]
    /// The private key as PEM.
    public let keyPEM: [UInt8]
    /// The cluster CA's certificate(s) as PEM.
    public let caPEM: [UInt8]
    /// The role this process's own certificate carries (nil: none).
    public let role: Role?

    private let chain: [NIOSSLCertificate]
    private let key: NIOSSLPrivateKey
    private let roots: [NIOSSLCertificate]
    /// The pair new handshakes present (shared by every copy of this value).
    private let current: Reloader
    /// Where the files were read from.
    public let files: (certificate: String, key: String, ca: String)
    /// `--tls-revoked`: PEM certificates of members no longer trusted (nil: none).
    public let revokedFile: String?
    /// The revoked certificates' serial numbers in force (shared by every copy of this value).
    private let revocations: Revocations

    /// Help text for the three flags every service takes.
    public static let certificateHelp = "PEM certificate (chain) of this service, issued by the cluster's CA (`fulcrum certs`); with --tls-key and --tls-ca every connection between the tiers is mutual TLS."
    public static let keyHelp = "PEM private key of --tls-cert."
    public static let caHelp = "PEM certificate of the cluster's CA: peers must present a certificate it signed."
    public static let insecureHelp = "Run the connections between the tiers in plaintext, without certificates. Without --tls-* flags a service refuses to listen on anything but loopback unless this is given."
    public static let revokedHelp = "PEM file of cluster certificates no longer trusted (a leaked member's, appended with `cat`): a peer presenting one is refused: a worker closes such a connection after the handshake, a frontend closes its link to such a worker, the balancer refuses every call with UNAUTHENTICATED. Re-read on SIGHUP."

    /// Reads and checks the three PEM files: the chain and the key must match, the chain's leaf
    /// must be signed by the CA.
    public init(certificate: String, key: String, ca: String, revoked: String? = nil) throws(ClusterTLSError) {
        func read(_ path: String, _ flag: String) throws(ClusterTLSError) -> [UInt8] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ClusterTLSError("\(flag): cannot read '\(path)'")
            }
            return Array(data)
        }
        let certificatePEM = try read(certificate, "--tls-cert")
        let keyPEM = try read(key, "--tls-key")
        let caPEM = try read(ca, "--tls-ca")
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(certificatePEM)
        } catch {
            throw ClusterTLSError("--tls-cert: '\(certificate)' holds no PEM certificate (\(error))")
        }
        do {
            self.key = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)
        } catch {
            throw ClusterTLSError("--tls-key: '\(key)' holds no PEM private key (\(error))")
        }
        do {
            roots = try NIOSSLCertificate.fromPEMBytes(caPEM)
        } catch {
            throw ClusterTLSError("--tls-ca: '\(ca)' holds no PEM certificate (\(error))")
        }
        guard let leaf = chain.first else { throw ClusterTLSError("--tls-cert: '\(certificate)' holds no certificate") }
        guard !roots.isEmpty else { throw ClusterTLSError("--tls-ca: '\(ca)' holds no certificate") }

        let parsedLeaf: Certificate
        let parsedRoots: [Certificate]
        do {
            parsedLeaf = try Certificate(derEncoded: try leaf.toDERBytes())
            parsedRoots = try roots.map { try Certificate(derEncoded: try $0.toDERBytes()) }
        } catch {
            throw ClusterTLSError("--tls-cert/--tls-ca: cannot parse the certificates (\(error))")
        }
        guard let ownKey = try? Certificate.PrivateKey(pemEncoded: String(decoding: keyPEM, as: UTF8.self)),
            ownKey.publicKey == parsedLeaf.publicKey
        else {
            throw ClusterTLSError("--tls-key: '\(key)' is not the private key of the certificate in '\(certificate)'")
        }
        guard parsedRoots.contains(where: { Self.signed(parsedLeaf, by: $0) }) else {
            throw ClusterTLSError("--tls-cert: '\(certificate)' was not issued by the CA in '\(ca)' (\(parsedLeaf.issuer))")
        }
        let now = Date()
        guard parsedLeaf.notValidAfter > now else {
            throw ClusterTLSError("--tls-cert: '\(certificate)' expired on \(parsedLeaf.notValidAfter)")
        }
        let serials = try revoked.map { path throws(ClusterTLSError) in try Self.revokedSerials(read(path, "--tls-revoked"), path: path) } ?? []
        guard !serials.contains(Array(parsedLeaf.serialNumber.bytes)) else {
            throw ClusterTLSError("--tls-cert: '\(certificate)' is itself listed in --tls-revoked '\(revoked ?? "")'")
        }
        self.revokedFile = revoked
        self.revocations = Revocations(serials)
        self.certificatePEM = certificatePEM
        self.keyPEM = keyPEM
        self.caPEM = caPEM
        self.role = Self.role(of: parsedLeaf)
        self.files = (certificate, key, ca)
        self.current = Reloader(chain: chain, key: self.key, leaf: parsedLeaf)
    }

    /// Reads the certificate and key files again and, once they check out as at start (a pair,
    /// issued by the CA in force, unexpired, the same role), has every new connection present
    /// them. On any error the pair in force stays. Returns the new certificate's expiry.
    @discardableResult
    public func reload() throws(ClusterTLSError) -> Date {
        let fresh = try ClusterTLS(certificate: files.certificate, key: files.key, ca: files.ca, revoked: revokedFile)
        guard fresh.caPEM == caPEM else {
            throw ClusterTLSError("--tls-ca: '\(files.ca)' changed: a new CA takes a restart (docs/operations.md)")
        }
        guard fresh.role == role else {
            throw ClusterTLSError("--tls-cert: '\(files.certificate)' is \(fresh.role.map { "a \($0.rawValue)" } ?? "no role's") certificate; this service runs as \(role.map { "a \($0.rawValue)" } ?? "no role")")
        }
        let leaf = fresh.current.leaf
        current.replace(chain: fresh.chain, key: fresh.key, leaf: leaf)
        revocations.replace(with: fresh.revocations)
        return leaf.notValidAfter
    }

    // MARK: - Revocation

    /// How many certificates `--tls-revoked` lists now.
    public var revokedCount: Int { revocations.count }

    /// Why a peer presenting `certificate` is refused (nil: it is not revoked).
    public func revocationRefusal(_ certificate: Certificate) -> String? {
        let serial = Array(certificate.serialNumber.bytes)
        guard revocations.contains(serial) else { return nil }
        let role = Self.role(of: certificate).map { "\($0.rawValue) " } ?? ""
        return "the peer's \(role)certificate (serial \(serial.map { String(format: "%02x", $0) }.joined())) is revoked (--tls-revoked \(revokedFile ?? ""))"
    }

    /// The same for a certificate as NIOSSL hands it over (one parse; at most once a connection).
    public func revocationRefusal(_ certificate: NIOSSLCertificate) -> String? {
        guard revocations.count > 0 else { return nil }
        guard let parsed = try? Certificate(derEncoded: certificate.toDERBytes()) else {
            return "the peer's certificate cannot be parsed"
        }
        return revocationRefusal(parsed)
    }

    /// The serial numbers of the PEM certificates in a `--tls-revoked` file (it may be empty).
    static func revokedSerials(_ pem: [UInt8], path: String) throws(ClusterTLSError) -> Set<[UInt8]> {
        guard pem.contains(where: { !($0 == 32 || $0 == 10 || $0 == 13 || $0 == 9) }) else { return [] }
        // Files joined with `cat` from PEMs without a final newline put one certificate's END
        // and the next one's BEGIN on a line: split them again.
        let text = String(decoding: pem, as: UTF8.self).replacingOccurrences(of: "-----END CERTIFICATE-----", with: "-----END CERTIFICATE-----\n")
        do {
            return Set(try NIOSSLCertificate.fromPEMBytes(Array(text.utf8)).map { Array(try Certificate(derEncoded: try $0.toDERBytes()).serialNumber.bytes) })
        } catch {
            throw ClusterTLSError("--tls-revoked: '\(path)' holds something other than PEM certificates (\(error))")
        }
    }

    /// The revoked serial numbers in force, replaced as a whole on reload.
    final class Revocations: Sendable {
        private let serials: Mutex<Set<[UInt8]>>
        init(_ serials: Set<[UInt8]>) { self.serials = Mutex(serials) }
        func contains(_ serial: [UInt8]) -> Bool { serials.withLock { $0.contains(serial) } }
        var count: Int { serials.withLock { $0.count } }
        func replace(with other: Revocations) {
            let fresh = other.serials.withLock { $0 }
            serials.withLock { $0 = fresh }
        }
    }

    /// The certificate new handshakes present now.
    public var presentedCertificate: Certificate { current.leaf }

    /// The pair in force, handed to NIOSSL at each handshake (`CertificateReloader`).
    final class Reloader: CertificateReloader {
        private let state: Mutex<(override: NIOSSLContextConfigurationOverride, leaf: Certificate)>

        init(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, leaf: Certificate) {
            state = Mutex((Self.override(chain, key), leaf))
        }

        func replace(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, leaf: Certificate) {
            state.withLock { $0 = (Self.override(chain, key), leaf) }
        }

        var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride { state.withLock { $0.override } }
        var leaf: Certificate { state.withLock { $0.leaf } }

        private static func override(_ chain: [NIOSSLCertificate], _ key: NIOSSLPrivateKey) -> NIOSSLContextConfigurationOverride {
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chain.map { .certificate($0) }
            override.privateKey = .privateKey(key)
            return override
        }
    }

    /// The three files of `role` in a folder made by `fulcrum certs` (ca.pem, ROLE.pem, ROLE-key.pem).
    public init(directory: String, role: Role) throws(ClusterTLSError) {
        let (certificate, key, ca) = Self.files(in: directory, role: role)
        try self.init(certificate: certificate, key: key, ca: ca)
    }

    /// The paths of `role`'s files in a `fulcrum certs` folder.
    public static func files(in directory: String, role: Role) -> (certificate: String, key: String, ca: String) {
        let base = URL(fileURLWithPath: directory)
        return (
            base.appendingPathComponent("\(role.rawValue).pem").path,
            base.appendingPathComponent("\(role.rawValue)-key.pem").path,
            base.appendingPathComponent("ca.pem").path
        )
    }

    /// The three service flags for `role`'s files in a `fulcrum certs` folder.
    public static func arguments(directory: String, role: Role) -> [String] {
        let (certificate, key, ca) = files(in: directory, role: role)
        return ["--tls-cert", certificate, "--tls-key", key, "--tls-ca", ca]
    }

    /// The `--tls-cert`/`--tls-key`/`--tls-ca`/`--insecure` choice of a service: all three files
    /// or none; none is allowed on a loopback address, or anywhere with `--insecure`.
    public static func setting(
        certificate: String?, key: String?, ca: String?, revoked: String? = nil, insecure: Bool, listen hosts: [String]
    ) throws(ClusterTLSError) -> ClusterTLS? {
        switch (certificate, key, ca) {
        case let (certificate?, key?, ca?):
            if insecure { throw ClusterTLSError("--insecure and --tls-cert/--tls-key/--tls-ca contradict each other") }
            return try ClusterTLS(certificate: certificate, key: key, ca: ca, revoked: revoked)
        case (nil, nil, nil):
            if revoked != nil { throw ClusterTLSError("--tls-revoked needs the cluster's certificates (--tls-cert, --tls-key, --tls-ca)") }
            if !insecure, let exposed = hosts.first(where: { !HostPort.isLoopback($0) }) {
                throw ClusterTLSError(
                    "listening on \(exposed) needs the cluster's certificates (--tls-cert, --tls-key, --tls-ca; `fulcrum certs` makes them), or --insecure to run the tiers' connections in plaintext")
            }
            return nil
        default:
            throw ClusterTLSError("--tls-cert, --tls-key and --tls-ca go together: give all three or none")
        }
    }

    // MARK: - Contexts

    /// A server that requires a client certificate from the cluster's CA.
    public func serverConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(roots)
        configuration.applicationProtocols = ["h2"]
        configuration.setCertificateReloader(current)
        return configuration
    }

    /// A client that presents this certificate and accepts only servers the cluster's CA signed.
    public func clientConfiguration() -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.certificateChain = chain.map { .certificate($0) }
        configuration.privateKey = .privateKey(key)
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(roots)
        configuration.applicationProtocols = ["h2"]
        configuration.setCertificateReloader(current)
        return configuration
    }

    public func serverContext() throws(ClusterTLSError) -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: serverConfiguration()) } catch {
            throw ClusterTLSError("cannot make the TLS server context: \(error)")
        }
    }

    public func clientContext() throws(ClusterTLSError) -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: clientConfiguration()) } catch {
            throw ClusterTLSError("cannot make the TLS client context: \(error)")
        }
    }

    /// grpc-swift's server security with the same settings as `serverConfiguration`.
    public var serverSecurity: HTTP2ServerTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [.bytes(certificatePEM, format: .pem)], privateKey: .bytes(keyPEM, format: .pem)) { tls in
            tls.trustRoots = .certificates([.bytes(caPEM, format: .pem)])
            tls.clientCertificateVerification = .noHostnameVerification
            tls.requireALPN = false
            tls.certificateReloader = current
        }
    }

    /// grpc-swift's client security with the same settings as `clientConfiguration`.
    public var clientSecurity: HTTP2ClientTransport.Posix.TransportSecurity {
        .mTLS(certificateChain: [.bytes(certificatePEM, format: .pem)], privateKey: .bytes(keyPEM, format: .pem)) { tls in
            tls.trustRoots = .certificates([.bytes(caPEM, format: .pem)])
            tls.serverCertificateVerification = .noHostnameVerification
            tls.certificateReloader = current
        }
    }

    // MARK: - Roles

    /// The role a certificate carries (its first `spiffe://fulcrum/<role>` URI), nil if none.
    public static func role(of certificate: Certificate) -> Role? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        for name in names {
            if case .uniformResourceIdentifier(let uri) = name, uri.hasPrefix(roleURIPrefix),
                let role = Role(rawValue: String(uri.dropFirst(roleURIPrefix.count)))
            {
                return role
            }
        }
        return nil
    }

    /// The role of the peer of a grpc-swift call over a TLS transport (nil: plaintext or none).
    public static func peerRole(_ context: ServerContext) -> Role? {
        guard let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = posix.peerCertificate
        else { return nil }
        return role(of: certificate)
    }

    /// Whether `issuer`'s key signed `certificate` (and its name is the certificate's issuer).
    static func signed(_ certificate: Certificate, by issuer: Certificate) -> Bool {
        certificate.issuer == issuer.subject
            && issuer.publicKey.isValidSignature(certificate.signature, for: certificate)
    }
}

public struct ClusterTLSError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// TLS on a frontend's public port (`--edge-tls-cert`, `--edge-tls-key`): the server's
/// certificate only, for clients outside the cluster (no client certificate is asked for).
public enum EdgeTLS {
    public static let certificateHelp = "PEM certificate (chain) to serve TLS with on the public gRPC and HTTP ports (with --edge-tls-key); plaintext without it."
    public static let keyHelp = "PEM private key of --edge-tls-cert."

    /// The server configuration for the pair of files (TLS 1.2 or later; ALPN `h2` on gRPC).
    public static func configuration(certificate: String, key: String, alpn: [String]) throws(ClusterTLSError) -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        let privateKey: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw ClusterTLSError("--edge-tls-cert: cannot read a PEM certificate from '\(certificate)' (\(error))")
        }
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw ClusterTLSError("--edge-tls-key: cannot read a PEM private key from '\(key)' (\(error))")
        }
        guard !chain.isEmpty else { throw ClusterTLSError("--edge-tls-cert: '\(certificate)' holds no certificate") }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = alpn
        return configuration
    }

    public static func context(certificate: String, key: String) throws(ClusterTLSError) -> NIOSSLContext {
        let configuration = try configuration(certificate: certificate, key: key, alpn: ["h2"])
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw ClusterTLSError("--edge-tls-cert/--edge-tls-key: the key does not match the certificate, or cannot be used (\(error))")
        }
    }
}

/// Refuses a call whose peer's certificate lacks a role the method needs, with
/// PERMISSION_DENIED. Only on a server with the cluster's mutual TLS (the handshake has already
/// refused peers without a certificate from the CA); `allowed` maps "Service/Method" to the roles
/// that may call it, and a method it does not list is open to every member. A peer whose
/// certificate `tls`'s `--tls-revoked` lists is refused every call with UNAUTHENTICATED.
public struct PeerRoleInterceptor: ServerInterceptor {
    public let allowed: [String: Set<ClusterTLS.Role>]
    /// Whose `--tls-revoked` list every call's peer is checked against (nil: none).
    public let tls: ClusterTLS?

    public init(allowed: [String: Set<ClusterTLS.Role>], tls: ClusterTLS? = nil) {
        self.allowed = allowed
        self.tls = tls
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let name = "\(context.descriptor.service.fullyQualifiedService)/\(context.descriptor.method)"
        if let tls, let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
            let certificate = posix.peerCertificate, let refusal = tls.revocationRefusal(certificate)
        {
            throw RPCError(code: .unauthenticated, message: refusal)
        }
        if let roles = allowed[name] {
            let role = ClusterTLS.peerRole(context)
            guard let role, roles.contains(role) else {
                throw RPCError(code: .permissionDenied, message: Self.refusal(method: context.descriptor.method, needed: roles, presented: role))
            }
        }
        return try await next(request, context)
    }

    /// The message of a call refused for its peer's role.
    static func refusal(method: String, needed: Set<ClusterTLS.Role>, presented: ClusterTLS.Role?) -> String {
        let names = needed.map(\.rawValue).sorted().joined(separator: " or ")
        let peer = presented.map { "\(article($0.rawValue)) \($0.rawValue) certificate" } ?? "no certificate with a Fulcrum role"
        return "\(method) needs \(article(names)) \(names) certificate of the cluster; the peer presented \(peer)"
    }

    private static func article(_ word: String) -> String {
        word.first.map { "aeiou".contains($0) } == true ? "an" : "a"
    }
}
