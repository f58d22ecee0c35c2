import FulcrumProtocol
import FulcrumService
import Foundation
import GRPCCore

/// Reading the prediction log: every record of a file, or of a directory's files in order.
public enum PredictionLogReader {
    /// Calls `body` with each record (of `model`, when given); returns notes about files that
    /// ended inside a record. Throws on a record that cannot be read.
    public static func forEach(
        _ path: String, model: String? = nil, _ body: (Fulcrum_Log_V1_PredictionRecord) async throws -> Bool
    ) async throws -> [String] {
        var notes: [String] = []
        let files: [URL]
        do {
            files = try PredictionLogFormat.files(at: path)
        } catch {
            throw OperatorError("\(path): \(error)")
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file.path) else { throw OperatorError("cannot read \(file.path)") }
            var reader = PredictionLogFormat.Reader([UInt8](data))
            while true {
                let record: Fulcrum_Log_V1_PredictionRecord?
                do {
                    record = try reader.next()
                } catch {
                    throw OperatorError("\(file.path): \(error)")
                }
                guard let record else { break }
                if let model, record.model != model { continue }
                guard try await body(record) else { return notes }
            }
            if reader.truncated { notes.append("\(file.path) ends inside a record (its writer stopped mid-write); the records before it were read") }
        }
        return notes
    }
}

/// `fulcrum log show`: records as JSON lines.
public enum LogShow {
    public static func run(_ path: String, model: String?, limit: Int?, write: (String) -> Void) async throws -> [String] {
        var shown = 0
        return try await PredictionLogReader.forEach(path, model: model) { record in
            if let limit, shown >= limit { return false }
            let data = try JSONSerialization.data(withJSONObject: record.jsonObject, options: [.sortedKeys, .withoutEscapingSlashes])
            write(String(decoding: data, as: UTF8.self))
            shown += 1
            return true
        }
    }
}

/// `fulcrum replay`: sends logged requests to a running cluster again and reports how the answers
/// compare with the logged ones.
public enum Replay {
    public struct Options: Sendable {
        public var url: HostPort
        public var model: String?
        /// The version to send to ("": the version that answered when logged).
        public var version: String
        /// Requests per second (0: one after another as fast as answers come).
        public var rate: Double
        /// Answers whose numbers differ by at most this much count as "within tolerance".
        public var tolerance: Double
        public var timeout: Duration
        public var edgeCA: String?
        public var apiKey: String?

        public init(url: HostPort, model: String?, version: String, rate: Double, tolerance: Double, timeout: Duration, edgeCA: String?, apiKey: String?) {
            self.url = url
            self.model = model
            self.version = version
            self.rate = rate
            self.tolerance = tolerance
            self.timeout = timeout
            self.edgeCA = edgeCA
            self.apiKey = apiKey
        }
    }

    /// One model's outcome.
    public struct Summary: Sendable {
        public var model: String
        public var replayed = 0
        public var identical = 0
        public var withinTolerance = 0
        public var changed = 0
        public var failed = 0
        /// Logged predictions that had failed (not replayed).
        public var skipped = 0
        public var maxAbsError = 0.0
        /// The largest differences: request id, logged version → replayed version, max abs error, note.
        public var worst: [(id: String, versions: String, maxAbsError: Double, note: String)] = []
    }

    public static func run(_ path: String, options: Options) async throws -> (summaries: [Summary], notes: [String]) {
        try await withGRPCClient(options.url, edge: options.edgeCA.map { .caFile($0) }) { client in
            let service = Inference_GRPCInferenceService.Client(wrapping: client)
            var callOptions = CallOptions.defaults
            callOptions.timeout = options.timeout
            var metadata: Metadata = [:]
            if let apiKey = options.apiKey { metadata.addString("Bearer \(apiKey)", forKey: "authorization") }
            // Marks these calls as replays in the log, so a later replay does not send them again.
            metadata.addString("1", forKey: "fulcrum-replay")
            var summaries: [String: Summary] = [:]
            let clock = ContinuousClock()
            let started = clock.now
            var sent = 0
            let notes = try await PredictionLogReader.forEach(path, model: options.model) { record in
                guard !record.replay else { return true }
                var summary = summaries[record.model] ?? Summary(model: record.model)
                defer { summaries[record.model] = summary }
                guard record.statusCode == 0, record.hasResponse else {
                    summary.skipped += 1
                    return true
                }
                if options.rate > 0 {
                    let due = started + .nanoseconds(Int64(Double(sent) / options.rate * 1e9))
                    if due > clock.now { try await Task.sleep(until: due, clock: clock) }
                }
                sent += 1
                var request = record.request
                request.modelName = record.model
                request.modelVersion = options.version.isEmpty ? record.modelVersion : options.version
                summary.replayed += 1
                let answer: Inference_ModelInferResponse
                do {
                    answer = try await service.modelInfer(request, metadata: metadata, options: callOptions)
                } catch {
                    summary.failed += 1
                    remember(&summary, id: record.requestID, versions: "\(record.modelVersion) → \(request.modelVersion)", error: .infinity, note: "failed: \(error)")
                    return true
                }
                let comparison = AnswerComparison(served: record.response, shadow: answer)
                let versions = "\(record.modelVersion) → \(answer.modelVersion)"
                if comparison.identical {
                    summary.identical += 1
                } else if !comparison.incomparable && comparison.maxAbsError <= options.tolerance {
                    summary.withinTolerance += 1
                    summary.maxAbsError = max(summary.maxAbsError, comparison.maxAbsError)
                } else {
                    summary.changed += 1
                    summary.maxAbsError = max(summary.maxAbsError, comparison.maxAbsError)
                    let note = comparison.incomparable ? "outputs differ in name, type, shape or BYTES" :
                        (comparison.argmaxRows > comparison.argmaxAgreed ? "argmax changed in \(comparison.argmaxRows - comparison.argmaxAgreed) of \(comparison.argmaxRows) rows" : "")
                    remember(&summary, id: record.requestID, versions: versions, error: comparison.incomparable ? .infinity : comparison.maxAbsError, note: note)
                }
                return true
            }
            return (summaries.keys.sorted().compactMap { summaries[$0] }, notes)
        }
    }

    static let worstKept = 5

    private static func remember(_ summary: inout Summary, id: String, versions: String, error: Double, note: String) {
        summary.worst.append((id, versions, error, note))
        summary.worst.sort { $0.maxAbsError > $1.maxAbsError }
        if summary.worst.count > worstKept { summary.worst.removeLast() }
    }

    /// The report: per model, how many answers were identical, within the tolerance, changed or
    /// failed, and the worst cases.
    public static func report(_ summaries: [Summary], tolerance: Double, json: Bool) -> String {
        if json {
            let objects: [[String: Any]] = summaries.map { s in
                [
                    "model": s.model, "replayed": s.replayed, "identical": s.identical, "within_tolerance": s.withinTolerance,
                    "changed": s.changed, "failed": s.failed, "skipped": s.skipped, "max_abs_error": s.maxAbsError.isFinite ? s.maxAbsError : -1,
                    "worst": s.worst.map { ["request_id": $0.id, "versions": $0.versions, "max_abs_error": $0.maxAbsError.isFinite ? $0.maxAbsError : -1, "note": $0.note] },
                ]
            }
            let data = (try? JSONSerialization.data(withJSONObject: ["tolerance": tolerance, "models": objects], options: [.sortedKeys, .prettyPrinted])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
        guard !summaries.isEmpty else { return "no logged predictions to replay" }
        var lines: [String] = []
        for s in summaries {
            let percent = { (n: Int) in s.replayed == 0 ? "0%" : String(format: "%.1f%%", Double(n) / Double(s.replayed) * 100) }
            lines.append(
                "\(s.model): \(s.replayed) replayed — \(s.identical) identical (\(percent(s.identical))), \(s.withinTolerance) within \(tolerance) (\(percent(s.withinTolerance))), "
                    + "\(s.changed) changed (\(percent(s.changed))), \(s.failed) failed\(s.skipped > 0 ? "; \(s.skipped) logged failures not replayed" : "")")
            if s.changed + s.withinTolerance > 0 { lines.append("  largest difference: \(s.maxAbsError.isFinite ? String(format: "%.6g", s.maxAbsError) : "not comparable")") }
            for worst in s.worst {
                let error = worst.maxAbsError.isFinite ? String(format: "max abs error %.6g", worst.maxAbsError) : "not comparable"
                lines.append("  request '\(worst.id)' (version \(worst.versions)): \(error)\(worst.note.isEmpty ? "" : "; \(worst.note)")")
            }
        }
        return lines.joined(separator: "\n")
    }
}
