import FulcrumProtocol
import FulcrumService
import Foundation
import Logging
import Metrics
import Synchronization

/// The prediction log (`--prediction-log DIR`): a sampled share of predictions, per model, written
/// to rotating, size-bounded files in `PredictionLogFormat` — who asked, which model version and
/// files answered, the raw inputs and outputs, the timing breakdown, the status.
///
/// Logging never blocks or fails a request: a request only hands its record to a bounded
/// mailbox (at most `maxQueuedBytes` of tensors and `maxQueuedRecords` records waiting); a record
/// that does not fit is dropped and counted. One serial writer, woken at most every 20 ms, takes
/// what is waiting, encodes it and writes it in one system call (per file). A write that fails (a full disk) drops its
/// records, counts them, closes the file and warns at most once a minute; the next batch tries a
/// new file.
public final class PredictionLog: Sendable {
    public struct Settings: Sendable {
        public var directory: String
        /// Share of each model's predictions logged, in basis points (10000: all).
        public var defaultRate: Int
        /// Per-model shares overriding `defaultRate`.
        public var modelRates: [String: Int]
        /// A file is closed and a new one started once it reaches this size.
        public var maxFileBytes: Int
        /// The oldest of this frontend's files are removed beyond this many.
        public var maxFiles: Int

        public init(directory: String, defaultRate: Int = 10_000, modelRates: [String: Int] = [:], maxFileBytes: Int = 64 << 20, maxFiles: Int = 16) {
            self.directory = directory
            self.defaultRate = defaultRate
            self.modelRates = modelRates
            self.maxFileBytes = maxFileBytes
            self.maxFiles = maxFiles
        }
    }

    /// The header `fulcrum replay` sends, so its requests are recorded as replays.
    public static let replayHeader = "fulcrum-replay"
    /// Whether the prediction in progress is a replay (its call carried `replayHeader`).
    @TaskLocal static var replaying = false

    static let maxQueuedBytes = 64 << 20
    static let batchDelay: DispatchTimeInterval = .milliseconds(20)
    static let maxQueuedRecords = 4096
    static let warningInterval: Duration = .seconds(60)

    public let settings: Settings
    private let frontendID: String
    private let logger: Logger
    private let queue = DispatchQueue(label: "fulcrum.prediction-log")
    /// Records handed over and not yet taken by the writer; `scheduled`: a drain is queued.
    private let mailbox = Mutex<Mailbox>(Mailbox())
    /// Touched only on `queue`.
    private let file = Mutex<Output>(Output())
    private let written = Counter(label: "fulcrum_prediction_log_records_total", dimensions: [("outcome", "written")])
    private let dropped = Counter(label: "fulcrum_prediction_log_records_total", dimensions: [("outcome", "dropped")])
    private let failed = Counter(label: "fulcrum_prediction_log_records_total", dimensions: [("outcome", "failed")])

    private struct Mailbox {
        var records: [Fulcrum_Log_V1_PredictionRecord] = []
        var bytes = 0
        var scheduled = false
    }

    private struct Output {
        var handle: FileHandle? = nil
        var bytes = 0
        var sequence = 0
        var lastWarning: ContinuousClock.Instant? = nil
        var suppressedFailures = 0
    }

    /// Checks that the directory exists (creating it) and is writable.
    public init(settings: Settings, frontendID: String, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: settings.directory, withIntermediateDirectories: true)
        guard FileManager.default.isWritableFile(atPath: settings.directory) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: settings.directory])
        }
        self.settings = settings
        self.frontendID = frontendID.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }.reduce(into: "") { $0.append($1) }
        self.logger = logger
    }

    /// Whether this prediction of `model` is one of the sampled share.
    func sampled(_ model: String) -> Bool {
        let rate = settings.modelRates[model] ?? settings.defaultRate
        return rate >= TrafficRoute.wholeBasisPoints || (rate > 0 && QuickRandom.int(in: 0..<TrafficRoute.wholeBasisPoints) < rate)
    }

    /// Hands one prediction to the writer (or drops it when the queue is full). The record is
    /// assembled here (values that share the request's and response's storage); the writer
    /// encodes it. Only the first record into an empty mailbox schedules the writer, which
    /// `batchDelay` later takes everything waiting and writes it in one go.
    func record(
        _ request: Inference_ModelInferRequest, response: Inference_ModelInferResponse?, error: RPCErrorSummary?, replay: Bool,
        receivedUnixMicroseconds: Int64, latencyMicroseconds: Int64, tenant: String, traceID: String, modelHash: String
    ) {
        let size = MessageLimit.payloadBytes(request) + (response?.rawOutputContents.reduce(0) { $0 + $1.count } ?? 0)
        var record = Fulcrum_Log_V1_PredictionRecord()
        record.requestID = request.id
        record.traceID = traceID
        record.receivedUnixUs = receivedUnixMicroseconds
        record.tenant = tenant
        record.model = request.modelName
        record.modelVersion = response?.modelVersion ?? request.modelVersion
        record.modelHash = modelHash
        record.request = request
        if let response { record.response = response }
        record.statusCode = Int32(error?.code ?? 0)
        record.statusMessage = error?.message ?? ""
        record.frontendID = frontendID
        record.latencyUs = latencyMicroseconds
        record.replay = replay
        let (accepted, wake) = mailbox.withLock { box -> (Bool, Bool) in
            guard box.records.count < Self.maxQueuedRecords, box.bytes + size <= Self.maxQueuedBytes else { return (false, false) }
            box.records.append(record)
            box.bytes += size
            defer { box.scheduled = true }
            return (true, !box.scheduled)
        }
        guard accepted else {
            dropped.increment()
            return
        }
        // The writer drains a moment later rather than at once: at any rate above a few hundred
        // predictions a second this turns one thread wake-up and one write per record into one
        // per batch (the delay costs nothing: nobody waits for a log record).
        if wake { queue.asyncAfter(deadline: .now() + Self.batchDelay) { self.drain() } }
    }

    /// Waits for the queued records to be written and closes the file (at shutdown).
    public func close() {
        queue.sync {
            drain()
            file.withLock { output in
                try? output.handle?.close()
                output.handle = nil
            }
        }
    }

    /// On `queue`: writes whatever is waiting, batch by batch, until the mailbox is empty.
    private func drain() {
        while true {
            let batch = mailbox.withLock { box -> [Fulcrum_Log_V1_PredictionRecord] in
                let taken = box.records
                box.records.removeAll(keepingCapacity: true)
                box.bytes = 0
                if taken.isEmpty { box.scheduled = false }
                return taken
            }
            guard !batch.isEmpty else { return }
            write(batch)
        }
    }

    /// On `queue`: encodes `batch` and writes it with as few system calls as the file size
    /// limit allows (a file is full once it reaches `maxFileBytes`; the next record starts a new one).
    private func write(_ batch: [Fulcrum_Log_V1_PredictionRecord]) {
        var buffer: [UInt8] = []
        var pending = 0
        file.withLock { output in
            func flush() {
                guard !buffer.isEmpty else { return }
                do {
                    if output.handle == nil {
                        output.handle = try open(&output)
                        output.bytes = 0
                    }
                    try output.handle?.write(contentsOf: buffer)
                    output.bytes += buffer.count
                    written.increment(by: Int64(pending))
                } catch {
                    failed.increment(by: Int64(pending))
                    try? output.handle?.close()
                    output.handle = nil
                    warn(&output, error: error, records: pending)
                }
                buffer.removeAll(keepingCapacity: true)
                pending = 0
            }
            for record in batch {
                guard let framed = try? PredictionLogFormat.frame(record) else {
                    failed.increment()
                    continue
                }
                if output.handle != nil, output.bytes + buffer.count >= settings.maxFileBytes {
                    flush()
                    try? output.handle?.close()
                    output.handle = nil
                }
                buffer += framed
                pending += 1
                if output.handle == nil, buffer.count >= settings.maxFileBytes {
                    flush()
                    try? output.handle?.close()
                    output.handle = nil
                }
            }
            flush()
        }
    }

    private func warn(_ output: inout Output, error: any Error, records: Int) {
        let now = ContinuousClock.now
        if let last = output.lastWarning, now - last < Self.warningInterval {
            output.suppressedFailures += records
            return
        }
        let more = output.suppressedFailures > 0 ? " (\(output.suppressedFailures) more dropped since the last warning)" : ""
        logger.warning("prediction log: \(records) record(s) could not be written to \(settings.directory) (\(error))\(more); predictions are served, their records dropped")
        output.lastWarning = now
        output.suppressedFailures = 0
    }

    /// A new file, after removing this frontend's oldest files beyond `maxFiles - 1`.
    private func open(_ output: inout Output) throws -> FileHandle {
        let directory = URL(fileURLWithPath: settings.directory)
        let mine = PredictionLogFormat.filePrefix + frontendID + "-"
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: settings.directory)) ?? [])
            .filter { $0.hasPrefix(mine) && $0.hasSuffix(PredictionLogFormat.fileSuffix) }.sorted()
        for name in existing.dropLast(max(0, settings.maxFiles - 1)) {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        output.sequence += 1
        let name = mine + formatter.string(from: Date()) + "-" + String(format: "%06d", output.sequence) + PredictionLogFormat.fileSuffix
        let path = directory.appendingPathComponent(name).path
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        return handle
    }
}

/// A failed prediction's status for its log record.
struct RPCErrorSummary: Sendable {
    var code: Int
    var message: String
}
