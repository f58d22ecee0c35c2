import Synchronization

/// A value that is set once and awaited by others: for example the address a server bound,
/// which the balancer link needs before it can join.
public final class OnceValue<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var waiters: [CheckedContinuation<Value, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Sets the value and wakes every waiter; later calls are ignored.
    public func set(_ value: Value) {
        let waiters = state.withLock { s -> [CheckedContinuation<Value, Never>] in
            guard s.value == nil else { return [] }
            s.value = value
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    /// The value, waiting until it is set.
    public var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { s -> Value? in
                    if let value = s.value { return value }
                    s.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    /// The value if it is already set.
    public var current: Value? { state.withLock { $0.value } }
}
