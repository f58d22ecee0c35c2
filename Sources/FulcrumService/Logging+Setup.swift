import Foundation
import Logging
import OTel
import Tracing

/// Process-wide logging set-up shared by every executable: lines on standard error (standard
/// output stays free for the CLI's own output), human-readable or JSON (one object a line). A
/// log line written inside a traced request carries its `trace_id`, `span_id` (and, from
/// swift-otel's tracer, `trace_flags`).
public enum LoggingSetup {
    /// How log lines look.
    public enum Format: String, Sendable, CaseIterable {
        /// `2026-11-24T12:00:00+0000 info fulcrum.worker: [FulcrumWorker] message`.
        case text
        /// `{"time":"…","level":"info","label":"fulcrum.worker","source":"FulcrumWorker","message":"…",…}`.
        case json
    }

    /// The metadata of the current span for every log line: swift-otel's provider (`trace_id`,
    /// `span_id`, `trace_flags`) and one for `--trace-file`'s tracer (`trace_id`, `span_id`).
    public static var traceMetadataProvider: Logger.MetadataProvider? {
        let fileTracerMetadata = Logger.MetadataProvider {
            guard let trace = InstrumentationContext.current?.traceContext else { return [:] }
            return ["trace_id": .string(trace.traceID), "span_id": .string(trace.spanID)]
        }
        return .multiplex([OTel.makeLoggingMetadataProvider(), fileTracerMetadata])
    }

    /// Installs the stderr handler at `level` in `format`. Call once, first thing in `main`.
    public static func bootstrap(level: Logger.Level, format: Format = .text) {
        let traceMetadata = traceMetadataProvider
        switch format {
        case .text:
            LoggingSystem.bootstrap({ label, provider in
                var handler = StreamLogHandler.standardError(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: traceMetadata)
        case .json:
            LoggingSystem.bootstrap({ label, provider in
                var handler = JSONLogHandler(label: label, metadataProvider: provider)
                handler.logLevel = level
                return handler
            }, metadataProvider: traceMetadata)
        }
    }
}

/// A swift-log handler that writes one JSON object per line to standard error: `time` (ISO 8601,
/// UTC, milliseconds), `level`, `label`, `source`, `message`, then the metadata's keys.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        let line = Self.line(
            time: Date(), level: event.level, label: label, source: event.source, message: "\(event.message)", metadata: merged)
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// The JSON object for one log event (no newline).
    public static func line(
        time: Date, level: Logger.Level, label: String, source: String, message: String, metadata: Logger.Metadata
    ) -> String {
        var fields = [
            "\"time\":\(JSONText.string(timestamp(time)))",
            "\"level\":\(JSONText.string(level.rawValue))",
            "\"label\":\(JSONText.string(label))",
            "\"source\":\(JSONText.string(source))",
            "\"message\":\(JSONText.string(message))",
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) where !["time", "level", "label", "source", "message"].contains(key) {
            fields.append("\(JSONText.string(key)):\(json(value))")
        }
        return "{\(fields.joined(separator: ","))}"
    }

    private static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): JSONText.string(s)
        case .stringConvertible(let c): JSONText.string(c.description)
        case .array(let a): "[\(a.map(json).joined(separator: ","))]"
        case .dictionary(let d): "{\(d.sorted { $0.key < $1.key }.map { "\(JSONText.string($0.key)):\(json($0.value))" }.joined(separator: ","))}"
        }
    }

    private static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        let millis = Int((date.timeIntervalSince1970 - Double(seconds)) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }
}

extension Logger.Level {
    /// Parses a level name as given on the command line (`trace` … `critical`).
    public init?(name: String) {
        self.init(rawValue: name.lowercased())
    }
}
