import FulcrumProtocol
import Foundation
import SwiftProtobuf

/// The prediction log's file format: records one after another, each a varint byte length and a
/// `PredictionRecord` (protobuf's length-delimited stream).
public enum PredictionLogFormat {
    /// Files the frontend writes are named `predictions-<frontend>-<time>-<n>.log`.
    public static let filePrefix = "predictions-"
    public static let fileSuffix = ".log"
    /// No record is larger (the frontend's message limits keep them far below).
    public static let maxRecordBytes = 1 << 30

    /// The record's bytes with their length in front.
    public static func frame(_ record: Fulcrum_Log_V1_PredictionRecord) throws -> [UInt8] {
        let body: [UInt8] = try record.serializedBytes()
        var framed: [UInt8] = []
        framed.reserveCapacity(body.count + 5)
        var length = UInt64(body.count)
        repeat {
            let low = UInt8(length & 0x7f)
            length >>= 7
            framed.append(length == 0 ? low : low | 0x80)
        } while length > 0
        framed.append(contentsOf: body)
        return framed
    }

    public struct DecodingError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads the records of one file's bytes in order.
    public struct Reader {
        private let bytes: [UInt8]
        private var offset = 0
        /// Whether the data ended inside a record (a file whose writer stopped mid-write).
        public private(set) var truncated = false

        public init(_ bytes: [UInt8]) {
            self.bytes = bytes
        }

        /// The next record, nil at the end (or at a truncated last record: see `truncated`).
        /// Throws when a record is not a PredictionRecord or its length is impossible.
        public mutating func next() throws -> Fulcrum_Log_V1_PredictionRecord? {
            guard offset < bytes.count else { return nil }
            var length: UInt64 = 0
            var shift: UInt64 = 0
            var position = offset
            while true {
                guard position < bytes.count else {
                    truncated = true
                    return nil
                }
                let byte = bytes[position]
                position += 1
                guard shift < 64 else { throw DecodingError(description: "record at byte \(offset): its length is not a valid varint") }
                length |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            guard length <= UInt64(PredictionLogFormat.maxRecordBytes) else {
                throw DecodingError(description: "record at byte \(offset) claims \(length) bytes, more than a record can hold")
            }
            guard UInt64(bytes.count - position) >= length else {
                truncated = true
                return nil
            }
            let end = position + Int(length)
            do {
                let record = try bytes[position..<end].withUnsafeBytes { try Fulcrum_Log_V1_PredictionRecord(serializedBytes: Array($0)) }
                offset = end
                return record
            } catch {
                throw DecodingError(description: "record at byte \(offset) is not a prediction record: \(error)")
            }
        }
    }

    /// The log files in `path` (a file, or a directory whose `predictions-*.log` files are read
    /// oldest first by name).
    public static func files(at path: String) throws -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DecodingError(description: "'\(path)' does not exist")
        }
        guard isDirectory.boolValue else { return [URL(fileURLWithPath: path)] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
            .filter { $0.hasPrefix(filePrefix) && $0.hasSuffix(fileSuffix) }.sorted()
        return names.map { URL(fileURLWithPath: path).appendingPathComponent($0) }
    }
}
