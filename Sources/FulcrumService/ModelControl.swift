import Foundation
import GRPCCore

/// Who may load and unload models through the inference protocol's repository extension
/// (`RepositoryModelLoad`/`Unload` over gRPC, `POST /v2/repository/models/{m}/load|unload`).
///
/// `none`, the default, refuses every such call, as Triton does without explicit model control:
/// each worker serves its repository as it found it at start, and only the balancer's placement
/// (over the worker's own report stream) moves replicas. `explicit` accepts a call that carries
/// the admin token as `authorization: Bearer <token>` (a gRPC metadata entry or an HTTP header);
/// the frontend passes the same header on to the workers, which check it again.
public struct ModelControl: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case none
        case explicit
    }

    public let mode: Mode
    private let token: [UInt8]

    /// The shortest admin token accepted (bytes, after trailing whitespace is dropped).
    public static let minimumTokenBytes = 16

    /// Control calls refused (the default).
    public static let disabled = ModelControl(mode: .none, token: [])

    public static let help =
        "Model control: none (the default: repository load/unload calls are refused and each worker serves what its repository held at start) or explicit (load/unload accepted with the admin token of --admin-token-file as 'authorization: Bearer TOKEN')."

    private init(mode: Mode, token: [UInt8]) {
        self.mode = mode
        self.token = token
    }

    /// `explicit` with the token held in `tokenFile` (its first line; at least
    /// `minimumTokenBytes`). `none` ignores the file. Throws a message for the command line.
    public init(mode: Mode, tokenFile: String?) throws(ModelControlError) {
        guard mode == .explicit else {
            self.init(mode: .none, token: [])
            return
        }
        guard let tokenFile else {
            throw ModelControlError("--model-control explicit needs --admin-token-file (a file holding the admin token)")
        }
        guard let contents = FileManager.default.contents(atPath: tokenFile) else {
            throw ModelControlError("--admin-token-file: cannot read '\(tokenFile)'")
        }
        let line = String(decoding: contents, as: UTF8.self)
            .split(whereSeparator: \.isNewline).first.map(String.init)?
            .trimmingCharacters(in: .whitespaces) ?? ""
        guard line.utf8.count >= Self.minimumTokenBytes else {
            throw ModelControlError("--admin-token-file: the token in '\(tokenFile)' is shorter than \(Self.minimumTokenBytes) bytes")
        }
        self.init(mode: .explicit, token: Array(line.utf8))
    }

    /// Checks a load or unload call's `authorization` value (nil when absent). FAILED_PRECONDITION
    /// when model control is off, PERMISSION_DENIED when the token is missing or wrong.
    public func authorize(_ authorization: String?, model: String, load: Bool) throws(RPCError) {
        let action = load ? "load" : "unload"
        guard mode == .explicit else {
            throw RPCError(
                code: .failedPrecondition,
                message: "cannot \(action) model '\(model)': model control is off (--model-control none, the default); models are served as the repository held them at start. Start the frontend and workers with --model-control explicit and --admin-token-file to allow it")
        }
        guard let presented = Self.bearer(authorization), Self.equal(presented, token) else {
            throw RPCError(
                code: .permissionDenied,
                message: "cannot \(action) model '\(model)': the call needs the admin token as 'authorization: Bearer TOKEN', and it is missing or does not match")
        }
    }

    /// The same check on a gRPC call's metadata.
    public func authorize(_ metadata: Metadata, model: String, load: Bool) throws(RPCError) {
        try authorize(Self.authorization(metadata), model: model, load: load)
    }

    /// A call's `authorization` metadata value, if any.
    public static func authorization(_ metadata: Metadata) -> String? {
        metadata[stringValues: "authorization"].first(where: { _ in true })
    }

    /// The metadata that carries this token on to a worker (empty when control is off).
    public var forwardingMetadata: Metadata {
        guard mode == .explicit else { return [:] }
        var metadata = Metadata()
        metadata.addString("Bearer " + String(decoding: token, as: UTF8.self), forKey: "authorization")
        return metadata
    }

    /// The token of `Bearer TOKEN` (the scheme case-insensitive), or nil.
    static func bearer(_ value: String?) -> [UInt8]? {
        bearerToken(value).map { Array($0.utf8) }
    }

    /// The token of an `authorization: Bearer TOKEN` value (the scheme case-insensitive), or nil.
    public static func bearerToken(_ value: String?) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " else { return nil }
        let token = trimmed.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// Compares in time that depends only on the lengths, not on where the bytes differ.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}

/// A `--model-control` / `--admin-token-file` setting that cannot be used.
public struct ModelControlError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
