import FulcrumProtocol
import FulcrumService
import Testing

@Suite struct PredictionLogFormatTests {
    func record(_ id: String, bytes: Int = 10) -> Fulcrum_Log_V1_PredictionRecord {
        var record = Fulcrum_Log_V1_PredictionRecord()
        record.requestID = id
        record.model = "m"
        record.request.rawInputContents = [.init(repeating: 7, count: bytes)]
        return record
    }

    @Test func recordsRoundTripInOrder() throws {
        var bytes: [UInt8] = []
        for (index, size) in [0, 10, 200, 70_000].enumerated() { bytes += try PredictionLogFormat.frame(record("r\(index)", bytes: size)) }
        var reader = PredictionLogFormat.Reader(bytes)
        var ids: [String] = []
        while let next = try reader.next() { ids.append(next.requestID) }
        #expect(ids == ["r0", "r1", "r2", "r3"] && !reader.truncated)
    }

    @Test func aCutFileStopsAtItsLastWholeRecord() throws {
        let bytes = try PredictionLogFormat.frame(record("a")) + PredictionLogFormat.frame(record("b", bytes: 300))
        for cut in [1, 2, 50] {
            var reader = PredictionLogFormat.Reader(Array(bytes.dropLast(cut)))
            #expect(try reader.next()?.requestID == "a")
            #expect(try reader.next() == nil)
            #expect(reader.truncated)
        }
    }

    @Test func garbageAndImpossibleLengthsAreErrorsNotCrashes() {
        var overlong = PredictionLogFormat.Reader([UInt8](repeating: 0xff, count: 12))
        #expect(throws: PredictionLogFormat.DecodingError.self) { try overlong.next() }
        var huge = PredictionLogFormat.Reader([0xff, 0xff, 0xff, 0xff, 0x7f])  // 32 GiB
        #expect(throws: PredictionLogFormat.DecodingError.self) { try huge.next() }
        var notARecord = PredictionLogFormat.Reader([5] + Array("hello".utf8))
        #expect(throws: PredictionLogFormat.DecodingError.self) { try notARecord.next() }
    }
}
