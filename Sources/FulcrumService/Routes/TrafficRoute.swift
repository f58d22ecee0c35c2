/// Which versions of a model answer the requests that name no version: weighted shares (a
/// canary, an A/B split) and rules that pin a version by a request parameter. A request that
/// names a version explicitly never consults a route.
///
/// A pure value shared by the balancer (which checks, stores and publishes routes), the
/// frontends (which apply them per request) and the CLI (which parses them from its flags).
public struct TrafficRoute: Sendable, Equatable, Codable {
    /// One version's share, in hundredths of a percent.
    public struct Split: Sendable, Equatable, Codable {
        public var version: String
        public var basisPoints: Int

        public init(version: String, basisPoints: Int) {
            self.version = version
            self.basisPoints = basisPoints
        }
    }

    /// Requests whose parameter `parameter` has the value `value` go to `version`.
    public struct Pin: Sendable, Equatable, Codable {
        public var parameter: String
        public var value: String
        public var version: String

        public init(parameter: String, value: String, version: String) {
            self.parameter = parameter
            self.value = value
            self.version = version
        }
    }

    /// Why a route was refused.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public static let wholeBasisPoints = 10_000
    /// Bounds on what one route may hold (it is checked at the balancer and again in frontends).
    public static let maxSplits = 16
    public static let maxPins = 256
    public static let maxFieldBytes = 256
    public static let maxShadows = 4

    public var model: String
    public var splits: [Split]
    public var pins: [Pin]
    /// Increases with every change of this model's route; 0 until the balancer stores it.
    public var revision: UInt64
    public var updatedUnixMs: Int64
    public var note: String
    /// The progressive rollout driving this route (running), or how the last one ended.
    public var rollout: Rollout?
    /// Versions that receive a copy of a share of the requests, compared and never returned.
    public var shadows: [Split]

    public init(
        model: String, splits: [Split], pins: [Pin] = [], shadows: [Split] = [], revision: UInt64 = 0, updatedUnixMs: Int64 = 0,
        note: String = "", rollout: Rollout? = nil
    ) {
        self.model = model
        self.splits = splits
        self.pins = pins
        self.shadows = shadows
        self.revision = revision
        self.updatedUnixMs = updatedUnixMs
        self.note = note
        self.rollout = rollout
    }

    /// The version share of a running rollout's version, if one is running.
    public var rollingOut: String? { rollout?.state == .running ? rollout?.version : nil }

    /// The share of `version`, in basis points.
    public func share(of version: String) -> Int { splits.first { $0.version == version }?.basisPoints ?? 0 }

    // MARK: Checks

    /// Refuses a route that cannot be applied: shares that do not add up to 100 %, a version
    /// listed twice or not a version number, empty or oversized fields, too many entries.
    public func check() throws(Refusal) {
        guard !model.isEmpty, model.utf8.count <= Self.maxFieldBytes else {
            throw Refusal("a route needs a model name of 1 to \(Self.maxFieldBytes) bytes")
        }
        guard !splits.isEmpty else { throw Refusal("route for '\(model)': give at least one version and its weight") }
        guard splits.count <= Self.maxSplits else { throw Refusal("route for '\(model)': at most \(Self.maxSplits) versions") }
        guard pins.count <= Self.maxPins else { throw Refusal("route for '\(model)': at most \(Self.maxPins) pins") }
        var seen = Set<String>()
        var total = 0
        for split in splits {
            try Self.checkVersion(split.version, model: model)
            guard seen.insert(split.version).inserted else {
                throw Refusal("route for '\(model)': version \(split.version) is listed twice")
            }
            guard (0...Self.wholeBasisPoints).contains(split.basisPoints) else {
                throw Refusal("route for '\(model)': version \(split.version)'s weight must be between 0 and 100")
            }
            total += split.basisPoints
        }
        guard total == Self.wholeBasisPoints else {
            throw Refusal("route for '\(model)': the weights add up to \(Self.percent(total))%, not 100%")
        }
        for pin in pins {
            guard !pin.parameter.isEmpty, pin.parameter.utf8.count <= Self.maxFieldBytes, pin.value.utf8.count <= Self.maxFieldBytes else {
                throw Refusal("route for '\(model)': a pin needs a parameter name of 1 to \(Self.maxFieldBytes) bytes and a value of at most \(Self.maxFieldBytes)")
            }
            try Self.checkVersion(pin.version, model: model)
        }
        var pinned = Set<String>()
        for pin in pins where !pinned.insert(pin.parameter + "\u{0}" + pin.value).inserted {
            throw Refusal("route for '\(model)': \(pin.parameter)=\(pin.value) is pinned twice")
        }
        guard shadows.count <= Self.maxShadows else { throw Refusal("route for '\(model)': at most \(Self.maxShadows) shadow versions") }
        let answering = Set(splits.filter { $0.basisPoints > 0 }.map(\.version) + pins.map(\.version))
        var shadowed = Set<String>()
        for shadow in shadows {
            try Self.checkVersion(shadow.version, model: model)
            guard !answering.contains(shadow.version) else {
                throw Refusal("route for '\(model)': version \(shadow.version) answers requests; a shadow must be a version that does not")
            }
            guard shadowed.insert(shadow.version).inserted else {
                throw Refusal("route for '\(model)': shadow version \(shadow.version) is listed twice")
            }
            guard (1...Self.wholeBasisPoints).contains(shadow.basisPoints) else {
                throw Refusal("route for '\(model)': shadow version \(shadow.version)'s share must be above 0% and at most 100%")
            }
        }
    }

    /// Every version the route names (shares, pins and shadows).
    public var versions: Set<String> { Set(splits.map(\.version) + pins.map(\.version) + shadows.map(\.version)) }

    private static func checkVersion(_ version: String, model: String) throws(Refusal) {
        guard let number = Int64(version), number > 0, String(number) == version else {
            throw Refusal("route for '\(model)': '\(version)' is not a version number (1, 2, ...)")
        }
    }

    // MARK: Choosing a version

    /// The versions to try for one request, best first. A pin that matches the request's
    /// parameters comes first; then the version its bucket falls in; then the other versions
    /// with a share, largest share first (where the request goes when its version fails on every
    /// worker). Versions not in `served` are left out; an empty answer means the route names no
    /// served version and the request should be served as if there were no route.
    ///
    /// `bucket` is the request's place in [0, 10000): `bucket(model:requestID:)` for requests
    /// with an id, so a retried request (same id) lands on the same version.
    public func preference(bucket: Int, parameters: (String) -> String?, served: Set<String>) -> [String] {
        var order: [String] = []
        for pin in pins where parameters(pin.parameter) == pin.value && served.contains(pin.version) {
            order.append(pin.version)
            break
        }
        var cumulative = 0
        var landed: String? = nil
        for split in splits where split.basisPoints > 0 {
            cumulative += split.basisPoints
            if bucket < cumulative {
                landed = split.version
                break
            }
        }
        if let landed, served.contains(landed), !order.contains(landed) { order.append(landed) }
        let rest = splits.enumerated()
            .filter { $0.element.basisPoints > 0 && served.contains($0.element.version) && !order.contains($0.element.version) }
            .sorted { ($0.element.basisPoints, -$0.offset) > ($1.element.basisPoints, -$1.offset) }
        order += rest.map(\.element.version)
        return order
    }

    /// A request's bucket in [0, 10000): a hash of the model name and the request id (FNV-1a,
    /// 64 bits), so the same id always lands in the same place and different models split
    /// independently.
    public static func bucket(model: String, requestID: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in model.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        hash = (hash ^ 0x1f) &* 0x0000_0100_0000_01b3
        for byte in requestID.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        // Fold the high bits in: FNV's low bits alone are weak for short keys.
        hash ^= hash >> 29
        hash = hash &* 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 32
        return Int(hash % UInt64(wholeBasisPoints))
    }

    // MARK: Text forms (the CLI's flags and tables)

    /// Parses `1=99,2=1` (percentages, up to two decimals) into shares.
    public static func parseWeights(_ text: String) throws(Refusal) -> [Split] {
        var splits: [Split] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw Refusal("weights: '\(item)' is not VERSION=PERCENT (e.g. 1=90,2=10)")
            }
            guard let basisPoints = parsePercent(String(parts[1])) else {
                throw Refusal("weights: '\(parts[1])' is not a percentage between 0 and 100 with at most two decimals")
            }
            splits.append(Split(version: String(parts[0]), basisPoints: basisPoints))
        }
        return splits
    }

    /// Parses `tenant=acme:2` into a pin.
    public static func parsePin(_ text: String) throws(Refusal) -> Pin {
        guard let colon = text.lastIndex(of: ":"), let equals = text[..<colon].firstIndex(of: "=") else {
            throw Refusal("pin: '\(text)' is not PARAMETER=VALUE:VERSION (e.g. tenant=acme:2)")
        }
        return Pin(parameter: String(text[..<equals]), value: String(text[text.index(after: equals)..<colon]), version: String(text[text.index(after: colon)...]))
    }

    /// "12.5" → 1250; nil for anything else than 0–100 with at most two decimals.
    public static func parsePercent(_ text: String) -> Int? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty, whole.count <= 3, whole.allSatisfy({ $0.isASCII && $0.isNumber }), let units = Int(whole), units >= 0 else { return nil }
        var hundredths = 0
        if parts.count == 2 {
            let fraction = parts[1]
            guard (1...2).contains(fraction.count), fraction.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(fraction) else { return nil }
            hundredths = fraction.count == 1 ? value * 10 : value
        }
        let total = units * 100 + hundredths
        return total <= wholeBasisPoints ? total : nil
    }

    /// 1250 → "12.5".
    public static func percent(_ basisPoints: Int) -> String {
        let whole = basisPoints / 100
        let rest = basisPoints % 100
        if rest == 0 { return String(whole) }
        return rest % 10 == 0 ? "\(whole).\(rest / 10)" : "\(whole).\(rest < 10 ? "0" : "")\(rest)"
    }

    /// `1=90,2=10`.
    public var weightsText: String {
        splits.map { "\($0.version)=\(Self.percent($0.basisPoints))" }.joined(separator: ",")
    }

    /// `2=10`, comma-separated.
    public var shadowsText: String {
        shadows.map { "\($0.version)=\(Self.percent($0.basisPoints))" }.joined(separator: ",")
    }

    /// `tenant=acme:2`, comma-separated.
    public var pinsText: String {
        pins.map { "\($0.parameter)=\($0.value):\($0.version)" }.joined(separator: ",")
    }
}
