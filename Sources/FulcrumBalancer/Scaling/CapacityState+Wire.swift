import FulcrumProtocol

// The capacity model and the autoscaler's state as the Status answer carries them: the one place
// they meet the wire (used by the control service).

extension CapacityState {
    /// The capacity part of a Status answer.
    var wire: (models: [Fulcrum_Control_V1_ModelCapacity], scaling: Fulcrum_Control_V1_Scaling) {
        let (views, headroom) = self.models
        let models = views.map { view -> Fulcrum_Control_V1_ModelCapacity in
            var m = Fulcrum_Control_V1_ModelCapacity()
            m.name = view.name
            m.rateShort = view.shortRate
            m.rateLong = view.longRate
            m.fixedSeconds = view.curve.fixed
            m.perSampleSeconds = view.curve.perSample
            m.curveSamples = UInt32(view.curveSamples)
            m.maxBatchSize = UInt32(view.maxBatchSize)
            m.latencyTargetMs = view.target * 1000
            m.queueDelayMs = view.queueDelay * 1000
            m.plannedWorkers = UInt32(view.plannedWorkers ?? 0)
            m.utilisation = view.predictedUtilisation
            m.predictedP99Ms = view.predictedP99 * 1000
            m.headroom = headroom
            m.networkMs = view.network * 1000
            m.networkP99Ms = view.networkP99 * 1000
            return m
        }
        let s = scalingSnapshot
        var wire = Fulcrum_Control_V1_Scaling()
        wire.scaler = s.scaler
        wire.minWorkers = UInt32(s.minWorkers)
        wire.maxWorkers = UInt32(s.maxWorkers)
        wire.current = UInt32(s.current)
        wire.desired = UInt32(s.desired)
        wire.changes = s.changes.map(\.wire)
        if let latest = s.latest { wire.latest = latest.wire }
        return (models, wire)
    }
}

extension CapacityState.Scaling.Decision {
    var wire: Fulcrum_Control_V1_ScalingDecision {
        var decision = Fulcrum_Control_V1_ScalingDecision()
        decision.unixMs = unixMs
        decision.current = UInt32(current)
        decision.desired = UInt32(desired)
        decision.reason = reason
        return decision
    }
}
