import Foundation
import FulcrumProtocol
import FulcrumService
import GRPCCore
import Testing
import X509

@testable import FulcrumOperator

@Suite struct ClusterCertificatesTests {
    private func folder() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("fulcrum-certs-\(UUID().uuidString)").path
    }

    private func issued() throws -> String {
        let directory = folder()
        try ClusterCertificates.issue(.init(directory: directory))
        return directory
    }

    @Test func issuesACertificatePerRoleThatLoadsWithItsRole() throws {
        let directory = try issued()
        for role in ClusterTLS.Role.allCases {
            let tls = try ClusterTLS(directory: directory, role: role)
            #expect(tls.role == role)
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/worker-key.pem")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: directory + "/ca-key.pem"), "a throwaway CA's key is never written")
        #expect(throws: OperatorError.self) { try ClusterCertificates.issue(.init(directory: directory)) }
    }

    @Test func refusesMismatchedKeysAndForeignCAs() throws {
        let one = try issued()
        let other = try issued()
        do {
            _ = try ClusterTLS(certificate: one + "/worker.pem", key: one + "/frontend-key.pem", ca: one + "/ca.pem")
            Issue.record("a key of another certificate was accepted")
        } catch {
            #expect(error.message.contains("is not the private key"))
        }
        do {
            _ = try ClusterTLS(certificate: one + "/worker.pem", key: one + "/worker-key.pem", ca: other + "/ca.pem")
            Issue.record("a certificate of another CA was accepted")
        } catch {
            #expect(error.message.contains("was not issued by the CA"))
        }
        do {
            _ = try ClusterTLS(certificate: one + "/missing.pem", key: one + "/worker-key.pem", ca: one + "/ca.pem")
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.message.contains("cannot read"))
        }
    }

    @Test func aNewSetFromTheSameCAIsTakenOnReloadAndABadOneIsNot() throws {
        let manager = FileManager.default
        let first = folder()
        var options = ClusterCertificates.Options(directory: first)
        options.keepCAKey = true
        try ClusterCertificates.issue(options)
        // A running worker's files, in a folder of their own.
        let live = folder()
        try manager.createDirectory(atPath: live, withIntermediateDirectories: true)
        func install(_ from: String, _ name: String, as target: String? = nil) throws {
            let destination = live + "/" + (target ?? name)
            try? manager.removeItem(atPath: destination)
            try manager.copyItem(atPath: from + "/" + name, toPath: destination)
        }
        for name in ["ca.pem", "worker.pem", "worker-key.pem"] { try install(first, name) }
        let tls = try ClusterTLS(directory: live, role: .worker)
        let original = tls.presentedCertificate

        // Renewal from the same CA: the copy of ca.pem is the same, the pair is new.
        let second = folder()
        var renewal = ClusterCertificates.Options(directory: second)
        renewal.caDirectory = first
        try ClusterCertificates.issue(renewal)
        #expect(try String(contentsOfFile: second + "/ca.pem", encoding: .utf8) == String(contentsOfFile: first + "/ca.pem", encoding: .utf8))
        #expect(!manager.fileExists(atPath: second + "/ca-key.pem"))
        for name in ["worker.pem", "worker-key.pem"] { try install(second, name) }
        try tls.reload()
        let renewed = tls.presentedCertificate
        #expect(renewed != original)
        #expect(renewed == (try ClusterTLS(directory: second, role: .worker)).presentedCertificate)
        // Copies of the value share what they present (the services hold copies).
        let copy = tls
        #expect(copy.presentedCertificate == renewed)

        // A key that does not match, another role's pair, another CA: refused, the pair in force stays.
        try install(first, "worker-key.pem")
        #expect(throws: ClusterTLSError.self) { try tls.reload() }
        try install(second, "admin.pem", as: "worker.pem")
        try install(second, "admin-key.pem", as: "worker-key.pem")
        do {
            try tls.reload()
            Issue.record("another role's certificate was taken")
        } catch {
            #expect(error.message.contains("admin"))
        }
        let stranger = try issued()
        for name in ["ca.pem", "worker.pem", "worker-key.pem"] { try install(stranger, name) }
        do {
            try tls.reload()
            Issue.record("a new CA was taken without a restart")
        } catch {
            #expect(error.message.contains("changed"))
        }
        #expect(tls.presentedCertificate == renewed)
        // Without the CA's key there is nothing to renew from.
        var orphan = ClusterCertificates.Options(directory: folder())
        orphan.caDirectory = stranger
        #expect(throws: OperatorError.self) { try ClusterCertificates.issue(orphan) }
    }

    @Test func plaintextOnlyOnLoopbackUnlessInsecure() throws {
        let directory = try issued()
        let (certificate, key, ca) = ClusterTLS.files(in: directory, role: .balancer)
        #expect(try ClusterTLS.setting(certificate: nil, key: nil, ca: nil, insecure: false, listen: ["127.0.0.1", "::1"]) == nil)
        #expect(throws: ClusterTLSError.self) { try ClusterTLS.setting(certificate: nil, key: nil, ca: nil, insecure: false, listen: ["0.0.0.0"]) }
        #expect(try ClusterTLS.setting(certificate: nil, key: nil, ca: nil, insecure: true, listen: ["0.0.0.0"]) == nil)
        #expect(throws: ClusterTLSError.self) { try ClusterTLS.setting(certificate: certificate, key: nil, ca: ca, insecure: false, listen: []) }
        #expect(throws: ClusterTLSError.self) { try ClusterTLS.setting(certificate: certificate, key: key, ca: ca, insecure: true, listen: []) }
        #expect(try ClusterTLS.setting(certificate: certificate, key: key, ca: ca, insecure: false, listen: ["10.0.0.1"])?.role == .balancer)
    }

    /// A real server with mutual TLS and a role rule: plaintext and foreign CAs fail the
    /// handshake, the wrong role is PERMISSION_DENIED, the right one is served.
    @Test func mutualTLSRefusesStrangersAndWrongRoles() async throws {
        let directory = try issued()
        let stranger = try issued()
        let server = try ClusterTLS(directory: directory, role: .balancer)
        let transport = GRPCTransport.server(HostPort(host: "127.0.0.1", port: 0), tls: server)
        let grpcServer = GRPCServer(
            transport: transport, services: [HealthService(services: ["fulcrum.control.v1.Balancer"]) { true }],
            interceptors: [PeerRoleInterceptor(allowed: ["grpc.health.v1.Health/Check": [.admin]])])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await grpcServer.serve() }
            defer { grpcServer.beginGracefulShutdown() }
            guard let port = try await transport.listeningAddress.ipv4?.port else {
                Issue.record("no port")
                return
            }
            let address = HostPort(host: "127.0.0.1", port: port)
            func check(_ tls: ClusterTLS?) async -> Result<Grpc_Health_V1_HealthCheckResponse.ServingStatus, RPCError> {
                do {
                    let status = try await withGRPCClient(address, tls: tls) { client in
                        var options = CallOptions.defaults
                        options.timeout = .seconds(5)
                        return try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init(), options: options).status
                    }
                    return .success(status)
                } catch let error as RPCError {
                    return .failure(error)
                } catch {
                    return .failure(RPCError(code: .unknown, message: "\(error)"))
                }
            }
            #expect(try await check(ClusterTLS(directory: directory, role: .admin)).get() == .serving)
            guard case .failure(let denied) = await check(try ClusterTLS(directory: directory, role: .worker)) else {
                Issue.record("a worker certificate passed an admin-only method")
                return
            }
            #expect(denied.code == .permissionDenied)
            #expect(denied.message.contains("needs an admin certificate"))
            for outsider in [nil, try ClusterTLS(directory: stranger, role: .admin)] {
                guard case .failure(let refused) = await check(outsider) else {
                    Issue.record("a client without the cluster's certificate was served")
                    return
                }
                #expect(refused.code == .unavailable || refused.code == .deadlineExceeded)
            }
        }
    }

    @Test func aRevokedCertificateIsRefusedAndTheListIsReadAgainOnReload() throws {
        let first = folder()
        var options = ClusterCertificates.Options(directory: first)
        options.keepCAKey = true
        try ClusterCertificates.issue(options)
        let second = folder()
        var again = ClusterCertificates.Options(directory: second)
        again.caDirectory = first
        try ClusterCertificates.issue(again)
        let revoked = folder() + "-revoked.pem"
        // Empty: nothing is revoked.
        try Data().write(to: URL(fileURLWithPath: revoked))
        let tls = try ClusterTLS(certificate: second + "/balancer.pem", key: second + "/balancer-key.pem", ca: second + "/ca.pem", revoked: revoked)
        let leaked = try Certificate(pemEncoded: String(contentsOfFile: first + "/admin.pem", encoding: .utf8))
        let kept = try Certificate(pemEncoded: String(contentsOfFile: second + "/admin.pem", encoding: .utf8))
        #expect(tls.revocationRefusal(leaked) == nil && tls.revokedCount == 0)
        // The leaked admin certificate appended (as `cat` would), then SIGHUP's reload.
        try Data(contentsOf: URL(fileURLWithPath: first + "/admin.pem")).write(to: URL(fileURLWithPath: revoked))
        try tls.reload()
        #expect(tls.revokedCount == 1)
        let refusal = try #require(tls.revocationRefusal(leaked))
        #expect(refusal.contains("admin certificate") && refusal.contains("is revoked"))
        #expect(tls.revocationRefusal(kept) == nil)
        // Two PEM files joined without a newline between them still read as two certificates.
        func trimmed(_ path: String) throws -> String {
            try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try Data((try trimmed(first + "/admin.pem") + (try trimmed(first + "/frontend.pem"))).utf8).write(to: URL(fileURLWithPath: revoked))
        try tls.reload()
        #expect(tls.revokedCount == 2)
        // A service whose own certificate is listed, or a file that is not PEM, does not start.
        #expect(throws: ClusterTLSError.self) {
            try ClusterTLS(certificate: first + "/admin.pem", key: first + "/admin-key.pem", ca: first + "/ca.pem", revoked: revoked)
        }
        try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: revoked))
        #expect(throws: ClusterTLSError.self) {
            try ClusterTLS(certificate: second + "/balancer.pem", key: second + "/balancer-key.pem", ca: second + "/ca.pem", revoked: revoked)
        }
        // Without the cluster's certificates there is nothing to revoke.
        #expect(throws: ClusterTLSError.self) {
            try ClusterTLS.setting(certificate: nil, key: nil, ca: nil, revoked: revoked, insecure: false, listen: ["127.0.0.1"])
        }
    }
}
