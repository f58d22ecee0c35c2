import FulcrumProtocol

extension TrafficRoute {
    /// A route from the control plane's message (unchecked: call `check()`).
    public init(_ wire: Fulcrum_Control_V1_ModelRoute) {
        self.init(
            model: wire.model,
            splits: wire.weights.map { Split(version: $0.version, basisPoints: Int(clamping: $0.basisPoints)) },
            pins: wire.rules.map { Pin(parameter: $0.parameter, value: $0.value, version: $0.version) },
            shadows: wire.shadows.map { Split(version: $0.version, basisPoints: Int(clamping: $0.basisPoints)) },
            revision: wire.revision, updatedUnixMs: wire.updatedUnixMs, note: wire.note,
            rollout: wire.hasRollout ? Rollout(wire.rollout) : nil
        )
    }

    public var wire: Fulcrum_Control_V1_ModelRoute {
        var message = Fulcrum_Control_V1_ModelRoute()
        message.model = model
        message.weights = Self.wire(splits)
        message.rules = Self.wire(pins)
        message.shadows = Self.wire(shadows)
        message.revision = revision
        message.updatedUnixMs = updatedUnixMs
        message.note = note
        if let rollout { message.rollout = rollout.wire }
        return message
    }

    static func wire(_ splits: [Split]) -> [Fulcrum_Control_V1_VersionWeight] {
        splits.map { split in
            var weight = Fulcrum_Control_V1_VersionWeight()
            weight.version = split.version
            weight.basisPoints = UInt32(clamping: split.basisPoints)
            return weight
        }
    }

    static func wire(_ pins: [Pin]) -> [Fulcrum_Control_V1_RouteRule] {
        pins.map { pin in
            var rule = Fulcrum_Control_V1_RouteRule()
            rule.parameter = pin.parameter
            rule.value = pin.value
            rule.version = pin.version
            return rule
        }
    }
}

extension Rollout {
    /// A rollout from the control plane's message (unchecked: call `check(model:)`).
    public init(_ wire: Fulcrum_Control_V1_Rollout) {
        self.init(
            version: wire.version, targetBasisPoints: Int(clamping: wire.targetBasisPoints), stepBasisPoints: Int(clamping: wire.stepBasisPoints),
            everyMs: Int(clamping: wire.everyMs), maxP99Ms: wire.hasMaxP99Ms ? wire.maxP99Ms : nil,
            maxErrorRate: wire.hasMaxErrorRate ? wire.maxErrorRate : nil
        )
        state = State(rawValue: wire.state) ?? .running
        reason = wire.reason
        lastStepUnixMs = wire.lastStepUnixMs
        baseline = wire.baselineWeights.map { TrafficRoute.Split(version: $0.version, basisPoints: Int(clamping: $0.basisPoints)) }
        baselinePins = wire.baselineRules.map { TrafficRoute.Pin(parameter: $0.parameter, value: $0.value, version: $0.version) }
    }

    public var wire: Fulcrum_Control_V1_Rollout {
        var message = Fulcrum_Control_V1_Rollout()
        message.version = version
        message.targetBasisPoints = UInt32(clamping: targetBasisPoints)
        message.stepBasisPoints = UInt32(clamping: stepBasisPoints)
        message.everyMs = UInt32(clamping: everyMs)
        if let maxP99Ms { message.maxP99Ms = maxP99Ms }
        if let maxErrorRate { message.maxErrorRate = maxErrorRate }
        message.state = state.rawValue
        message.reason = reason
        message.lastStepUnixMs = lastStepUnixMs
        message.baselineWeights = TrafficRoute.wire(baseline)
        message.baselineRules = TrafficRoute.wire(baselinePins)
        return message
    }
}
