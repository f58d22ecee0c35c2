import FulcrumProtocol

extension ModelSignature {
    /// The ModelMetadata answer for this signature; `versions` lists every version served.
    public func metadata(versions: [String]) -> Inference_ModelMetadataResponse {
        var response = Inference_ModelMetadataResponse()
        response.name = name
        response.versions = versions
        response.platform = platform
        let batching = maxBatchSize > 0
        response.inputs = inputs.map { spec in
            var t = Inference_ModelMetadataResponse.TensorMetadata()
            t.name = spec.name
            t.datatype = spec.dataType.rawValue
            t.shape = spec.metadataShape(batching: batching).map(Int64.init)
            return t
        }
        response.outputs = outputs.map { spec in
            var t = Inference_ModelMetadataResponse.TensorMetadata()
            t.name = spec.name
            t.datatype = spec.dataType.rawValue
            t.shape = spec.metadataShape(batching: batching).map(Int64.init)
            return t
        }
        return response
    }
}
