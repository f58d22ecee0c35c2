@testable import FulcrumFrontend
import FulcrumProtocol
import FulcrumService
import Foundation
import Logging
import Testing

@Suite struct PredictionLogTests {
    func request(_ id: String) -> Inference_ModelInferRequest {
        var request = Inference_ModelInferRequest()
        request.id = id
        request.modelName = "m"
        request.rawInputContents = [Data(repeating: 1, count: 400)]
        return request
    }

    func readAll(_ directory: URL) throws -> [String] {
        var ids: [String] = []
        for file in try PredictionLogFormat.files(at: directory.path) {
            var reader = PredictionLogFormat.Reader([UInt8](try Data(contentsOf: file)))
            while let record = try reader.next() { ids.append(record.requestID) }
        }
        return ids
    }

    @Test func filesRotateAndTheOldestGo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plog-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try PredictionLog(
            settings: .init(directory: directory.path, maxFileBytes: 2_000, maxFiles: 3), frontendID: "f/1", logger: Logger(label: "test"))
        for k in 0..<60 {
            log.record(request("r\(k)"), response: nil, error: nil, replay: false, receivedUnixMicroseconds: 0, latencyMicroseconds: 1, tenant: "", traceID: "", modelHash: "")
        }
        log.close()
        let files = try PredictionLogFormat.files(at: directory.path)
        #expect(files.count == 3)
        #expect(files.allSatisfy { $0.lastPathComponent.hasPrefix("predictions-f_1-") })
        let ids = try readAll(directory)
        #expect(ids.last == "r59" && ids.count < 60)
        #expect(ids == (60 - ids.count..<60).map { "r\($0)" })  // the newest, in order, none torn
    }

    @Test func aFailingDiskDropsRecordsAndLoggingRecoversLater() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plog-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try PredictionLog(settings: .init(directory: directory.path), frontendID: "f", logger: Logger(label: "test"))
        log.record(request("before"), response: nil, error: nil, replay: false, receivedUnixMicroseconds: 0, latencyMicroseconds: 1, tenant: "", traceID: "", modelHash: "")
        log.close()
        try FileManager.default.removeItem(at: directory)  // the directory is gone: writes fail
        for k in 0..<5 {
            log.record(request("lost\(k)"), response: nil, error: nil, replay: false, receivedUnixMicroseconds: 0, latencyMicroseconds: 1, tenant: "", traceID: "", modelHash: "")
        }
        log.close()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log.record(request("after"), response: nil, error: nil, replay: false, receivedUnixMicroseconds: 0, latencyMicroseconds: 1, tenant: "", traceID: "", modelHash: "")
        log.close()
        #expect(try readAll(directory) == ["after"])
    }

    @Test func samplingFollowsTheRates() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plog-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = try PredictionLog(
            settings: .init(directory: directory.path, defaultRate: 1_000, modelRates: ["all": 10_000, "none": 0]), frontendID: "f", logger: Logger(label: "test"))
        #expect((0..<1000).allSatisfy { _ in log.sampled("all") })
        #expect(!(0..<1000).contains { _ in log.sampled("none") })
        let tenth = (0..<20_000).filter { _ in log.sampled("other") }.count
        #expect(abs(tenth - 2_000) < 300)
    }
}
