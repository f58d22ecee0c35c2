/// The fields Fulcrum reads of a `meta/v1` `Status` object, the body of an API server failure:
/// `{"kind":"Status","status":"Failure","message":"...","reason":"Forbidden","code":403}`.
struct StatusObject: Decodable {
    var kind: String?
    var message: String?
    var reason: String?
    var code: Int?
}
