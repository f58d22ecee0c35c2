import Foundation
import FulcrumKubernetes

/// Answers the API server gives, copied in shape from a real cluster (kubectl get --raw).
enum APIServerAnswers {
    static let path = "/apis/apps/v1/namespaces/ml/deployments/fulcrum-worker/scale"

    /// The scale subresource of a Deployment wanting 5 replicas with 3 running.
    static let scale = #"""
        {"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"fulcrum-worker","namespace":"ml",\#
        "uid":"3f1c6a52-8c57-4a0e-9d1c-8e2b6f0d9a11","resourceVersion":"48213",\#
        "creationTimestamp":"2026-01-05T10:00:00Z"},"spec":{"replicas":5},\#
        "status":{"replicas":3,"selector":"app.kubernetes.io/name=fulcrum-worker"}}
        """#

    /// A Deployment scaled to zero: `spec.replicas` is omitted (omitempty).
    static let scaledToZero = #"""
        {"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"fulcrum-worker","namespace":"ml"},\#
        "spec":{},"status":{"replicas":0,"selector":"app.kubernetes.io/name=fulcrum-worker"}}
        """#

    static let forbiddenMessage =
        #"deployments.apps "fulcrum-worker" is forbidden: User "system:serviceaccount:ml:fulcrum-balancer" cannot patch resource "deployments/scale" in API group "apps" in the namespace "ml""#

    static let forbidden = #"""
        {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",\#
        "message":"deployments.apps \"fulcrum-worker\" is forbidden: User \"system:serviceaccount:ml:fulcrum-balancer\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"ml\"",\#
        "reason":"Forbidden","details":{"name":"fulcrum-worker","group":"apps","kind":"deployments"},"code":403}
        """#

    static let notFound = #"""
        {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",\#
        "message":"deployments.apps \"fulcrum-worker\" not found","reason":"NotFound",\#
        "details":{"name":"fulcrum-worker","group":"apps","kind":"deployments"},"code":404}
        """#

    static let conflict = #"""
        {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",\#
        "message":"Operation cannot be fulfilled on deployments.apps \"fulcrum-worker\": the object has been modified; please apply your changes to the latest version and try again",\#
        "reason":"Conflict","details":{"name":"fulcrum-worker","group":"apps","kind":"deployments"},"code":409}
        """#
}

/// A configuration for the worker Deployment `ml/fulcrum-worker` behind `apiServer`.
func testConfiguration(
    _ apiServer: String,
    token: KubernetesScaleClient.Configuration.Token = .value("test-token")
) -> KubernetesScaleClient.Configuration {
    KubernetesScaleClient.Configuration(
        apiServer: apiServer,
        namespace: "ml",
        deployment: "fulcrum-worker",
        token: token,
        requestTimeout: .seconds(5)
    )
}

/// Runs `body` with a client and shuts the client down afterwards, whether `body` throws or not
/// (an HTTPClient must be shut down before it is released).
func withClient<T>(
    _ configuration: KubernetesScaleClient.Configuration,
    _ body: (KubernetesScaleClient) async throws -> T
) async throws -> T {
    let client = try KubernetesScaleClient(configuration: configuration)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

/// A fresh directory under the system temporary directory, removed after `body`.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("fulcrum-kubernetes-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

/// Writes `contents` to `name` in `directory` and returns the file's path.
@discardableResult
func write(_ contents: String, to name: String, in directory: URL) throws -> String {
    let url = directory.appendingPathComponent(name)
    try Data(contents.utf8).write(to: url)
    return url.path
}
