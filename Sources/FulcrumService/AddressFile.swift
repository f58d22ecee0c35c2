import Foundation

/// Writes the addresses an executable actually bound (port 0 resolved) as a small JSON object,
/// atomically, so that a supervisor (`fulcrum up`, tests, scripts) can find them.
public enum AddressFile {
    /// Writes `entries` (for example `["grpc": "127.0.0.1:40123", "pid": "812"]`) to `path`.
    public static func write(_ entries: [String: String], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Reads a file written by `write`, or nil while it does not exist yet.
    public static func read(_ path: String) -> [String: String]? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String]
        else { return nil }
        return object
    }
}
