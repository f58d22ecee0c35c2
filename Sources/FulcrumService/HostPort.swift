/// A `host:port` pair as given on command lines and carried in the control plane.
///
/// IPv6 literals are written in brackets (`[::1]:8001`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// A host name or an IP literal, without brackets.
    public var host: String
    /// The TCP port; 0 asks the system for a free one when binding.
    public var port: Int

    /// Creates a pair from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`; returns nil when the text is not of that form.
    public init?(parsing text: String) {
        var rest = Substring(text)
        let host: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            rest = rest[rest.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            rest = rest.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = rest[..<colon]
            rest = rest[rest.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(rest), (0...65535).contains(port) else { return nil }
        self.init(host: String(host), port: port)
    }

    /// `host:port`, with brackets around IPv6 literals.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension HostPort {
    /// Whether `host` names this machine's loopback interface only (127.0.0.0/8, ::1, localhost):
    /// nothing outside the machine can reach a port bound there.
    public static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }
}
