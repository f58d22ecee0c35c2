import HTTPTypes
import Tracing

/// Reads `traceparent`/`tracestate` from an HTTP request's headers.
struct HTTPHeaderExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}
