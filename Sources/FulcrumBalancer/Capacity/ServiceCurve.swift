/// The service-time curve s(b) = fixed + perSample · b of one model on one kind of worker,
/// fitted by least squares to (batch size, service time) samples from worker reports. Keeps
/// the most recent samples only, so the fit follows the hardware and the load.
public struct ServiceCurve: Sendable, Equatable {
    /// s(b) at b = 0: the per-execution overhead, seconds.
    public private(set) var fixed: Double
    /// The cost of each sample in a batch, seconds.
    public private(set) var perSample: Double
    private var samples: [(batch: Double, seconds: Double)] = []
    private let capacity: Int

    /// A curve with a prior (used until samples arrive), keeping up to `capacity` samples.
    public init(fixed: Double = 0.001, perSample: Double = 0.0005, capacity: Int = 2048) {
        self.fixed = fixed
        self.perSample = perSample
        self.capacity = capacity
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.fixed == rhs.fixed && lhs.perSample == rhs.perSample
    }

    /// Seconds one execution of `batch` samples takes.
    public func seconds(batch: Int) -> Double {
        fixed + perSample * Double(batch)
    }

    /// Number of samples fitted so far.
    public var sampleCount: Int { samples.count }

    /// The samples the fit keeps, oldest first (what `capacity.json` saves).
    public var keptSamples: [(batchSize: Int, seconds: Double)] {
        samples.map { (Int($0.batch), $0.seconds) }
    }

    /// How many samples the fit keeps at most.
    public var sampleCapacity: Int { capacity }

    /// Adds samples and refits. With a single batch size the intercept cannot be told from the
    /// slope: both are then scaled together so the curve passes through the observed mean.
    public mutating func add(_ new: [(batchSize: Int, seconds: Double)]) {
        for sample in new where sample.batchSize > 0 && sample.seconds > 0 {
            samples.append((Double(sample.batchSize), sample.seconds))
        }
        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
        refit()
    }

    private mutating func refit() {
        guard !samples.isEmpty else { return }
        let n = Double(samples.count)
        let meanB = samples.reduce(0) { $0 + $1.batch } / n
        let meanS = samples.reduce(0) { $0 + $1.seconds } / n
        let varB = samples.reduce(0) { $0 + ($1.batch - meanB) * ($1.batch - meanB) }
        if varB < 1e-9 {
            let predicted = fixed + perSample * meanB
            let factor = predicted > 0 ? meanS / predicted : 1
            fixed *= factor
            perSample *= factor
            return
        }
        let cov = samples.reduce(0) { $0 + ($1.batch - meanB) * ($1.seconds - meanS) }
        let slope = max(0, cov / varB)
        perSample = slope
        fixed = max(0, meanS - slope * meanB)
    }
}
