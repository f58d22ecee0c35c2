import FulcrumKernels
import Testing

@Suite(.enabled(if: TestDevice.available, TestDevice.skipReason))
struct VulkanDeviceTests {
    @Test func describesTheDevice() throws {
        let info = TestDevice.device.info
        #expect(!info.name.isEmpty)
        #expect(info.deviceLocalMemoryBytes > 0)
        #expect(info.maxWorkgroupInvocations >= 256)
        #expect(info.maxSharedMemoryBytes >= 16384)
        let all = try VulkanDevice.availableDevices()
        #expect(all.contains { $0.name == info.name })
    }

    @Test func validationLayerIsOnWhenInstalled() {
        if TestDevice.validationLayerInstalled {
            #expect(TestDevice.device.validationEnabled)
        }
        expectNoValidationMessages(TestDevice.device)
    }

    @Test func selectsByIndexAndName() throws {
        let info = TestDevice.device.info
        let byIndex = try VulkanDevice(options: .init(selection: .index(info.index), validation: true))
        #expect(byIndex.info == info)
        let fragment = String(info.name.prefix(4)).uppercased()
        let byName = try VulkanDevice(options: .init(selection: .name(fragment), validation: true))
        #expect(byName.info.name.uppercased().contains(fragment))
        expectNoValidationMessages(byIndex)
        expectNoValidationMessages(byName)
    }

    @Test func unknownDevicesFailClearly() {
        #expect { try VulkanDevice(options: .init(selection: .index(999))) } throws: { error in
            (error as? VulkanError)?.code == .deviceNotFound && (error as! VulkanError).message.contains("#999")
        }
        #expect { try VulkanDevice(options: .init(selection: .name("no-such-gpu-xyz"))) } throws: { error in
            (error as? VulkanError)?.code == .deviceNotFound
        }
    }

    @Test func buffersRoundTripDirectAndThroughStaging() throws {
        let staged = try VulkanDevice(options: .init(validation: true, memory: .staging))
        for device in [TestDevice.device, staged] {
            let values = randomFloats(1001, seed: 7)
            let buffer = try VulkanBuffer(device: device, count: 1001)
            try buffer.upload(values)
            #expect(try buffer.download() == values)
            #expect(try buffer.download(count: 10) == Array(values.prefix(10)))
            #expect(throws: VulkanError.self) { try buffer.upload([Float](repeating: 0, count: 1002)) }
            expectNoValidationMessages(device)
        }
    }

    @Test func pipelineCacheDataCanBeReused() throws {
        let backend = TestDevice.backend
        let x = try backend.makeBuffer([1, -2, 3])
        try backend.unary(.relu, x, x, count: 3)
        let data = try TestDevice.device.pipelineCacheData()
        #expect(!data.isEmpty)
        let again = try VulkanDevice(options: .init(validation: true, pipelineCacheData: data))
        let y = try VulkanBackend(device: again).makeBuffer([1, -2, 3])
        try VulkanBackend(device: again).unary(.relu, y, y, count: 3)
        #expect(try y.download() == [1, 0, 3])
        expectNoValidationMessages(again)
    }

    @Test func backendAnswersSupports() {
        let backend = TestDevice.backend
        #expect(backend.name == "vulkan")
        #expect(backend.supports(op: "MatMul"))
        #expect(backend.supports(op: "Add"))
        #expect(backend.supports(op: "Softmax") && backend.supports(op: "Gather"))
        #expect(backend.supports(op: "Conv") && backend.supports(op: "MaxPool") && backend.supports(op: "Resize"))
        #expect(!backend.supports(op: "TopK") && !backend.supports(op: "ArgMax"))
        for op in VulkanBackend.supportedOperators {
            #expect(CPUBackend().supports(op: op), "\(op) has no CPU reference")
        }
    }
}
