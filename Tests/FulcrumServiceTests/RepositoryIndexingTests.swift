import FulcrumProtocol
import FulcrumService
import Testing

@Suite struct RepositoryIndexingTests {
    func hosted(_ name: String, _ version: String, _ state: String, _ reason: String = "") -> Fulcrum_Control_V1_HostedModel {
        var model = Fulcrum_Control_V1_HostedModel()
        model.name = name
        model.version = version
        model.state = state
        model.reason = reason
        return model
    }

    @Test func readyWinsOverUnavailableCopiesAndOrderIsStable() {
        let entries = RepositoryIndexing.entries(
            [
                hosted("b", "1", "UNAVAILABLE", "bad file"), hosted("a", "10", "READY"), hosted("a", "2", "READY"),
                hosted("b", "1", "READY"), hosted("c", "1", "UNAVAILABLE", "unsupported op"),
            ],
            readyOnly: false
        )
        #expect(entries.map { "\($0.name):\($0.version):\($0.state)" } == ["a:2:READY", "a:10:READY", "b:1:READY", "c:1:UNAVAILABLE"])
        #expect(entries.last?.reason == "unsupported op")
        #expect(RepositoryIndexing.entries([hosted("c", "1", "UNAVAILABLE")], readyOnly: true).isEmpty)
    }
}
