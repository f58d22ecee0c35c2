import FulcrumProtocol

// Placement's moves as the directives a worker's Report stream carries: the one place placement
// meets the wire (used by the control service).

extension PlacementPlanner.Action {
    /// The directive that has the worker carry out this move.
    public var directive: Fulcrum_Control_V1_Directive {
        var directive = Fulcrum_Control_V1_Directive()
        switch self {
        case .load(_, let model): directive.loadModel.name = model
        case .unload(_, let model): directive.unloadModel.name = model
        }
        return directive
    }
}
