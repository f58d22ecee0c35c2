import ArgumentParser
import FulcrumCommandLine
import FulcrumKernels
import FulcrumMetrics
import FulcrumRuntime
import FulcrumService
import FulcrumWorker
import Foundation
import Logging

/// `fulcrum-worker`: one member of the compute pool.
@main
struct WorkerCommand: LayeredCommand {
    static let configuration = CommandConfiguration(
        commandName: "fulcrum-worker",
        abstract: "A Fulcrum compute-pool worker: serves the models of a Triton-layout repository over the open inference protocol (gRPC) and reports its load to the balancer.",
        discussion: layeredSettingsHelp
    )

    @Option(name: .long, help: "Model repository in Triton's layout (<repo>/<model>/config.pbtxt, <repo>/<model>/<version>/model.onnx).")
    var modelRepository: String

    @Option(name: .long, help: "Address to bind the inference service to.")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "Port for the inference service; 0 picks a free port.")
    var port: Int = 0

    @Option(name: .long, help: "host:port that frontends should use to reach this worker (default: the bound address).")
    var advertise: String?

    @Option(name: .long, help: "host:port of the balancer to join; without it the worker runs standalone.")
    var balancer: String?

    @Option(name: .long, help: "Name for logs and status; the balancer uses it as the worker id when free.")
    var name: String = ""

    @Option(name: .long, help: "Zone reported to the balancer.")
    var zone: String = ""

    @Option(name: .long, help: "Compute threads for the CPU backend (OpenBLAS). Default: all cores.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .long, help: ArgumentHelp(CPUKernelRequest.help, valueName: "auto|openblas|CORE"))
    var cpuKernels: String = "auto"

    @Option(name: .long, help: ArgumentHelp("Fulcrum's own vector kernels: matrix products with constant weights (dense layers, convolutions), packed once at load, and depthwise convolutions: auto (AVX-512 or AVX2 + FMA, from CPUID), avx512, avx2, or off (every product on OpenBLAS, depthwise convolutions on a scalar loop). A set the CPU lacks is lowered to what it has.", valueName: "auto|avx512|avx2|off"))
    var microkernels: String = "auto"

    @Option(name: .long, help: "Largest request or response message in bytes.")
    var maxMessageBytes: Int = GRPCTransport.defaultMaxMessageBytes

    @Option(name: .long, help: "Compute backend: cpu (OpenBLAS and SIMD kernels), vulkan (SPIR-V kernels on a Vulkan device: any GPU with a driver, or Mesa's lavapipe on the CPU; a model's instance_group kind KIND_CPU or KIND_GPU with gpus: [N] overrides it per model), or emulated (a REHEARSAL TOOL, not a backend: needs --profile; every execution waits the profile's s(b) and returns zeros).")
    var backend: BackendChoice = .cpu

    @Option(name: .long, help: "Vulkan device index for --backend vulkan (the order `vulkaninfo --summary` lists); the cpu backend ignores it.")
    var device: Int = 0

    @Flag(name: .long, help: "With --backend vulkan: if no device can be opened, log the reason and serve on the CPU instead of exiting with status 1.")
    var cpuFallback = false



    @Option(name: .long, help: "Rehearsal only (capacity experiments on a machine without the accelerator): emulate a device whose batch of b samples takes FIXED_MS + b × PER_SAMPLE_MS, written FIXED_MS+PER_SAMPLE_MS (e.g. 5+1). Models load and requests are validated and batched as usual, but each execution only waits that long and returns zeros; the worker reports its backend as 'emulated'. Same as --backend emulated with a profile.")
    var emulate: String?

    @Option(name: .long, help: "With --backend emulated: the service-time profile s(b) to emulate, a capacity profile JSON saved by `fulcrum plan MODEL --profile-out FILE` on a real device, or a file holding FIXED_MS+PER_SAMPLE_MS.")
    var profile: String?

    @Option(name: .long, help: "Write the bound address as JSON to this file once listening.")
    var addressFile: String?

    @Flag(name: .long, help: "Stop when the parent process exits (set by `fulcrum up`).")
    var exitWithParent = false





    @Option(name: .long, help: ArgumentHelp(TaskExecution.help, valueName: "event-loop|pool"))
    var executor: String = TaskExecution.eventLoop.rawValue

    @Option(name: .long, help: ArgumentHelp(ModelControl.help, valueName: "none|explicit"))
    var modelControl: String = ModelControl.Mode.none.rawValue

    @Option(name: .long, help: "With --model-control explicit: a file whose first line is the admin token (at least 16 bytes) that repository load/unload calls must present.")
    var adminTokenFile: String?

    @OptionGroup(title: "Logging")
    var logging: LoggingOptions

    @OptionGroup(title: "Metrics")
    var metrics: MetricsOptions

    @OptionGroup(title: "Tracing")
    var tracing: TracingOptions

    @OptionGroup(title: "Mutual TLS between the tiers")
    var tls: TLSOptions

    @Option(name: .long, help: "Config file of `option-name = value` lines (see above).")
    var config: String?

    static func main() async { await runWithLayeredSettings() }

    func validate() throws {
        _ = try modelControlSetting()
        _ = try tls.setting(listening: [host] + (balancer.flatMap(HostPort.init(parsing:)).map { [$0.host] } ?? []))
        guard TaskExecution(rawValue: executor) != nil else { throw ValidationError("--executor: '\(executor)' is not event-loop or pool") }
        guard (0...65535).contains(port) else { throw ValidationError("--port: \(port) is not a port") }
        if let advertise, HostPort(parsing: advertise) == nil { throw ValidationError("--advertise: '\(advertise)' is not host:port") }
        if let balancer, HostPort(parsing: balancer) == nil { throw ValidationError("--balancer: '\(balancer)' is not host:port") }
        try backend.validate(profile: profile, emulate: emulate)
        if let profile {
            do throws(WorkerError) { _ = try EmulationProfile(file: profile) } catch { throw ValidationError(error.message) }
        }
        guard device >= 0 else { throw ValidationError("--device must be 0 or more") }
        if let emulate, EmulationProfile(parsing: emulate) == nil {
            throw ValidationError("--emulate: '\(emulate)' is not FIXED_MS+PER_SAMPLE_MS (for example 5+1)")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard CPUKernelRequest(parsing: cpuKernels) != nil else {
            throw ValidationError("--cpu-kernels: '\(cpuKernels)' is not auto, openblas or an OpenBLAS core type (SkylakeX, Haswell, Sandybridge, Prescott, ...)")
        }
        guard Microkernels(option: microkernels) != nil else {
            throw ValidationError("--microkernels: '\(microkernels)' is not auto, avx512, avx2 or off")
        }
        guard maxMessageBytes >= 1024 else { throw ValidationError("--max-message-bytes must be at least 1024") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: modelRepository, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--model-repository: '\(modelRepository)' is not a directory")
        }
    }

    /// The `--model-control` / `--admin-token-file` pair, read and checked.
    func modelControlSetting() throws -> ModelControl {
        guard let mode = ModelControl.Mode(rawValue: modelControl) else {
            throw ValidationError("--model-control: '\(modelControl)' is not none or explicit")
        }
        do throws(ModelControlError) {
            return try ModelControl(mode: mode, tokenFile: adminTokenFile)
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        // First: this may start the process again with other OpenBLAS kernels.
        var kernels: CPUKernelChoice
        do throws(CPUKernelError) {
            kernels = try CPUKernelSelection.establish(CPUKernelRequest(parsing: cpuKernels) ?? .automatic)
            Microkernels.select(Microkernels(option: microkernels) ?? .detected)
            kernels.microkernels = Microkernels.current
        } catch {
            FileHandle.standardError.write(Data("fulcrum-worker: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        logging.bootstrap()
        if !(TaskExecution(rawValue: executor) ?? .pool).adopt() {
            Logger(label: "fulcrum").warning("--executor \(executor): Swift's global executor hook is taken; tasks stay on the cooperative pool")
        }
        var configuration = WorkerConfiguration(
            modelRepository: modelRepository,
            listen: HostPort(host: host, port: port),
            advertise: advertise.flatMap(HostPort.init(parsing:)),
            balancer: balancer.flatMap(HostPort.init(parsing:)),
            name: name,
            zone: zone,
            threads: threads,
            maxMessageBytes: maxMessageBytes,
            addressFile: addressFile,
            exitWithParent: exitWithParent,
            emulation: try emulate.flatMap(EmulationProfile.init(parsing:)) ?? profile.map { path throws in try EmulationProfile(file: path) },
            metrics: metrics.listen(defaultHost: host).map { MetricsSettings(listen: $0, registry: FulcrumMetrics.bootstrap()) }
        )
        configuration.tracing = tracing.settings
        configuration.backend = backend == .vulkan ? .vulkan(device: device) : .cpu
        configuration.cpuFallback = cpuFallback
        configuration.cpuKernels = kernels
        configuration.modelControl = try modelControlSetting()
        configuration.tls = try tls.setting(listening: [host] + (configuration.balancer.map { [$0.host] } ?? []))
        do {
            try await Worker.run(configuration)
        } catch let error as WorkerError {
            FileHandle.standardError.write(Data("fulcrum-worker: \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }
}
