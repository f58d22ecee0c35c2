import FulcrumService

/// Everything the balancer needs to start, read once from flags by `fulcrum-balancer`.
public struct BalancerConfiguration: Sendable {
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

    public init(
        listen: HostPort = HostPort(host: "127.0.0.1", port: 7000),
        lease: Duration = .seconds(2),
        reportInterval: Duration = .milliseconds(250),
        addressFile: String? = nil,
        exitWithParent: Bool = false
    ) {
        self.listen = listen
        self.lease = lease
        self.reportInterval = reportInterval
        self.addressFile = addressFile
        self.exitWithParent = exitWithParent
    }
}
