import Dispatch
import Foundation
import Synchronization

/// Turns SIGINT/SIGTERM into a flag that `fulcrum up` polls, and lets a start-up step be cut
/// short by a signal.
final class SignalWaiter: Sendable {
    static let interrupted = "interrupted"
    /// Kept alive for the life of the waiter; never mutated after init.
    nonisolated(unsafe) private let sources: [any DispatchSourceSignal]
    private final class Flag: Sendable {
        let value = Mutex(false)
    }

    private let flag = Flag()

    init(signals: [Int32]) {
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [flag] in flag.value.withLock { $0 = true } }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    var fired: Bool { flag.value.withLock { $0 } }

    /// Runs `body`, throwing `interrupted` instead if a signal arrives first.
    func race<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !self.fired { try await Task.sleep(for: .milliseconds(50)) }
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw OperatorError(Self.interrupted)
            }
            return value
        }
    }
}
