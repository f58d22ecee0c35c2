import FulcrumService
import Testing

@Suite struct TrafficRouteTests {
    @Test func weightsAndPinsParseFromTheCLIForms() throws {
        #expect(try TrafficRoute.parseWeights("1=99.5,2=0.5") == [.init(version: "1", basisPoints: 9950), .init(version: "2", basisPoints: 50)])
        #expect(try TrafficRoute.parsePin("tenant=acme:2") == .init(parameter: "tenant", value: "acme", version: "2"))
        #expect(try TrafficRoute.parsePin("k=a:b:3") == .init(parameter: "k", value: "a:b", version: "3"))
        for bad in ["1", "=5", "1=101", "1=-1", "1=+5", "1=5.123", "1=x", "1=5,", "1=1e2"] {
            #expect(throws: TrafficRoute.Refusal.self, "\(bad)") { try TrafficRoute.parseWeights(bad) }
        }
        #expect(throws: TrafficRoute.Refusal.self) { try TrafficRoute.parsePin("tenant:2") }
        #expect(TrafficRoute.percent(1250) == "12.5" && TrafficRoute.percent(1205) == "12.05" && TrafficRoute.percent(10_000) == "100")
    }

    @Test func checksRefuseWhatCannotBeApplied() {
        func refusal(_ route: TrafficRoute) -> String? {
            do throws(TrafficRoute.Refusal) {
                try route.check()
                return nil
            } catch {
                return error.description
            }
        }
        let ok = TrafficRoute(model: "m", splits: [.init(version: "1", basisPoints: 9000), .init(version: "2", basisPoints: 1000)])
        #expect(refusal(ok) == nil)
        #expect(refusal(TrafficRoute(model: "m", splits: [.init(version: "1", basisPoints: 9000)]))?.contains("add up to 90%, not 100%") == true)
        #expect(refusal(TrafficRoute(model: "m", splits: []))?.contains("at least one version") == true)
        #expect(refusal(TrafficRoute(model: "m", splits: [.init(version: "1", basisPoints: 5000), .init(version: "1", basisPoints: 5000)]))?.contains("listed twice") == true)
        #expect(refusal(TrafficRoute(model: "m", splits: [.init(version: "01", basisPoints: 10_000)]))?.contains("not a version number") == true)
        #expect(refusal(TrafficRoute(model: "m", splits: [.init(version: "0", basisPoints: 10_000)]))?.contains("not a version number") == true)
        #expect(refusal(TrafficRoute(model: "", splits: [.init(version: "1", basisPoints: 10_000)])) != nil)
        var pinned = ok
        pinned.pins = [.init(parameter: "t", value: "a", version: "2"), .init(parameter: "t", value: "a", version: "1")]
        #expect(refusal(pinned)?.contains("pinned twice") == true)
        pinned.pins = [.init(parameter: "", value: "a", version: "2")]
        #expect(refusal(pinned) != nil)
        var shadowed = TrafficRoute(model: "m", splits: [.init(version: "1", basisPoints: 10_000), .init(version: "2", basisPoints: 0)])
        shadowed.shadows = [.init(version: "2", basisPoints: 1000)]
        #expect(refusal(shadowed) == nil)  // a version with a zero share answers nothing
        shadowed.shadows = [.init(version: "1", basisPoints: 1000)]
        #expect(refusal(shadowed)?.contains("a shadow must be a version that does not") == true)
        shadowed.shadows = [.init(version: "3", basisPoints: 0)]
        #expect(refusal(shadowed)?.contains("above 0%") == true)
        shadowed.shadows = [.init(version: "3", basisPoints: 10), .init(version: "3", basisPoints: 10)]
        #expect(refusal(shadowed)?.contains("listed twice") == true)
        #expect(shadowed.versions == ["1", "2", "3"])
    }

    @Test func bucketsSplitInProportionAndStickToTheRequestID() {
        let route = TrafficRoute(model: "ranking_mlp", splits: [.init(version: "1", basisPoints: 9000), .init(version: "2", basisPoints: 1000)])
        var counts: [String: Int] = [:]
        for k in 0..<20_000 {
            let order = route.preference(bucket: TrafficRoute.bucket(model: "ranking_mlp", requestID: "request-\(k)"), parameters: { _ in nil }, served: ["1", "2"])
            counts[order[0], default: 0] += 1
            #expect(order.count == 2)
        }
        let share = Double(counts["2", default: 0]) / 20_000
        #expect(abs(share - 0.10) < 0.01, "version 2 got \(share)")
        #expect(TrafficRoute.bucket(model: "m", requestID: "abc") == TrafficRoute.bucket(model: "m", requestID: "abc"))
        #expect((0..<TrafficRoute.wholeBasisPoints).contains(TrafficRoute.bucket(model: "m", requestID: "")))
    }

    @Test func pinsComeFirstAndUnservedVersionsAreSkipped() {
        let route = TrafficRoute(
            model: "m", splits: [.init(version: "1", basisPoints: 2000), .init(version: "2", basisPoints: 5000), .init(version: "3", basisPoints: 3000)],
            pins: [.init(parameter: "tenant", value: "beta", version: "3")])
        let beta: (String) -> String? = { $0 == "tenant" ? "beta" : nil }
        // Bucket 100 falls in version 1's share; the others follow by share, largest first.
        #expect(route.preference(bucket: 100, parameters: { _ in nil }, served: ["1", "2", "3"]) == ["1", "2", "3"])
        #expect(route.preference(bucket: 100, parameters: beta, served: ["1", "2", "3"]) == ["3", "1", "2"])
        #expect(route.preference(bucket: 100, parameters: beta, served: ["1", "2"]) == ["1", "2"])
        #expect(route.preference(bucket: 9_999, parameters: { _ in nil }, served: ["2"]) == ["2"])
        #expect(route.preference(bucket: 100, parameters: { _ in nil }, served: ["7"]).isEmpty)
    }

    @Test func theWireFormRoundTrips() {
        var rollout = Rollout(version: "2", targetBasisPoints: 2500, stepBasisPoints: 500, everyMs: 30_000, maxP99Ms: 20, maxErrorRate: 0.001)
        rollout.baseline = [.init(version: "1", basisPoints: 10_000)]
        rollout.reason = "version 2 at 5%"
        let route = TrafficRoute(
            model: "m", splits: [.init(version: "2", basisPoints: 500), .init(version: "1", basisPoints: 9500)],
            pins: [.init(parameter: "t", value: "a", version: "1")], revision: 4, updatedUnixMs: 17, note: "set", rollout: rollout)
        #expect(TrafficRoute(route.wire) == route)
        var unbounded = rollout
        unbounded.maxP99Ms = nil
        unbounded.maxErrorRate = nil
        #expect(Rollout(unbounded.wire) == unbounded)
    }

    @Test func latencyHistogramQuantilesAndMerges() {
        var histogram = LatencyHistogram()
        #expect(histogram.quantileMilliseconds(0.99) == nil)
        for _ in 0..<98 { histogram.record(microseconds: 1_000) }
        for _ in 0..<2 { histogram.record(microseconds: 40_000) }
        let p99 = histogram.quantileMilliseconds(0.99)!
        #expect(p99 >= 40 && p99 < 48, "\(p99)")
        let p50 = histogram.quantileMilliseconds(0.5)!
        #expect(p50 >= 1 && p50 < 1.2, "\(p50)")
        var merged = LatencyHistogram(counts: histogram.counts)
        merged.merge(histogram)
        #expect(merged.total == 200)
        // Reports with more buckets than this build knows fold into the last one.
        #expect(LatencyHistogram(counts: Array(repeating: 1, count: 500)).total == 500)
        var huge = LatencyHistogram()
        huge.record(microseconds: .max)
        #expect(huge.counts.last == 1)
    }
}
