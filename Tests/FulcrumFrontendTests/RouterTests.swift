import FulcrumFrontend
import Testing

/// A deterministic generator (SplitMix64) so the choices are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct RouterTests {
    let router = Router()

    @Test func nothingToChooseFrom() {
        var random = SeededGenerator(state: 1)
        #expect(router.choose(from: [], using: &random) == nil)
    }

    @Test func ofTwoTheLessLoadedWins() {
        var random = SeededGenerator(state: 7)
        let busy = Router.Candidate(workerID: "busy", outstanding: 3, reportedQueueDepth: 4)
        let idle = Router.Candidate(workerID: "idle", outstanding: 0, reportedQueueDepth: 1)
        for _ in 0..<50 {
            #expect(router.choose(from: [busy, idle], using: &random)?.workerID == "idle")
        }
    }

    @Test func theMostLoadedOfManyIsNeverChosenAndLoadSpreads() {
        var random = SeededGenerator(state: 3)
        let candidates = (0..<4).map { Router.Candidate(workerID: "w\($0)", outstanding: $0, reportedQueueDepth: 0) }
        var counts: [String: Int] = [:]
        for _ in 0..<2000 {
            counts[router.choose(from: candidates, using: &random)!.workerID, default: 0] += 1
        }
        #expect(counts["w3"] == nil)
        // Power of two choices: the least loaded wins every pair it is in (3 of 6 pairs).
        #expect((counts["w0"] ?? 0) > 900)
        #expect((counts["w1"] ?? 0) > 400)
    }

    @Test func excludedWorkersAreAvoidedUnlessNothingElseIsLeft() {
        var random = SeededGenerator(state: 5)
        let a = Router.Candidate(workerID: "a", outstanding: 0, reportedQueueDepth: 0)
        let b = Router.Candidate(workerID: "b", outstanding: 9, reportedQueueDepth: 9)
        for _ in 0..<20 {
            #expect(router.choose(from: [a, b], excluding: ["a"], using: &random)?.workerID == "b")
        }
        #expect(router.choose(from: [a], excluding: ["a"], using: &random)?.workerID == "a")
    }
}
