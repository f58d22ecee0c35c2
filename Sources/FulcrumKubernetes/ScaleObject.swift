/// The fields Fulcrum reads of an `autoscaling/v1` `Scale` object, the body of a Deployment's
/// scale subresource. Kubernetes omits `spec.replicas` when it is zero (`omitempty`), so a
/// missing count reads as 0.
struct ScaleObject: Decodable {
    struct Spec: Decodable { var replicas: Int? }
    struct Status: Decodable { var replicas: Int? }

    var kind: String?
    var spec: Spec?
    var status: Status?
}
