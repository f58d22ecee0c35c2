import FulcrumService
import Foundation
import GRPCCore
import Metrics
import Synchronization

/// The frontend's admission limit: how many predictions, and how many bytes of their tensors, it
/// holds at once (gRPC and HTTP together). A request over either limit is refused at once with
/// RESOURCE_EXHAUSTED (HTTP 429) and `fulcrum-rejected: admission`, so an overload meets fast
/// refusals instead of a queue that grows until every request waits out its deadline, and the
/// frontend's memory stays bounded. A gRPC call is refused as its headers arrive, before its
/// message is read or decoded (`refusalIfFull`, the edge's shedding hook).
///
/// The request limit is `--max-inflight` (`static`), or, with `--admission adaptive` (the
/// default), `--max-inflight` until the load is an overload and then a limit that
/// `ConcurrencyLimit` moves with the latencies it sees, never above `--max-inflight`.
///
/// In both modes a call whose deadline is shorter than `deadlineMargin` times what its model's
/// answers take now (`LatencyEstimate`; from a call's headers, before the message names the
/// model, the fastest model's) is refused at once with DEADLINE_EXCEEDED and `fulcrum-rejected:
/// deadline`: a request that cannot make its deadline is refused early, not served late, so a
/// queue stops growing where the callers' deadlines put it instead of until every request waits
/// its deadline out.
final class Admission: Sendable {
    let maxRequests: Int
    let maxBytes: Int
    private let state: Mutex<State>

    private struct State {
        var requests = 0
        var bytes = 0
        let maxRequests: Int
        var adaptive: ConcurrencyLimit?
        /// Per model: what its answers take now.
        var latency: [String: LatencyEstimate] = [:]
        /// The request limit in force (an adaptive limit never exceeds `maxRequests`).
        var limit: Int { adaptive?.limit ?? maxRequests }

        /// The refusal of a request at the limit in force, which an adaptive limit counts.
        mutating func full() -> Refusal {
            adaptive?.refused()
            return .full(limit)
        }

        /// The refusal of a request whose deadline answers taking `expected` would miss; an
        /// adaptive limit counts it too: answers that slow mean a queue, however it stands.
        mutating func late(_ expected: UInt64) -> Refusal {
            adaptive?.refused()
            return .late(expected: expected)
        }

        /// What a request of `model` admitted now can expect to take, if that is more than its
        /// deadline allows (with the margin); nil when it may go on. Without a model (a call's
        /// headers, before its message names one), the fastest model's estimate decides, so only
        /// a call no model could answer in time is refused. Nothing in flight: nothing to wait for.
        mutating func lateness(timeout: Duration?, model: String?, now: UInt64) -> UInt64? {
            guard let timeout, requests > 0, !latency.isEmpty else { return nil }
            let expected: UInt64
            if let model {
                guard let index = latency.index(forKey: model) else { return nil }
                latency.values[index].roll(now: now)
                expected = latency.values[index].expected
            } else {
                var fastest = UInt64.max
                var index = latency.values.startIndex  // in place: no copy of the dictionary
                while index != latency.values.endIndex {
                    latency.values[index].roll(now: now)
                    fastest = min(fastest, latency.values[index].expected)
                    latency.values.formIndex(after: &index)
                }
                expected = fastest
            }
            let (needed, overflow) = expected.multipliedReportingOverflow(by: Admission.deadlineMargin)
            return expected > 0 && (overflow || needed > Admission.nanoseconds(timeout)) ? expected : nil
        }
    }

    /// The value `fulcrum-rejected` carries on an admission refusal.
    static let rejection = "admission"
    /// The value `fulcrum-rejected` carries on a call refused because its deadline would pass.
    static let lateRejection = "deadline"
    /// How many times what answers take now a call's deadline must allow for it to be admitted:
    /// the estimate is a mean, and the answers of a queue that is just large enough for the
    /// deadlines spread to about twice it.
    static let deadlineMargin: UInt64 = 2

    /// Requests in flight by default.
    static let defaultMaxRequests = 2048

    /// Bytes in flight by default: an eighth of the machine's memory, at most 1 GiB.
    static var defaultMaxBytes: Int {
        Int(min(ProcessInfo.processInfo.physicalMemory / 8, 1 << 30))
    }

    init(
        maxRequests: Int = Admission.defaultMaxRequests, maxBytes: Int = Admission.defaultMaxBytes, mode: AdmissionMode = .static,
        tolerance: Double = ConcurrencyLimit.defaultTolerance
    ) {
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
        var state = State(maxRequests: maxRequests)
        if mode == .adaptive { state.adaptive = ConcurrencyLimit(maximum: maxRequests, tolerance: tolerance) }
        self.state = Mutex(state)
    }

    /// Admits a request holding `bytes` of tensors, or throws RESOURCE_EXHAUSTED. A request larger
    /// than the whole byte limit is still admitted when nothing else is in flight, so the byte
    /// limit never refuses what the message limit allows.
    /// `timeout` is the call's deadline, if it has one: a call of `model` that would miss it is
    /// refused too.
    func enter(bytes: Int, model: String = "", timeout: Duration? = nil) throws(RPCError) {
        let now = timeout == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        let refused = state.withLock { s -> Refusal? in
            guard s.requests < s.limit else { return s.full() }
            // The byte limit's refusal names the static limits, whatever the adaptive one is.
            guard s.requests == 0 || bytes <= maxBytes - s.bytes else { return .full(maxRequests) }
            if let expected = s.lateness(timeout: timeout, model: model, now: now) { return s.late(expected) }
            s.requests += 1
            s.bytes += bytes
            return nil
        }
        if let refused { throw refusal(refused, timeout: timeout) }
    }

    /// The refusal for a call that arrives now with `timeout` (its deadline, if any), or nil
    /// when there is room for one more that can make its deadline (the edge asks before it reads
    /// the request; `enter` decides for good).
    func refusalIfFull(timeout: Duration? = nil) -> RPCError? {
        let now = timeout == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        let refused = state.withLock { s -> Refusal? in
            if s.requests >= s.limit { return s.full() }
            return s.lateness(timeout: timeout, model: nil, now: now).map { s.late($0) }
        }
        return refused.map { refusal($0, timeout: timeout) }
    }

    fileprivate enum Refusal {
        /// At the request limit in force.
        case full(Int)
        /// Answers take `expected` nanoseconds now, more than the deadline allows.
        case late(expected: UInt64)
    }

    /// Refusals by reason (`fulcrum_frontend_admission_refusals_total`): the ones made as a
    /// call's headers arrive never reach the per-model request counter, since the model's name
    /// is in the message they were refused before reading.
    private static let refusedFull = Counter(label: "fulcrum_frontend_admission_refusals_total", dimensions: [("reason", rejection)])
    private static let refusedLate = Counter(label: "fulcrum_frontend_admission_refusals_total", dimensions: [("reason", lateRejection)])

    private func refusal(_ refusal: Refusal, timeout: Duration?) -> RPCError {
        switch refusal {
        case .full(let limit):
            Self.refusedFull.increment()
            return self.refusal(limit: limit)
        case .late(let expected):
            Self.refusedLate.increment()
            let deadline = timeout.map { Self.nanoseconds($0) } ?? 0
            return RPCError(
                code: .deadlineExceeded,
                message:
                    "refused early: answers take about \(Self.milliseconds(expected)) now, and this call's deadline of \(Self.milliseconds(deadline)) would pass before it is answered; retry with a longer deadline or later",
                metadata: [RejectionMetadata.key: .string(Self.lateRejection)]
            )
        }
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? UInt64.max : whole &+ UInt64(max(0, attoseconds) / 1_000_000_000)
    }

    private static func milliseconds(_ nanoseconds: UInt64) -> String {
        let ms = Double(nanoseconds) / 1_000_000
        return ms < 10 ? "\((ms * 10).rounded() / 10) ms" : "\(Int(ms.rounded())) ms"
    }

    private func refusal(limit: Int) -> RPCError {
        let reason =
            limit < maxRequests
            ? "the frontend is refusing work to keep latency down (adaptive limit: \(limit) requests in flight of --max-inflight \(maxRequests))"
            : "the frontend is at its admission limit (\(maxRequests) requests or \(maxBytes) bytes of tensors in flight; --max-inflight, --max-inflight-bytes)"
        return RPCError(
            code: .resourceExhausted, message: "\(reason): retry shortly",
            metadata: [RejectionMetadata.key: .string(Self.rejection), "grpc-retry-pushback-ms": "100"]
        )
    }

    /// Releases what `enter(bytes:)` admitted; `latency` is the answered request's time in the
    /// frontend (nil for a failure), which an adaptive limit learns from.
    func leave(bytes: Int, model: String = "", latency: UInt64? = nil) {
        let now = latency == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        state.withLock {
            if let latency {
                $0.latency[model, default: LatencyEstimate()].observe(latencyNanoseconds: latency, now: now)
                if $0.adaptive != nil {
                    $0.adaptive!.observe(model: model, latencyNanoseconds: latency, inFlight: $0.requests, now: now)
                }
            }
            $0.requests -= 1
            $0.bytes -= bytes
        }
    }

    /// Requests and bytes in flight now.
    var inFlight: (requests: Int, bytes: Int) { state.withLock { ($0.requests, $0.bytes) } }

    /// The request limit in force now.
    var limit: Int { state.withLock { $0.limit } }
}

/// What an answer admitted now can expect to take: the mean latency of the answers of the last
/// 100 ms interval, once at least `minimumAnswers` finished in it. An interval with fewer halves
/// the estimate (once for every interval that passed), so it never sticks — not after one slow
/// answer (a cold model), nor while every call is being refused and none is answered. A pure
/// value: tested with explicit times.
struct LatencyEstimate: Sendable {
    static let interval: UInt64 = 100_000_000
    static let minimumAnswers = 5

    /// Nanoseconds (0: no estimate; nothing is refused for lateness).
    private(set) var expected: UInt64 = 0
    private var sum: UInt64 = 0
    private var count = 0
    private var intervalEnd: UInt64 = 0

    /// One answer that took `latencyNanoseconds`, finished at `now` (monotonic nanoseconds).
    mutating func observe(latencyNanoseconds latency: UInt64, now: UInt64) {
        roll(now: now)
        sum = sum.addingReportingOverflow(latency).overflow ? UInt64.max : sum + latency
        count += 1
    }

    /// Closes the intervals that ended by `now`.
    mutating func roll(now: UInt64) {
        guard now >= intervalEnd else { return }
        if intervalEnd != 0 {
            expected = count >= Self.minimumAnswers ? sum / UInt64(count) : expected / 2
            // Whole intervals since then without a single answer halve it again each.
            let silent = (now - intervalEnd) / Self.interval
            expected = silent >= 64 ? 0 : expected >> silent
        }
        sum = 0
        count = 0
        intervalEnd = now + Self.interval
    }
}

/// A concurrency limit that follows latency (`--admission adaptive`, the default), in the manner
/// of TCP Vegas and Netflix's concurrency-limits, engaged only while the load is an overload.
///
/// **When it engages.** A closed loop — a benchmark or a client pool holding C requests in
/// flight — cannot hold more than C, whatever the limit: its queue stands still, and refusing it
/// only makes the refused callers send again at once. An open-loop overload (more arrivals a
/// second than the pool answers) is a queue that grows every interval until every request waits
/// out its deadline. So the limit stays at `maximum` (`--max-inflight`) until requests in flight
/// grew in `risingIntervals` intervals in a row — each time by at least a tenth of the answers
/// of that interval and `minimumRise` (a closed loop's count jitters around its concurrency; it
/// does not climb interval after interval), or refusing at least as many requests as it
/// answered (at `maximum`, or because their deadlines would pass: either way requests in flight
/// stop rising) — while most answers queued (below). Then it engages at `initial` and moves with
/// latency; it disengages (back to `maximum`) after `quietIntervals` intervals in a row that
/// refused nothing with the limit not reached (not one: a process that stalls for an interval on
/// a busy machine refuses nothing in it either, and letting go in an overload is expensive).
///
/// **How it moves, engaged.** Each model's *floor* is the lowest latency of its answers over the
/// last 30–60 s; an answer is *prompt* when it took at most `tolerance` times its model's floor.
/// Every 100 ms the limit looks at the share of prompt answers in that interval: under half
/// means most requests queued somewhere, and the limit falls to between a half (no prompt
/// answer) and all of what was in flight (the share falling just short of half); otherwise, if
/// the limit was at least half used, it grows by a tenth. The share, not the best answer,
/// decides: among hundreds of answers an interval, one lucky fast one says nothing. The limit
/// never leaves `minimum...maximum`. A pure value: tested with explicit times.
struct ConcurrencyLimit: Sendable {
    /// How many times its floor an answer may take and still count as prompt.
    static let defaultTolerance = 2.0
    static let interval: UInt64 = 100_000_000
    static let floorWindow: UInt64 = 30_000_000_000
    /// Where the limit starts when it engages: it grows from here while answers keep their latency.
    static let initial = 32
    /// Intervals in a row in which requests in flight must grow (with most answers queueing)
    /// before the limit engages: a closed loop's concurrency rises once, not three times in a row.
    static let risingIntervals = 3
    /// The least growth of requests in flight an interval that counts as rising.
    static let minimumRise = 4
    /// Intervals in a row without a refusal, the limit not reached, before an engaged limit lets go.
    static let quietIntervals = 5

    let minimum: Int
    let maximum: Int
    let tolerance: Double
    /// Whether the limit is engaged (an overload was seen and has not ended).
    private(set) var engaged = false
    /// The engaged limit (`limit` is `maximum` while not engaged).
    private var current: Int
    /// The request limit in force.
    var limit: Int { engaged ? current : maximum }

    private struct Floor {
        var current: UInt64
        var previous: UInt64
        var since: UInt64
        var value: UInt64 { min(current, previous) }
    }

    private var floors: [String: Floor] = [:]
    private var intervalEnd: UInt64 = 0
    private var answers = 0
    private var prompt = 0
    private var peakInFlight = 0
    private var refusals = 0
    /// Requests in flight when the last interval closed, and how many intervals in a row they rose.
    private var lastInFlight = 0
    private var rising = 0
    /// Engaged: intervals in a row that refused nothing with the limit not reached.
    private var quiet = 0

    init(maximum: Int, minimum: Int = 4, tolerance: Double = ConcurrencyLimit.defaultTolerance) {
        self.maximum = max(1, maximum)
        self.minimum = min(max(1, minimum), self.maximum)
        self.tolerance = tolerance
        self.current = min(self.maximum, max(self.minimum, Self.initial))
    }

    /// A request refused: the limit in force was reached, or its deadline would pass.
    mutating func refused() { refusals += 1 }

    /// One answered request of `model` that took `latencyNanoseconds`, with `inFlight` requests
    /// admitted (itself included) when it finished, at `now` (monotonic nanoseconds).
    mutating func observe(model: String, latencyNanoseconds latency: UInt64, inFlight: Int, now: UInt64) {
        let latency = max(latency, 1)
        var floor = floors[model] ?? Floor(current: latency, previous: latency, since: now)
        if now &- floor.since >= Self.floorWindow {
            floor = Floor(current: latency, previous: floor.current, since: now)
        } else {
            floor.current = min(floor.current, latency)
        }
        floors[model] = floor
        answers += 1
        if Double(latency) <= tolerance * Double(floor.value) { prompt += 1 }
        peakInFlight = max(peakInFlight, inFlight)
        guard now >= intervalEnd else { return }
        if intervalEnd != 0 {
            let share = Double(prompt) / Double(answers)
            if engaged {
                quiet = refusals == 0 && peakInFlight < current ? quiet + 1 : 0
                if quiet >= Self.quietIntervals {
                    // Nothing refused, the limit not reached, for a while: the overload is over.
                    engaged = false
                    rising = 0
                    quiet = 0
                } else if share < 0.5 {
                    // The fewer prompt answers, the harder the cut: from all of it down to a half.
                    current = max(minimum, Int(Double(min(current, peakInFlight)) * (0.5 + share)))
                } else if peakInFlight * 2 >= current {
                    current = min(maximum, current + max(1, current / 10))
                }
            } else {
                // Refusals hold requests in flight where they are (at `maximum`, or where answers
                // take half the callers' deadlines): as many refused as answered counts as rising
                // (a few short-deadline calls refused beside a closed loop do not).
                let rise = inFlight - lastInFlight
                let risen = rise >= max(Self.minimumRise, answers / 10) || refusals >= max(Self.minimumRise, answers)
                rising = risen && share < 0.5 ? rising + 1 : 0
                if rising >= Self.risingIntervals {
                    engaged = true
                    current = min(maximum, max(minimum, Self.initial))
                }
            }
        }
        intervalEnd = now + Self.interval
        answers = 0
        prompt = 0
        peakInFlight = 0
        refusals = 0
        lastInFlight = inFlight
    }
}
