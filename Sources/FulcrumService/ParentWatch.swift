import Foundation
import Logging
import ServiceLifecycle

/// Shuts its service group down when the process that supervises it goes away, so that children
/// of `fulcrum up` or of the process scaler never outlive it, even when it is killed with
/// SIGKILL.
///
/// The supervisor is the parent process, unless the environment names another one:
/// `fulcrum up` sets `FULCRUM_SUPERVISOR_PID` to its own pid for every process it starts, and
/// the balancer's process scaler passes the environment on to its workers. So under `fulcrum up`
/// a worker outlives a balancer that dies (it keeps serving and rejoins the restarted one) but
/// not `fulcrum up` itself. A process is identified by its pid and its start time, so a reused
/// pid does not pass for the supervisor.
public struct ParentWatch: Service {
    /// The environment variable naming the supervising process.
    public static let supervisorVariable = "FULCRUM_SUPERVISOR_PID"

    private let supervisor: ProcessIdentity?
    private let parent: pid_t
    private let logger: Logger

    /// Watches `FULCRUM_SUPERVISOR_PID` when it names a live process, else the current parent.
    public init(logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.parent = getppid()
        self.logger = logger
        self.supervisor = environment[Self.supervisorVariable].flatMap { pid_t($0) }.flatMap(ProcessIdentity.init(pid:))
    }

    /// Polls twice a second; returns (ending the group gracefully) once the supervisor is gone.
    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            if let supervisor {
                if !supervisor.isAlive {
                    logger.warning("supervising process \(supervisor.pid) exited: shutting down")
                    return
                }
            } else if getppid() != parent {
                logger.warning("parent process \(parent) exited: shutting down")
                return
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}

/// A process as Linux's `/proc` shows it: its pid and its start time (in clock ticks since boot),
/// which together name one process even after the pid is reused.
public struct ProcessIdentity: Sendable, Hashable, Codable {
    public let pid: pid_t
    public let startTime: UInt64

    /// The process `pid` now; nil when there is none (or it is a zombie).
    public init?(pid: pid_t) {
        guard pid > 0, let stat = Self.stat(pid), stat.state != "Z" else { return nil }
        self.pid = pid
        self.startTime = stat.startTime
    }

    public init(pid: pid_t, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// Whether this very process still runs (not exited, not a zombie, pid not reused).
    public var isAlive: Bool {
        guard let stat = Self.stat(pid) else { return false }
        return stat.state != "Z" && stat.startTime == startTime
    }

    /// The command line of the process (arguments split at NULs), empty when unreadable.
    public var arguments: [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// State letter and start time from `/proc/PID/stat`. The command name (field 2) may hold
    /// spaces and parentheses, so fields are counted after its last ')'.
    static func stat(_ pid: pid_t) -> (state: Character, startTime: UInt64)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
        guard fields.count > 19, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        return (state, start)
    }
}
