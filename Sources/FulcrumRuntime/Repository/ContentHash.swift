/// FNV-1a, 64-bit: a fast, dependency-free fingerprint of a model's files (not cryptographic).
/// Two loads of the same bytes give the same digest, so responses can say exactly which model
/// answered.
struct ContentHash {
    private(set) var state: UInt64 = 0xcbf2_9ce4_8422_2325

    /// Mixes `bytes` into the digest.
    mutating func update(_ bytes: some Sequence<UInt8>) {
        var h = state
        for byte in bytes {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01b3
        }
        state = h
    }

    /// The digest as 16 lowercase hex digits.
    var hex: String {
        let digits = String(state, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
