#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time this process has used so far (getrusage RUSAGE_SELF), to state what each request
/// cost the generator itself.
public struct ProcessCPU: Sendable, Equatable {
    /// User CPU seconds.
    public var user: Double
    /// System CPU seconds.
    public var system: Double

    /// The usage now.
    public static func now() -> ProcessCPU {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1_000_000 }
        return ProcessCPU(user: seconds(usage.ru_utime), system: seconds(usage.ru_stime))
    }

    /// The usage between `earlier` and this one.
    public func since(_ earlier: ProcessCPU) -> ProcessCPU {
        ProcessCPU(user: user - earlier.user, system: system - earlier.system)
    }
}
