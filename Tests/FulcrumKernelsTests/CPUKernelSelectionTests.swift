@testable import FulcrumKernels
import Testing

/// The choice of OpenBLAS kernels: from the CPU's flags, never weaker than they allow when the
/// operator left it to Fulcrum, never stronger (an illegal instruction) whoever asked.
@Suite("CPU kernel selection")
struct CPUKernelSelectionTests {
    static let avx512 = CPUFeatures(
        modelName: "Intel(R) Xeon(R) Processor",
        flags: ["sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
    static let avx2 = CPUFeatures(modelName: "AMD EPYC 7B13", flags: ["sse3", "avx", "avx2", "fma"])
    static let sse = CPUFeatures(modelName: "QEMU Virtual CPU", flags: ["sse3", "ssse3"])
    /// Knights Landing-like: AVX-512 foundation without the Skylake-X subsets.
    static let partial = CPUFeatures(modelName: "odd", flags: ["avx", "avx2", "fma", "avx512f", "avx512cd"])

    @Test func levelsFromFlags() {
        #expect(Self.avx512.level == .avx512)
        #expect(Self.avx2.level == .avx2)
        #expect(Self.sse.level == .baseline)
        #expect(Self.partial.level == .avx2)
        #expect(CPUFeatures(modelName: "x", flags: ["avx", "avx2"]).level == .avx, "AVX2 without FMA is not OpenBLAS's Haswell")
    }

    @Test func readsTheFirstProcessorOfProcCPUInfo() throws {
        let text = """
            processor\t: 0
            vendor_id\t: GenuineIntel
            model name\t: Intel(R) Xeon(R) Processor
            flags\t\t: fpu sse3 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl

            processor\t: 1
            model name\t: something else
            flags\t\t: fpu
            """
        let features = try #require(CPUFeatures(cpuinfo: text))
        #expect(features.modelName == "Intel(R) Xeon(R) Processor")
        #expect(features.level == .avx512)
        #expect(CPUFeatures(cpuinfo: "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n") == nil, "an arm64 cpuinfo has no x86 flags")
    }

    @Test func automaticUpgradesAWeakDetectionOnce() {
        // The CI machine's case: OpenBLAS does not know the generic Xeon and runs SSE3 kernels.
        #expect(CPUKernelSelection.decide(.automatic, features: Self.avx512, loadedCore: "Prescott", environmentCore: nil, detected: nil)
            == .restart(core: "SkylakeX", reason: "OpenBLAS detected Prescott (SSE) on a CPU with AVX-512"))
        #expect(CPUKernelSelection.decide(.automatic, features: Self.avx2, loadedCore: "Sandybridge", environmentCore: nil, detected: nil)
            == .restart(core: "Haswell", reason: "OpenBLAS detected Sandybridge (AVX) on a CPU with AVX2+FMA"))
        // After the restart: kept, whatever OpenBLAS then runs (no loop).
        guard case .keep(let reason) = CPUKernelSelection.decide(.automatic, features: Self.avx512, loadedCore: "SkylakeX", environmentCore: "SkylakeX", detected: "Prescott") else {
            Issue.record("restarted process must keep its kernels"); return
        }
        #expect(reason.contains("OpenBLAS had detected Prescott"))
        guard case .keep(let ignored) = CPUKernelSelection.decide(.automatic, features: Self.avx512, loadedCore: "Prescott", environmentCore: "SkylakeX", detected: "Prescott") else {
            Issue.record("a restart OpenBLAS ignored must not restart again"); return
        }
        #expect(ignored.contains("did not take"))
    }

    @Test func automaticKeepsAGoodOrUnknownDetection() {
        for (features, core) in [(Self.avx512, "Cooperlake"), (Self.avx512, "SkylakeX"), (Self.avx2, "Zen"), (Self.avx2, "Haswell"), (Self.sse, "Prescott")] {
            guard case .keep = CPUKernelSelection.decide(.automatic, features: features, loadedCore: core, environmentCore: nil, detected: nil) else {
                Issue.record("\(core) on \(features.modelName) should be kept"); continue
            }
        }
        guard case .keep = CPUKernelSelection.decide(.automatic, features: nil, loadedCore: "Prescott", environmentCore: nil, detected: nil) else {
            Issue.record("unknown features: OpenBLAS's choice stands"); return
        }
        guard case .keep = CPUKernelSelection.decide(.automatic, features: Self.avx512, loadedCore: "ARMV8", environmentCore: nil, detected: nil) else {
            Issue.record("a core name outside the table stands"); return
        }
    }

    @Test func anOperatorsCoreTypeIsKeptOnlyWhenTheCPURunsIt() {
        guard case .keep(let reason) = CPUKernelSelection.decide(.automatic, features: Self.avx512, loadedCore: "Prescott", environmentCore: "Prescott", detected: nil) else {
            Issue.record("the operator's OPENBLAS_CORETYPE stands"); return
        }
        #expect(reason == "set by OPENBLAS_CORETYPE=Prescott")
        guard case .refuse(let message) = CPUKernelSelection.decide(.automatic, features: Self.avx2, loadedCore: "SkylakeX", environmentCore: "SkylakeX", detected: nil) else {
            Issue.record("SkylakeX on an AVX2 CPU would stop with SIGILL"); return
        }
        #expect(message.contains("avx512f") && message.contains("Haswell"))
        guard case .refuse = CPUKernelSelection.decide(.openBLAS, features: Self.avx2, loadedCore: "SkylakeX", environmentCore: "SkylakeX", detected: nil) else {
            Issue.record("--cpu-kernels openblas must refuse an illegal core type too"); return
        }
    }

    @Test func anExplicitCoreTypeRestartsOrIsRefused() {
        #expect(CPUKernelSelection.decide(.core("SkylakeX"), features: Self.avx512, loadedCore: "Prescott", environmentCore: nil, detected: nil)
            == .restart(core: "SkylakeX", reason: "--cpu-kernels SkylakeX"))
        #expect(CPUKernelSelection.decide(.core("Prescott"), features: Self.avx512, loadedCore: "Cooperlake", environmentCore: nil, detected: nil)
            == .restart(core: "Prescott", reason: "--cpu-kernels Prescott"))
        #expect(CPUKernelSelection.decide(.core("haswell"), features: Self.avx2, loadedCore: "Haswell", environmentCore: nil, detected: nil)
            == .keep("as asked (--cpu-kernels haswell)"))
        guard case .refuse(let message) = CPUKernelSelection.decide(.core("SkylakeX"), features: Self.partial, loadedCore: "Haswell", environmentCore: nil, detected: nil) else {
            Issue.record("SkylakeX needs the Skylake-X subsets"); return
        }
        #expect(message.contains("avx512bw avx512dq avx512vl"))
    }

    @Test func requestsParse() {
        #expect(CPUKernelRequest(parsing: "auto") == .automatic)
        #expect(CPUKernelRequest(parsing: "OpenBLAS") == .openBLAS)
        #expect(CPUKernelRequest(parsing: "SkylakeX") == .core("SkylakeX"))
        #expect(CPUKernelRequest(parsing: "fastest") == nil)
    }

    /// This machine: whatever its CPU, the kernels in use after `establish` are not weaker than
    /// its flags allow (on a CPU OpenBLAS misdetects this holds only in a restarted process,
    /// which the integration tests check through the real executables).
    @Test func theRunningProcessNeverExceedsItsCPU() throws {
        guard let features = CPUFeatures.current(), let level = SIMDLevel(openBLASCore: BLASThreading.coreName) else { return }
        #expect(level <= features.level, "OpenBLAS runs \(BLASThreading.coreName) on a CPU with \(features.level)")
    }
}
