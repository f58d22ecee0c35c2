import Foundation

/// A service process started by `fulcrum up`: its name, the `Process`, and the file where it
/// writes its bound addresses.
final class ChildProcess: @unchecked Sendable {
    let name: String
    let process: Process
    let addressFile: String

    /// Starts `executable` with `arguments`; its standard error goes to ours (logs), its standard
    /// output is discarded.
    init(name: String, executable: URL, arguments: [String], addressFile: String, environment: [String: String] = [:]) throws {
        self.name = name
        self.addressFile = addressFile
        try? FileManager.default.removeItem(atPath: addressFile)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments + ["--address-file", addressFile, "--exit-with-parent"]
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.standardError
        self.process = process
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Waits until the child has written its address file; fails if it exits first or `timeout` passes.
    func waitForAddress(timeout: Duration) async throws -> [String: String] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let entries = AddressFileReader.read(addressFile) { return entries }
            if !process.isRunning {
                throw OperatorError("\(name) failed to start: it exited with status \(process.terminationStatus) (its log is above)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw OperatorError("\(name) did not start listening within \(timeout)")
    }

    /// Sends SIGTERM.
    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    /// Sends SIGKILL.
    func forceKill() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Reads the JSON address files the services write (see FulcrumService.AddressFile).
enum AddressFileReader {
    static func read(_ path: String) -> [String: String]? {
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: String]
        else { return nil }
        return object
    }
}

/// An operator command failure, with a message the operator can act on.
public struct OperatorError: Error, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
