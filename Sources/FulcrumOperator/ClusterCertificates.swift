import Crypto
import Foundation
import FulcrumService
import SwiftASN1
import X509

/// Issues a cluster's certificate authority and one certificate per role (`ClusterTLS.Role`),
/// written as PEM files to a folder: `ca.pem`, and `ROLE.pem` / `ROLE-key.pem` for each role.
/// `fulcrum certs` writes them for a deployment; `fulcrum up` makes a throwaway set in its state
/// directory. The CA's private key is written as `ca-key.pem` only when asked (`keepCAKey`), so
/// that a throwaway CA can never sign anything more.
///
/// Keys are ECDSA P-256. Each leaf names its role as `spiffe://fulcrum/ROLE` in its subject
/// alternative names, with `hosts` (DNS names and IP addresses) beside it, and may be used as
/// both a TLS server and a TLS client.
public enum ClusterCertificates {
    public struct Options: Sendable {
        public var directory: String
        public var hosts: [String] = ["localhost", "127.0.0.1", "::1"]
        public var validityDays: Int = 365
        public var keepCAKey = false
        /// Issue the role certificates from the CA in this folder (its `ca.pem` and
        /// `ca-key.pem`, from an earlier `--keep-ca-key`) instead of a new CA: new certificates
        /// for a running cluster, which its services take on SIGHUP.
        public var caDirectory: String?
        public var roles: [ClusterTLS.Role] = ClusterTLS.Role.allCases

        public init(directory: String) { self.directory = directory }
    }

    /// Writes a new CA and the role certificates; files are created with mode 0600 (keys) and
    /// 0644 (certificates) in `directory` (made with mode 0700 if missing). Refuses to overwrite
    /// an existing `ca.pem`.
    public static func issue(_ options: Options) throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: options.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let base = URL(fileURLWithPath: options.directory)
        let caFile = base.appendingPathComponent("ca.pem").path
        guard !manager.fileExists(atPath: caFile) else {
            throw OperatorError("\(caFile) exists already: issue a new CA into an empty folder (remove the old files first)")
        }
        guard options.validityDays >= 1 else { throw OperatorError("--validity-days must be at least 1") }

        let now = Date()
        let notBefore = now.addingTimeInterval(-300)
        let notAfter = now.addingTimeInterval(Double(options.validityDays) * 86_400)
        let (ca, caPrivate) = try options.caDirectory.map(existingCA) ?? newCA(notBefore: notBefore, notAfter: notAfter)
        let caName = ca.subject
        // A leaf cannot outlive its issuer.
        let leafNotAfter = min(notAfter, ca.notValidAfter)
        let names = try alternativeNames(options.hosts)
        for role in options.roles {
            let key = P256.Signing.PrivateKey()
            let leafPrivate = Certificate.PrivateKey(key)
            let subject = try DistinguishedName {
                OrganizationName("Fulcrum")
                CommonName("fulcrum-\(role.rawValue)")
            }
            let leaf = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: leafPrivate.publicKey,
                notValidBefore: notBefore, notValidAfter: leafNotAfter, issuer: caName, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames([.uniformResourceIdentifier(role.uri)] + names)
                    AuthorityKeyIdentifier(keyIdentifier: try ca.extensions.subjectKeyIdentifier?.keyIdentifier)
                },
                issuerPrivateKey: caPrivate
            )
            try writeFile(try leaf.serializeAsPEM().pemString, to: base.appendingPathComponent("\(role.rawValue).pem"), mode: 0o644)
            try writeFile(try leafPrivate.serializeAsPEM().pemString, to: base.appendingPathComponent("\(role.rawValue)-key.pem"), mode: 0o600)
        }
        if options.keepCAKey && options.caDirectory == nil {
            try writeFile(try caPrivate.serializeAsPEM().pemString, to: base.appendingPathComponent("ca-key.pem"), mode: 0o600)
        }
        // The CA last: its presence marks a complete set.
        try writeFile(try ca.serializeAsPEM().pemString, to: URL(fileURLWithPath: caFile), mode: 0o644)
    }

    private static func newCA(notBefore: Date, notAfter: Date) throws -> (Certificate, Certificate.PrivateKey) {
        let caName = try DistinguishedName {
            OrganizationName("Fulcrum")
            CommonName("Fulcrum cluster CA \(UUID().uuidString.prefix(8))")
        }
        let caPrivate = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let ca = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: caPrivate.publicKey,
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: caPrivate.publicKey)
            },
            issuerPrivateKey: caPrivate
        )
        return (ca, caPrivate)
    }

    /// The CA of an earlier `fulcrum certs --keep-ca-key`: its certificate and key, which must match.
    private static func existingCA(_ directory: String) throws -> (Certificate, Certificate.PrivateKey) {
        let base = URL(fileURLWithPath: directory)
        let certificateFile = base.appendingPathComponent("ca.pem").path
        let keyFile = base.appendingPathComponent("ca-key.pem").path
        guard let certificateText = try? String(contentsOfFile: certificateFile, encoding: .utf8) else {
            throw OperatorError("--ca-dir: cannot read \(certificateFile)")
        }
        guard let keyText = try? String(contentsOfFile: keyFile, encoding: .utf8) else {
            throw OperatorError("--ca-dir: cannot read \(keyFile) (the CA's key is only written by `fulcrum certs --keep-ca-key`)")
        }
        let ca: Certificate
        let key: Certificate.PrivateKey
        do { ca = try Certificate(pemEncoded: certificateText) } catch { throw OperatorError("--ca-dir: \(certificateFile) holds no PEM certificate (\(error))") }
        do { key = try Certificate.PrivateKey(pemEncoded: keyText) } catch { throw OperatorError("--ca-dir: \(keyFile) holds no PEM private key (\(error))") }
        guard key.publicKey == ca.publicKey else { throw OperatorError("--ca-dir: \(keyFile) is not the key of \(certificateFile)") }
        guard ca.notValidAfter > Date() else { throw OperatorError("--ca-dir: the CA in \(certificateFile) expired on \(ca.notValidAfter)") }
        return (ca, key)
    }

    /// DNS names and IP literals as subject alternative names.
    static func alternativeNames(_ hosts: [String]) throws -> [GeneralName] {
        try hosts.map { host in
            if let v4 = IPv4Literal(host) { return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(v4))) }
            if host.contains(":") {
                var address = in6_addr()
                guard inet_pton(AF_INET6, host, &address) == 1 else { throw OperatorError("--host: '\(host)' is not an IPv6 address") }
                let bytes = withUnsafeBytes(of: &address) { Array($0) }
                return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))
            }
            guard !host.isEmpty, host.utf8.allSatisfy({ $0 < 0x80 && $0 != 0x20 }) else {
                throw OperatorError("--host: '\(host)' is not a DNS name or an IP address")
            }
            return .dnsName(host)
        }
    }

    private static func IPv4Literal(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }

    private static func writeFile(_ text: String, to url: URL, mode: Int) throws {
        let path = url.path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw OperatorError("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        // Ending in a newline, as PEM files do, so that `cat a.pem b.pem` is a valid bundle.
        let bytes = Array(text.utf8) + (text.hasSuffix("\n") ? [] : [UInt8(ascii: "\n")])
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw OperatorError("cannot write \(path): errno \(errno)") }
            written += n
        }
        // O_CREAT's mode does not apply to a file that existed: set it either way.
        fchmod(fd, mode_t(mode))
    }
}
