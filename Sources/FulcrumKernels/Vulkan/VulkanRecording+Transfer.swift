extension VulkanRecording {
    /// Records a copy of the first `words` 4-byte words of `source` into `destination` (a staging
    /// buffer's input going up, or a result coming down), ordered after every earlier command.
    public func transfer(from source: VulkanBuffer, to destination: VulkanBuffer, words: Int) throws {
        guard words >= 0, words <= source.count, words <= destination.count else {
            throw VulkanError(
                .invalidArgument, "transfer of \(words) words between buffers of \(source.count) and \(destination.count)")
        }
        guard words > 0 else { return }
        copy(from: source, to: destination, bytes: words * 4)
    }
}
