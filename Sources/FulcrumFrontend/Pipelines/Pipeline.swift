import FulcrumSchema
import FulcrumService
import Metrics

/// A pipeline (Triton's ensemble: `platform: "ensemble"` with `ensemble_scheduling`) checked at
/// load: every step's model exists, every tensor a step reads is a pipeline input or some earlier
/// step's output, no tensor has two producers, every pipeline output is produced, and the steps
/// form no cycle. The frontend runs it (`PipelineRunner`); its intermediate tensors never leave
/// the frontend.
struct Pipeline: Sendable {
    /// One of the step model's tensors bound to one of the pipeline's.
    struct Binding: Sendable, Equatable {
        /// The name in the step model.
        var name: String
        /// The pipeline tensor.
        var tensor: String
    }

    /// A step, ready to run once the steps it depends on have finished.
    struct Step: Sendable {
        /// Its position in config.pbtxt, from 0 (responses and errors count from 1).
        var index: Int
        /// The model (or nested pipeline) it calls.
        var model: String
        /// The version it calls; "" = the newest the pool serves.
        var version: String
        /// The step model's inputs, by name.
        var inputs: [Binding]
        /// The step model's outputs it keeps, by name.
        var outputs: [Binding]
        /// The steps whose outputs it reads.
        var dependencies: [Int]

        /// How responses, logs and errors name the step: "step 2 ('simple')".
        var label: String { "step \(index + 1) ('\(model)')" }
    }

    /// The pipeline's name.
    let name: String
    /// The version it is served as (its highest numeric folder, "1" when it has none).
    let version: String
    /// Its configuration as written.
    let configuration: ModelConfiguration
    /// What requests are validated against (its declared inputs and outputs).
    let signature: ModelSignature
    /// Its steps, in config.pbtxt's order.
    let steps: [Step]
    /// `fulcrum_pipeline_step_seconds{pipeline, step, model}`: each step's round trip, one handle
    /// per step made at load (Prometheus, with `--metrics-port`).
    let stepTimers: [Metrics.Timer]

    /// Every model the steps call directly.
    var models: Set<String> { Set(steps.map(\.model)) }

    /// Checks `configuration` (a pipeline's) and builds the graph. `exists` says whether a model
    /// of that name is in the repository (pool models and pipelines alike). Errors name the step.
    init(configuration: ModelConfiguration, version: String, file: String, exists: (String) -> Bool) throws(RuntimeError) {
        func fail(_ text: String, line: Int = 0) -> RuntimeError {
            let place = line > 0 ? "\(file):\(line)" : file
            return RuntimeError(code: .invalidConfiguration, message: "\(place): pipeline '\(configuration.name)': \(text)")
        }
        guard let written = configuration.ensembleSteps, !written.isEmpty else {
            throw fail("it has no steps")
        }
        let inputs = Set(configuration.inputs.map(\.name))
        var producer: [String: Int] = [:]
        var steps: [Step] = []
        for (index, step) in written.enumerated() {
            let built = Step(
                index: index, model: step.modelName, version: step.modelVersion <= 0 ? "" : String(step.modelVersion),
                inputs: step.inputMap.map { Binding(name: $0.key, tensor: $0.value) }.sorted { $0.name < $1.name },
                outputs: step.outputMap.map { Binding(name: $0.key, tensor: $0.value) }.sorted { $0.name < $1.name },
                dependencies: [])
            guard step.modelName != configuration.name else {
                throw fail("\(built.label) calls the pipeline itself", line: step.line)
            }
            guard exists(step.modelName) else {
                throw fail("\(built.label) names model '\(step.modelName)', which is not in the model repository", line: step.line)
            }
            for output in built.outputs {
                if inputs.contains(output.tensor) {
                    throw fail("\(built.label) writes '\(output.tensor)', which is an input of the pipeline", line: step.line)
                }
                if let other = producer.updateValue(index, forKey: output.tensor) {
                    throw fail("\(built.label) and \(steps[other].label) both write '\(output.tensor)'", line: step.line)
                }
            }
            steps.append(built)
        }
        for index in steps.indices {
            var dependencies = Set<Int>()
            for input in steps[index].inputs {
                if inputs.contains(input.tensor) { continue }
                guard let from = producer[input.tensor] else {
                    throw fail("\(steps[index].label) reads '\(input.tensor)', which is neither an input of the pipeline nor written by any step")
                }
                guard from != index else {
                    throw fail("\(steps[index].label) reads '\(input.tensor)', which it writes itself")
                }
                dependencies.insert(from)
            }
            steps[index].dependencies = dependencies.sorted()
        }
        for output in configuration.outputs where producer[output.name] == nil {
            throw fail("no step writes its output '\(output.name)'")
        }
        if let cycle = Self.cycle(steps) {
            let shown = cycle.count <= 9 ? cycle.map { steps[$0].label } : cycle.prefix(8).map { steps[$0].label } + ["… (\(cycle.count - 1) steps)"]
            throw fail("the steps form a cycle: \(shown.joined(separator: " → "))")
        }
        self.name = configuration.name
        self.version = version
        self.configuration = configuration
        self.signature = ModelSignature(configuration: configuration, version: version)
        self.steps = steps
        self.stepTimers = steps.map {
            Metrics.Timer(label: "fulcrum_pipeline_step_seconds", dimensions: [("pipeline", configuration.name), ("step", String($0.index + 1)), ("model", $0.model)])
        }
    }

    /// A cycle among the steps' dependencies (as step indices, the first repeated at the end), or
    /// nil when they form a DAG. Iterative (Kahn's algorithm, then a walk among what is left), so
    /// a configuration with many steps cannot exhaust the stack.
    static func cycle(_ steps: [Step]) -> [Int]? {
        var waiting = steps.map { Set($0.dependencies).count }
        var dependents = [[Int]](repeating: [], count: steps.count)
        for step in steps {
            for dependency in Set(step.dependencies) { dependents[dependency].append(step.index) }
        }
        var ready = steps.indices.filter { waiting[$0] == 0 }
        var done = Set<Int>()
        while let node = ready.popLast() {
            done.insert(node)
            for next in dependents[node] {
                waiting[next] -= 1
                if waiting[next] == 0 { ready.append(next) }
            }
        }
        guard done.count < steps.count, let start = steps.indices.first(where: { !done.contains($0) }) else { return nil }
        // Every step left waits for another step left: follow those waits until one repeats.
        var path: [Int] = []
        var position: [Int: Int] = [:]
        var node = start
        while position[node] == nil {
            position[node] = path.count
            path.append(node)
            node = steps[node].dependencies.first { !done.contains($0) }!
        }
        // `path[i]` reads what `path[i + 1]` writes: the cycle in the order data flows, from its
        // first step in config.pbtxt, back to that step.
        let flow = Array(path[position[node]!...].reversed())
        let first = flow.firstIndex(of: flow.min()!)!
        let rotated = Array(flow[first...] + flow[..<first])
        return rotated + [rotated[0]]
    }
}
