import GRPCCore
import NIOCore
import NIOHPACK
import SwiftProtobuf

/// gRPC's wire format, for the unary ModelInfer calls Fulcrum carries on raw HTTP/2 frames (the
/// frontend's client, `WorkerStreams`, and the servers' fast path, `GRPCEdgeServer`): the
/// length-prefixed message, the status in the trailers, and the `grpc-timeout` header. Every
/// length from the network is checked against a limit before anything is allocated for it.
public enum GRPCWire {
    /// How many streams it reset an HTTP/2 connection remembers, so that frames the peer sent
    /// before it saw a reset are dropped instead of read as a protocol error that closes the
    /// connection (GOAWAY STREAM_CLOSED, failing every call on it). swift-nio-http2 remembers 32:
    /// an overloaded server refusing thousands of calls a second, a frontend whose calls to a
    /// worker time out, or a client whose deadlines expire reset far more than that within one
    /// round trip. As many as a connection may have streams open (`EdgeConnection.settings`).
    public static let rememberedResets = 4096

    /// The 5-byte prefix of a message: a compressed flag and a big-endian length.
    public static let prefixBytes = 5

    /// `message` serialised behind its gRPC prefix, in one buffer.
    public static func frame(_ message: some SwiftProtobuf.Message, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        let bytes: [UInt8] = try message.serializedBytes()
        guard bytes.count <= Int(UInt32.max) else {
            throw RPCError(code: .resourceExhausted, message: "a message of \(bytes.count) bytes does not fit gRPC's 32-bit length")
        }
        var buffer = allocator.buffer(capacity: prefixBytes + bytes.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(bytes.count))
        buffer.writeBytes(bytes)
        return buffer
    }

    /// Decodes the single message a unary response carries: exactly one uncompressed message of at
    /// most `maxMessageBytes`, with nothing after it. Throws INTERNAL (or RESOURCE_EXHAUSTED for
    /// an over-long message) naming what was wrong.
    public static func decodeSingle<M: SwiftProtobuf.Message>(_ type: M.Type, from body: ByteBuffer?, maxMessageBytes: Int) throws(RPCError) -> M {
        guard var body, body.readableBytes >= prefixBytes else {
            throw RPCError(code: .internalError, message: "the worker's response carried no complete message (\(body?.readableBytes ?? 0) bytes)")
        }
        let compressed = body.readInteger(as: UInt8.self)!
        let length = Int(body.readInteger(as: UInt32.self)!)
        guard compressed == 0 else {
            throw RPCError(code: .internalError, message: "the worker's response is compressed (flag \(compressed)); none was asked for")
        }
        guard length <= maxMessageBytes else {
            throw RPCError(code: .resourceExhausted, message: "the worker's response of \(length) bytes exceeds the limit of \(maxMessageBytes)")
        }
        guard body.readableBytes == length else {
            throw RPCError(
                code: .internalError,
                message: "the worker's response message declares \(length) bytes but \(body.readableBytes) followed the prefix")
        }
        do {
            return try body.readWithUnsafeReadableBytes { raw in
                (raw.count, try M(serializedBytes: raw))
            }
        } catch {
            throw RPCError(code: .internalError, message: "the worker's response is not a valid \(M.protoMessageName): \(error)")
        }
    }

    /// The status that trailers (or a trailers-only response) carry: nil for OK, else the error
    /// with its percent-decoded `grpc-message` and Fulcrum's rejection metadata passed on.
    public static func status(in trailers: HPACKHeaders) -> RPCError? {
        guard let text = trailers.first(name: "grpc-status") else {
            return RPCError(code: .internalError, message: "the worker's response ended without a grpc-status")
        }
        guard let raw = Int(text), let statusCode = Status.Code(rawValue: raw) else {
            return RPCError(code: .internalError, message: "the worker's response has an invalid grpc-status '\(text.prefix(32))'")
        }
        guard let code = RPCError.Code(statusCode) else { return nil }  // OK
        let message = trailers.first(name: "grpc-message").map(percentDecoded) ?? ""
        var metadata: Metadata = [:]
        if let rejection = trailers.first(name: RejectionMetadata.key) {
            metadata.addString(rejection, forKey: RejectionMetadata.key)
        }
        return RPCError(code: code, message: message, metadata: metadata)
    }

    /// The status gRPC assigns to a response whose HTTP status is not 200 (gRPC's
    /// "HTTP to gRPC status code mapping").
    public static func status(httpStatus: String) -> RPCError {
        let code: RPCError.Code
        switch httpStatus {
        case "400": code = .internalError
        case "401": code = .unauthenticated
        case "403": code = .permissionDenied
        case "404": code = .unimplemented
        case "429", "502", "503", "504": code = .unavailable
        default: code = .unknown
        }
        return RPCError(code: code, message: "the worker answered HTTP \(httpStatus.prefix(8))")
    }

    /// `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%`, as `%XX`.
    /// A malformed escape is kept as it stands.
    public static func percentDecoded(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let high = hexValue(iterator[iterator.startIndex]), let low = hexValue(iterator[iterator.startIndex + 1])
            {
                bytes.append(high << 4 | low)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `text` as `grpc-message` carries it: bytes outside printable ASCII, and `%`, as `%XX`.
    public static func percentEncoded(_ text: String) -> String {
        let plain = text.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E && $0 != UInt8(ascii: "%") }
        if plain { return text }
        let digits = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count * 3)
        for byte in text.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                bytes.append(byte)
            } else {
                bytes.append(contentsOf: [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// A `grpc-timeout` value for `timeout`: at most eight digits, in the finest unit that fits
    /// (rounded up, so the callee never sees a longer deadline than the caller's).
    public static func timeoutHeader(_ timeout: Duration) -> String {
        let (seconds, attoseconds) = timeout.components
        guard seconds >= 0, timeout > .zero else { return "1n" }
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if !nanos.overflow {
            let total = nanos.partialValue.addingReportingOverflow((attoseconds + 999_999_999) / 1_000_000_000)
            if !total.overflow {
                for (unit, divisor) in [("n", Int64(1)), ("u", 1_000), ("m", 1_000_000), ("S", 1_000_000_000)] {
                    let value = total.partialValue / divisor + (total.partialValue % divisor == 0 ? 0 : 1)
                    if value < 100_000_000 { return "\(value)\(unit)" }
                }
            }
        }
        let hours = min(seconds / 3600 + 1, 99_999_999)
        return "\(hours)H"
    }
}
