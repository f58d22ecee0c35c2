import GRPCCore

/// Reads the caller's deadline from the `grpc-timeout` request header, so a service can pass the
/// remaining time on to the next hop.
public enum Deadline {
    /// The timeout the client set, or nil when it set none or the header is malformed.
    public static func timeout(in metadata: Metadata) -> Duration? {
        metadata[stringValues: "grpc-timeout"].first(where: { _ in true }).flatMap { timeout(grpcTimeout: $0) }
    }

    /// A `grpc-timeout` header's value (digits, then a unit: H M S m u n) as a duration; nil when
    /// malformed.
    public static func timeout(grpcTimeout value: String) -> Duration? {
        guard value.utf8.count <= 9, let unit = value.last, let amount = Int64(value.dropLast()), amount >= 0
        else { return nil }
        switch unit {
        case "H": return .seconds(amount * 3600)
        case "M": return .seconds(amount * 60)
        case "S": return .seconds(amount)
        case "m": return .milliseconds(amount)
        case "u": return .microseconds(amount)
        case "n": return .nanoseconds(amount)
        default: return nil
        }
    }
}
