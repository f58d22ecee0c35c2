/// A load test that cannot run as asked, with a message that says what to change.
public struct LoadError: Error, Sendable, CustomStringConvertible {
    /// What went wrong and what to do about it.
    public var message: String

    /// An error with the given message.
    public init(_ message: String) {
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
