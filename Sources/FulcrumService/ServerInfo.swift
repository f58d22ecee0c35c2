import FulcrumProtocol

/// What every Fulcrum inference endpoint says about itself in ServerMetadata.
public enum ServerInfo {
    /// The server name clients see.
    public static let name = "fulcrum"
    /// Fulcrum's version.
    public static let version = "0.1.0"
    /// Protocol extensions that are really implemented (perf_analyzer reads `statistics`).
    public static let extensions = ["model_repository", "model_configuration", "statistics", "parameters"]

    /// The ServerMetadata answer.
    public static var metadata: Inference_ServerMetadataResponse {
        var response = Inference_ServerMetadataResponse()
        response.name = name
        response.version = version
        response.extensions = extensions
        return response
    }
}
