import Foundation
import Synchronization

/// Appends each finished span to a file as one JSON line (`FinishedSpan.jsonLine`) with a single
/// `write` on a descriptor opened with `O_APPEND`, so a crash loses no span that ended and several
/// processes (`fulcrum up --trace-file`) can share one file without interleaving lines. Meant for
/// rehearsals, tests and debugging; an OpenTelemetry collector (`--otlp-endpoint`, swift-otel) is
/// the production path.
public final class SpanFileExporter: SpanExporter {
    private let descriptor: Mutex<Int32>

    /// Opens (creating) `path` for appending; throws when it cannot be opened.
    public init(path: String) throws(TracingError) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TracingError("--trace-file: cannot open '\(path)' for appending: \(String(cString: strerror(errno)))")
        }
        descriptor = Mutex(fd)
    }

    deinit {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    public func export(_ span: FinishedSpan) {
        var line = span.jsonLine
        line.append("\n")
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    /// Every line is written when its span ends.
    public func flush() {}
}

/// A tracing set-up error: a message that names the option and what is wrong.
public struct TracingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
