import Logging

/// Process-wide logging set-up shared by every executable: human-readable lines on standard
/// error (standard output stays free for the CLI's own output).
public enum LoggingSetup {
    /// Installs the stderr handler at `level`. Call once, first thing in `main`.
    public static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level {
    /// Parses a level name as given on the command line (`trace` … `critical`).
    public init?(name: String) {
        self.init(rawValue: name.lowercased())
    }
}
