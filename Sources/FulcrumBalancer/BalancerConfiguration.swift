import Foundation
import FulcrumMetrics
import FulcrumService

/// Everything the balancer needs to start, read once from flags by `fulcrum-balancer`.
public struct BalancerConfiguration: Sendable {
    /// Which scaler carries out the autoscaler's decisions.
    public enum ScalerChoice: Sendable {
        /// Report the desired size only.
        case none
        /// Start and stop `fulcrum-worker` processes on this host.
        case process(ProcessScaler.Launch)
        /// A scaler built by the caller (for example the Kubernetes one).
        case custom(any Scaler)
    }

    /// Where the control service listens.
    public var listen: HostPort
    /// A worker silent this long leaves the pool.
    public var lease: Duration
    /// How often workers should report.
    public var reportInterval: Duration
    /// If set, the bound address is written here as JSON once listening.
    public var addressFile: String?
    /// Stop when the parent process goes away.
    public var exitWithParent: Bool
    /// The capacity model's cluster-wide settings (default target, headroom, network time).
    public var capacity: CapacityTracker<ContinuousClock.Instant>.Settings
    public var minWorkers: Int
    public var maxWorkers: Int
    /// How long the desired size must stay below the current one before a scale-down.
    public var stabilisation: Duration
    /// No scale-down for this long after a scale-up.
    public var settle: Duration
    public var scaler: ScalerChoice
    /// Where to serve Prometheus metrics (nil: no metrics endpoint).
    public var metrics: MetricsSettings?
    /// Which workers host which models: `.all` (every worker every model) or `.demand`
    /// (`PlacementCoordinator`: each model on as many workers as its plan needs).
    public var placement: PlacementMode = .all
    /// The cluster's mutual TLS on the control port (nil: plaintext). With it, every peer needs a
    /// certificate from the cluster's CA, and each call a role (`Balancer.roles`).
    public var tls: ClusterTLS? = nil
    /// Where the balancer keeps what must outlive it: the traffic routes (routes.json), the
    /// learned capacity model (capacity.json) and, with the process scaler, its workers
    /// (workers.json). nil: routes and the capacity model live in memory only.
    public var stateDirectory: String? = nil

    public init(
        listen: HostPort = HostPort(host: "127.0.0.1", port: 7000),
        lease: Duration = .seconds(2),
        reportInterval: Duration = .milliseconds(250),
        addressFile: String? = nil,
        exitWithParent: Bool = false,
        capacity: CapacityTracker<ContinuousClock.Instant>.Settings = .init(),
        minWorkers: Int = 1,
        maxWorkers: Int = 8,
        stabilisation: Duration = .seconds(30),
        settle: Duration = .seconds(10),
        scaler: ScalerChoice = .none,
        metrics: MetricsSettings? = nil
    ) {
        self.metrics = metrics
        self.listen = listen
        self.lease = lease
        self.reportInterval = reportInterval
        self.addressFile = addressFile
        self.exitWithParent = exitWithParent
        self.capacity = capacity
        self.minWorkers = minWorkers
        self.maxWorkers = maxWorkers
        self.stabilisation = stabilisation
        self.settle = settle
        self.scaler = scaler
    }
}

/// Which workers host which models.
public enum PlacementMode: String, Sendable, CaseIterable {
    /// Every worker hosts every model of its repository (the default).
    case all
    /// The balancer loads and unloads models on workers so each is on as many workers as its
    /// plan needs (at least one), by demand and memory (`PlacementPlanner`).
    case demand
}
