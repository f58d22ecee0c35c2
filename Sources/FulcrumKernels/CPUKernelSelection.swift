import CBLAS
import Foundation

/// The x86-64 vector instruction levels OpenBLAS writes kernels for, weakest first.
public enum SIMDLevel: Int, Comparable, Sendable, CustomStringConvertible {
    case baseline, avx, avx2, avx512

    public static func < (lhs: SIMDLevel, rhs: SIMDLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .baseline: "SSE"
        case .avx: "AVX"
        case .avx2: "AVX2+FMA"
        case .avx512: "AVX-512"
        }
    }

    /// The `/proc/cpuinfo` flags a CPU must list for this level (the kernel clears them when the
    /// operating system does not save the registers, so the flags are what may be used).
    public var requiredFlags: [String] {
        switch self {
        case .baseline: []
        case .avx: ["avx"]
        case .avx2: ["avx", "avx2", "fma"]
        case .avx512: ["avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        }
    }

    /// The OpenBLAS core type whose kernels use this level best (what Fulcrum asks for).
    var preferredCore: String? {
        switch self {
        case .baseline: nil
        case .avx: "Sandybridge"
        case .avx2: "Haswell"
        case .avx512: "SkylakeX"
        }
    }

    /// The level an OpenBLAS core type's kernels need (nil: a name this table does not know).
    public init?(openBLASCore name: String) {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": self = .avx512
        case "haswell", "zen", "excavator", "steamroller": self = .avx2
        case "sandybridge", "bulldozer", "piledriver": self = .avx
        case "prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron(sse3)",
             "barcelona", "bobcat", "athlon", "banias", "northwood", "coppermine", "katmai", "unknown":
            self = .baseline
        default: return nil
        }
    }
}

/// What a CPU offers, from `/proc/cpuinfo` (its first processor; all cores of a machine match).
public struct CPUFeatures: Sendable, Equatable {
    public var modelName: String
    public var flags: Set<String>

    public init(modelName: String, flags: Set<String>) {
        self.modelName = modelName
        self.flags = flags
    }

    /// The machine's features; nil where `/proc/cpuinfo` lists no x86 flags (another
    /// architecture or operating system: OpenBLAS's own choice then stands).
    public static func current() -> CPUFeatures? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        return CPUFeatures(cpuinfo: text)
    }

    public init?(cpuinfo text: String) {
        var model = "unknown"
        var flags: Set<String>?
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else {
                if flags != nil { break }  // the blank line after the first processor
                continue
            }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if key == "model name", model == "unknown" { model = value }
            if key == "flags", flags == nil { flags = Set(value.split(separator: " ").map(String.init)) }
        }
        guard let flags else { return nil }
        self.init(modelName: model, flags: flags)
    }

    /// The strongest level whose flags are all present.
    public var level: SIMDLevel {
        [SIMDLevel.avx512, .avx2, .avx].first { $0.requiredFlags.allSatisfy(flags.contains) } ?? .baseline
    }
}

/// How the operator wants the CPU kernels chosen (`--cpu-kernels`).
public enum CPUKernelRequest: Sendable, Equatable, CustomStringConvertible {
    /// From the CPU's features; an `OPENBLAS_CORETYPE` set by the operator is kept (checked).
    case automatic
    /// Whatever OpenBLAS chose when it loaded (checked only against illegal instructions).
    case openBLAS
    /// This OpenBLAS core type, if the CPU can run it.
    case core(String)

    public static let help = "CPU kernels: auto (from the CPU's features: OpenBLAS's AVX-512, AVX2 or AVX kernels, whatever its own detection picked; an OPENBLAS_CORETYPE set in the environment is kept), openblas (OpenBLAS's own detection), or an OpenBLAS core type such as SkylakeX, Haswell, Sandybridge, Prescott (refused when the CPU lacks its instructions). The choice is logged and reported to the balancer."

    public init?(parsing text: String) {
        switch text.lowercased() {
        case "auto": self = .automatic
        case "openblas": self = .openBLAS
        default:
            guard SIMDLevel(openBLASCore: text) != nil else { return nil }
            self = .core(text)
        }
    }

    public var description: String {
        switch self {
        case .automatic: "auto"
        case .openBLAS: "openblas"
        case .core(let name): name
        }
    }
}

/// The kernels a process computes with, and why.
public struct CPUKernelChoice: Sendable, CustomStringConvertible {
    /// The OpenBLAS core type in use (`openblas_get_corename`).
    public var core: String
    public var level: SIMDLevel?
    public var features: CPUFeatures?
    public var reason: String
    /// `OPENBLAS_CORETYPE` as the operator set it (nil: unset, or set by Fulcrum's restart).
    public var operatorCore: String?

    /// Fulcrum's own microkernels for products with constant weights (`Microkernels`).
    public var microkernels = Microkernels.current

    /// `OpenBLAS SkylakeX (AVX-512)`.
    public var kernels: String { "OpenBLAS \(core)" + (level.map { " (\($0))" } ?? "") }

    /// What the worker reports to the balancer (`fulcrum status`'s DEVICE column):
    /// `OpenBLAS SkylakeX (AVX-512) + Fulcrum AVX-512`.
    public var driver: String { kernels + (microkernels == .off ? "" : " + Fulcrum \(microkernels)") }

    public var description: String { "\(kernels): \(reason); Fulcrum microkernels: \(microkernels)" }
}

/// A refusal to start: the requested kernels would stop the process with an illegal instruction.
public struct CPUKernelError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Chooses OpenBLAS's kernels from the CPU's features, whatever launched the process.
///
/// OpenBLAS picks its kernels once, when the library loads (before `main`), from the CPU's
/// family and model numbers; on a CPU it does not know (a virtual machine whose model is generic)
/// it falls back to its SSE3 `Prescott` kernels, 4–7× slower than the AVX-512 ones on such a
/// machine. It reads `OPENBLAS_CORETYPE` only then, so the only way to change the choice is to
/// start again: `establish` re-executes the process (same pid, same arguments) with the variable
/// set when OpenBLAS's choice is weaker than the CPU's flags allow, once.
public enum CPUKernelSelection {
    /// Set in the re-executed process: the core OpenBLAS had detected by itself.
    static let restartMarker = "FULCRUM_OPENBLAS_DETECTED"

    enum Step: Equatable {
        case keep(String)
        case restart(core: String, reason: String)
        case refuse(String)
    }

    /// The decision, free of side effects. `loadedCore`: what OpenBLAS runs now;
    /// `environmentCore`: `OPENBLAS_CORETYPE` as found; `detected`: the marker of a restart.
    static func decide(
        _ request: CPUKernelRequest, features: CPUFeatures?, loadedCore: String, environmentCore: String?, detected: String?
    ) -> Step {
        let loadedLevel = SIMDLevel(openBLASCore: loadedCore)
        // OpenBLAS checks the CPU itself when it detects; a core type forced from outside is not.
        if let environmentCore, let features, let loadedLevel, loadedLevel > features.level {
            let missing = loadedLevel.requiredFlags.filter { !features.flags.contains($0) }
            return .refuse("OPENBLAS_CORETYPE=\(environmentCore) needs \(loadedLevel) (\(missing.joined(separator: " ")) missing from /proc/cpuinfo on this \(features.modelName)); it would stop the process with an illegal instruction. Unset OPENBLAS_CORETYPE or choose a core type this CPU supports (\(features.level.preferredCore ?? "Prescott")).")
        }
        if let detected {
            if loadedCore.lowercased() == environmentCore?.lowercased() {
                let why = if case .core(let name) = request { "as asked (--cpu-kernels \(name))" } else {
                    "chosen from the CPU's features (\(features?.level.description ?? "unknown"))"
                }
                return .keep("\(why); OpenBLAS had detected \(detected) by itself")
            }
            return .keep("OpenBLAS did not take OPENBLAS_CORETYPE=\(environmentCore ?? "") and runs \(loadedCore) (it had detected \(detected))")
        }
        switch request {
        case .openBLAS:
            return .keep(environmentCore.map { "set by OPENBLAS_CORETYPE=\($0)" } ?? "OpenBLAS's own detection (--cpu-kernels openblas)")
        case .core(let name):
            if let features, let wanted = SIMDLevel(openBLASCore: name), wanted > features.level {
                let missing = wanted.requiredFlags.filter { !features.flags.contains($0) }
                return .refuse("--cpu-kernels \(name) needs \(wanted) (\(missing.joined(separator: " ")) missing from /proc/cpuinfo on this \(features.modelName)); this CPU supports up to \(features.level) (\(features.level.preferredCore ?? "Prescott")).")
            }
            if loadedCore.lowercased() == name.lowercased() { return .keep("as asked (--cpu-kernels \(name))") }
            return .restart(core: name, reason: "--cpu-kernels \(name)")
        case .automatic:
            if let environmentCore {
                if loadedCore.lowercased() == environmentCore.lowercased() { return .keep("set by OPENBLAS_CORETYPE=\(environmentCore)") }
                return .keep("OPENBLAS_CORETYPE=\(environmentCore) is set, and OpenBLAS runs \(loadedCore) with it")
            }
            guard let features else { return .keep("OpenBLAS's own detection (the CPU's features are not readable here)") }
            guard let loadedLevel else { return .keep("OpenBLAS's own detection (\(loadedCore) is not a core type Fulcrum knows)") }
            if loadedLevel >= features.level {
                return .keep("OpenBLAS's own detection, which matches the CPU's \(features.level)")
            }
            guard let better = features.level.preferredCore else { return .keep("OpenBLAS's own detection") }
            return .restart(core: better, reason: "OpenBLAS detected \(loadedCore) (\(loadedLevel)) on a CPU with \(features.level)")
        }
    }

    /// Applies `request` to this process: returns the kernels in use, re-executes the process
    /// with `OPENBLAS_CORETYPE` set (and does not return) when OpenBLAS's choice must change, or
    /// throws when the kernels in use or asked for need instructions the CPU lacks. Call it first
    /// thing in `main`, before threads or files matter; a failed re-execution keeps OpenBLAS's
    /// choice and says so.
    public static func establish(_ request: CPUKernelRequest) throws(CPUKernelError) -> CPUKernelChoice {
        let environment = ProcessInfo.processInfo.environment
        let features = CPUFeatures.current()
        let loaded = BLASThreading.coreName
        let detected = environment[restartMarker]
        if detected != nil { unsetenv(restartMarker) }
        func choice(_ reason: String) -> CPUKernelChoice {
            CPUKernelChoice(
                core: loaded, level: SIMDLevel(openBLASCore: loaded), features: features, reason: reason,
                operatorCore: detected == nil ? environment["OPENBLAS_CORETYPE"] : nil)
        }
        switch decide(request, features: features, loadedCore: loaded, environmentCore: environment["OPENBLAS_CORETYPE"], detected: detected) {
        case .keep(let reason):
            return choice(reason)
        case .refuse(let message):
            throw CPUKernelError(message: message)
        case .restart(let core, let reason):
            setenv("OPENBLAS_CORETYPE", core, 1)
            setenv(restartMarker, loaded, 1)
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            let failure = String(cString: strerror(errno))
            unsetenv("OPENBLAS_CORETYPE")
            unsetenv(restartMarker)
            return choice("\(reason), but restarting with OPENBLAS_CORETYPE=\(core) failed (\(failure)); OpenBLAS's own choice stays")
        }
    }
}
