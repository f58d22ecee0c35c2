import FulcrumService
import Testing

@Suite struct HostPortTests {
    @Test func parsesHostAndPort() {
        #expect(HostPort(parsing: "127.0.0.1:8001") == HostPort(host: "127.0.0.1", port: 8001))
        #expect(HostPort(parsing: "worker-3.pool.svc:7000") == HostPort(host: "worker-3.pool.svc", port: 7000))
        #expect(HostPort(parsing: "[::1]:0") == HostPort(host: "::1", port: 0))
    }

    @Test func rejectsMalformedAddresses() {
        for text in ["", "localhost", ":80", "host:", "host:65536", "host:-1", "[::1]", "[::1]80", "host:http"] {
            #expect(HostPort(parsing: text) == nil, "\(text)")
        }
    }

    @Test func printsBracketsForIPv6() {
        #expect(HostPort(host: "::1", port: 9).description == "[::1]:9")
        #expect(HostPort(host: "10.0.0.1", port: 9).description == "10.0.0.1:9")
    }
}
