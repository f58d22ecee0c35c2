import ArgumentParser
import FulcrumOperator
import FulcrumService
import Foundation
import GRPCCore

/// `fulcrum route show|set|rollback|clear`.
struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Show or change which versions of a model answer the requests that name no version.",
        discussion: """
            A route gives each version a share of a model's unversioned requests (a canary, an A/B \
            split) and may pin a version for requests with a given parameter (e.g. tenant=acme). \
            Requests that name a version are never rerouted. The split is sticky per request id: the \
            same id always lands on the same version (requests without an id are split at random). \
            The balancer checks each change against the versions its workers host, keeps the routes \
            in its --state-dir (they survive a restart) and pushes them to every frontend, which \
            keeps the last routes while the balancer is away.
            """,
        subcommands: [Show.self, Set.self, Shift.self, Rollback.self, Clear.self]
    )

    struct Connection: ParsableArguments {
        @OptionGroup var balancer: BalancerConnection

        func run(_ action: Routes.Action) async throws {
            try await balancer.call { target, tls, json, timeout in
                do {
                    return try await Routes.run(action, balancer: target, tls: tls, json: json, timeout: timeout)
                } catch let error as RPCError where error.code == .invalidArgument || error.code == .failedPrecondition {
                    throw OperatorError("route refused: \(error.message)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the routes in force (every model's, or one model's).")

        @Argument(help: "Model name (default: every model with a route).")
        var model: String?

        @OptionGroup var connection: Connection

        func run() async throws { try await connection.run(.show(model: model)) }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace a model's route.",
            discussion: "Examples: fulcrum route set ranking_mlp --weights 1=99,2=1 --pin tenant=beta:2; fulcrum route set ranking_mlp --weights 1=100 --shadow 2=10"
        )

        @Argument(help: "Model name.")
        var model: String

        @Option(name: .long, help: ArgumentHelp("Each version's share of the unversioned requests, in percent (up to two decimals), adding up to 100: 1=90,2=10.", valueName: "version=percent,..."))
        var weights: String

        @Option(name: .long, help: ArgumentHelp("Send requests whose parameter has this value to this version, whatever the weights say (repeat for more).", valueName: "parameter=value:version"))
        var pin: [String] = []

        @Option(name: .long, help: ArgumentHelp("Shadow versions: each gets a copy of this share of the requests after they are answered; its answers are compared with the served ones (fulcrum status) and never returned. Must be versions without a share or pin.", valueName: "version=percent,..."))
        var shadow: String?

        @OptionGroup var connection: Connection

        func validate() throws { _ = try route() }

        func run() async throws { try await connection.run(.set(try route())) }

        /// The route the flags describe, checked.
        func route() throws -> TrafficRoute {
            do throws(TrafficRoute.Refusal) {
                let route = TrafficRoute(
                    model: model, splits: try TrafficRoute.parseWeights(weights), pins: try pin.map(TrafficRoute.parsePin),
                    shadows: try shadow.map(TrafficRoute.parseWeights) ?? [])
                try route.check()
                return route
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    struct Shift: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Roll a version out progressively: raise its share step by step, and roll back by itself when its p99 or error rate breaks a bound.",
            discussion: """
                The balancer runs the rollout (this command returns at once): the first step applies \
                now, then one every --every while the version's answers (measured by the frontends: \
                latency from arrival to answer, and failures, counting requests another version had \
                to answer) stay within --max-p99-ms and --max-error-rate. A step waits until the \
                version has answered at least 20 requests since the previous one. When a bound breaks \
                the route goes back to the shares from before the rollout and the reason shows in \
                `fulcrum route show`, `fulcrum status` and the balancer's log. `fulcrum route \
                rollback` (or set, or clear) stops a rollout. Example: fulcrum route shift ranking_mlp \
                2 --to 25 --step 5 --every 30s --max-p99-ms 20 --max-error-rate 0.1%
                """
        )

        @Argument(help: "Model name.")
        var model: String

        @Argument(help: "The version to roll out.")
        var version: String

        @Option(name: .long, help: ArgumentHelp("The share to reach, in percent.", valueName: "percent"))
        var to: String

        @Option(name: .long, help: ArgumentHelp("How much the share rises at each step, in percent.", valueName: "percent"))
        var step: String

        @Option(name: .long, help: ArgumentHelp("Time between steps: 30s, 500ms, 2m, 1h (1 s to 24 h).", valueName: "interval"))
        var every: String

        @Option(name: .long, help: ArgumentHelp("Roll back when the version's p99 latency in the frontends exceeds this.", valueName: "ms"))
        var maxP99Ms: Double?

        @Option(name: .long, help: ArgumentHelp("Roll back when the share of the version's requests that fail exceeds this percentage (0.1% or 0.1).", valueName: "percent"))
        var maxErrorRate: String?

        @OptionGroup var connection: Connection

        func validate() throws { _ = try rollout() }

        func run() async throws { try await connection.run(.shift(model: model, try rollout())) }

        func rollout() throws -> Rollout {
            guard let target = TrafficRoute.parsePercent(to) else { throw ValidationError("--to: '\(to)' is not a percentage between 0 and 100") }
            guard let stepPoints = TrafficRoute.parsePercent(step) else { throw ValidationError("--step: '\(step)' is not a percentage between 0 and 100") }
            guard let everyMs = Routes.parseInterval(every) else { throw ValidationError("--every: '\(every)' is not an interval like 30s, 500ms, 2m") }
            var errorRate: Double? = nil
            if let maxErrorRate {
                let number = maxErrorRate.hasSuffix("%") ? String(maxErrorRate.dropLast()) : maxErrorRate
                guard let value = Double(number), value.isFinite, (0...100).contains(value) else {
                    throw ValidationError("--max-error-rate: '\(maxErrorRate)' is not a percentage between 0 and 100")
                }
                errorRate = value / 100
            }
            let rollout = Rollout(
                version: version, targetBasisPoints: target, stepBasisPoints: stepPoints, everyMs: everyMs, maxP99Ms: maxP99Ms, maxErrorRate: errorRate)
            do throws(TrafficRoute.Refusal) {
                try rollout.check(model: model)
            } catch {
                throw ValidationError(error.description)
            }
            return rollout
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put back the route a model had before its latest change (none, if it had none).")

        @Argument(help: "Model name.")
        var model: String

        @OptionGroup var connection: Connection

        func run() async throws { try await connection.run(.rollback(model: model)) }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a model's route: its unversioned requests go to the newest version again (rollback brings the route back).")

        @Argument(help: "Model name.")
        var model: String

        @OptionGroup var connection: Connection

        func run() async throws { try await connection.run(.clear(model: model)) }
    }
}
