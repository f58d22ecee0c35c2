import Foundation
import FulcrumService

/// Where the `fulcrum` CLI finds the admin certificate for a balancer with mutual TLS.
///
/// `--tls-dir DIR` names a `fulcrum certs` folder. Without it the CLI looks for the cluster that
/// `fulcrum up` runs with that balancer address on this machine: `fulcrum up` records its
/// certificate folder in `$TMPDIR/fulcrum-UID/clusters/` (a folder only this user can enter)
/// while it runs. Neither: plaintext, for a cluster started with `--insecure`.
public enum AdminCredentials {
    /// The admin credentials for `balancer`, or nil for plaintext.
    public static func resolve(balancer: HostPort, directory: String?) throws -> ClusterTLS? {
        let folder = directory ?? registered(balancer)
        guard let folder else { return nil }
        do throws(ClusterTLSError) {
            return try ClusterTLS(directory: folder, role: .admin)
        } catch {
            throw OperatorError("--tls-dir \(folder): \(error.message)")
        }
    }

    /// The folder of records: `$TMPDIR/fulcrum-UID/clusters`, made with mode 0700; nil if it
    /// cannot be made or is not this user's alone.
    static func registry(create: Bool) -> URL? {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let user = URL(fileURLWithPath: base).appendingPathComponent("fulcrum-\(getuid())")
        let clusters = user.appendingPathComponent("clusters")
        if create {
            for url in [user, clusters] {
                try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            }
        }
        // Trust it only if it is ours and closed to everyone else (both levels).
        for url in [user, clusters] {
            var info = stat()
            guard lstat(url.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
                return nil
            }
        }
        return clusters
    }

    static func recordName(_ balancer: HostPort) -> String {
        "\(balancer.host)_\(balancer.port)".map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" ? $0 : "-" }.reduce(into: "") { $0.append($1) }
    }

    /// The certificate folder `fulcrum up` recorded for `balancer`, if any.
    static func registered(_ balancer: HostPort) -> String? {
        guard let registry = registry(create: false) else { return nil }
        var candidates = [balancer]
        // A balancer bound to every address is recorded under its bind host; try loopback too.
        if HostPort.isLoopback(balancer.host) { candidates += ["127.0.0.1", "localhost", "0.0.0.0", "::1"].map { HostPort(host: $0, port: balancer.port) } }
        for candidate in candidates {
            let record = registry.appendingPathComponent(recordName(candidate))
            if let data = FileManager.default.contents(atPath: record.path) {
                let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if FileManager.default.fileExists(atPath: path) { return path }
            }
        }
        return nil
    }

    /// Records `directory` as the certificates of the cluster whose balancer is `balancer`;
    /// returns the record to remove when the cluster stops.
    static func register(_ balancer: HostPort, directory: String) -> URL? {
        guard let registry = registry(create: true) else { return nil }
        let record = registry.appendingPathComponent(recordName(balancer))
        do {
            try Data((directory + "\n").utf8).write(to: record, options: .atomic)
            return record
        } catch {
            return nil
        }
    }

    public static let directoryHelp = "A `fulcrum certs` folder whose admin certificate the CLI presents to a balancer with mutual TLS (default: the certificates of the `fulcrum up` cluster with that balancer address, found on this machine; none: plaintext)."
}
