import CVulkan

/// A compute shader and how it binds: storage buffers 0..<bindings, and push constants.
struct VulkanKernel: Sendable {
    let name: String
    let spirv: [UInt32]
    let bindings: Int
    let pushConstantBytes: Int

    static let matmul = VulkanKernel(name: "matmul", spirv: SPIRV.matmul, bindings: 4, pushConstantBytes: 17 * 4)
    static let matmul128 = VulkanKernel(name: "matmul128", spirv: SPIRV.matmul128, bindings: 4, pushConstantBytes: 17 * 4)
    static let matmulSplitK = VulkanKernel(name: "matmulsplitk", spirv: SPIRV.matmulsplitk, bindings: 5, pushConstantBytes: 20 * 4)
    static let matmulReduce = VulkanKernel(name: "matmulreduce", spirv: SPIRV.matmulreduce, bindings: 3, pushConstantBytes: 11 * 4)
    static let binary = VulkanKernel(name: "binary", spirv: SPIRV.binary, bindings: 3, pushConstantBytes: 28 * 4)
    static let unary = VulkanKernel(name: "unary", spirv: SPIRV.unary, bindings: 2, pushConstantBytes: 3 * 4)
}

/// The Vulkan objects of one kernel on one device: shader module, descriptor set layout,
/// pipeline layout and compute pipeline. Owned and destroyed by `VulkanDevice`.
final class VulkanPipeline: @unchecked Sendable {
    let kernel: VulkanKernel
    let module: VkShaderModule
    let setLayout: VkDescriptorSetLayout
    let layout: VkPipelineLayout
    let pipeline: VkPipeline

    init(device: VkDevice, cache: VkPipelineCache, kernel: VulkanKernel) throws {
        self.kernel = kernel
        var module: VkShaderModule?
        let moduleResult = kernel.spirv.withUnsafeBufferPointer { words in
            var info = VkShaderModuleCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO
            info.codeSize = words.count * 4
            info.pCode = words.baseAddress
            return fulcrum_vkCreateShaderModule(device, &info, nil, &module)
        }
        try VulkanError.check(moduleResult, "vkCreateShaderModule(\(kernel.name))")

        var bindings = (0..<kernel.bindings).map { i in
            var binding = VkDescriptorSetLayoutBinding()
            binding.binding = UInt32(i)
            binding.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
            binding.descriptorCount = 1
            binding.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
            return binding
        }
        var setLayout: VkDescriptorSetLayout?
        var setInfo = VkDescriptorSetLayoutCreateInfo()
        setInfo.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO
        setInfo.bindingCount = UInt32(bindings.count)
        let setResult = bindings.withUnsafeMutableBufferPointer { buffer in
            setInfo.pBindings = UnsafePointer(buffer.baseAddress)
            return fulcrum_vkCreateDescriptorSetLayout(device, &setInfo, nil, &setLayout)
        }
        guard setResult == VK_SUCCESS, let setLayout, let module else {
            fulcrum_vkDestroyShaderModule(device, module, nil)
            try VulkanError.check(setResult, "vkCreateDescriptorSetLayout(\(kernel.name))")
            throw VulkanError(.callFailed, "no descriptor set layout for \(kernel.name)")
        }

        var range = VkPushConstantRange()
        range.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT.rawValue
        range.size = UInt32(kernel.pushConstantBytes)
        var layout: VkPipelineLayout?
        var setLayoutOptional: VkDescriptorSetLayout? = setLayout
        let layoutResult = withUnsafePointer(to: &setLayoutOptional) { setPointer in
            withUnsafePointer(to: &range) { rangePointer in
                var info = VkPipelineLayoutCreateInfo()
                info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO
                info.setLayoutCount = 1
                info.pSetLayouts = setPointer
                info.pushConstantRangeCount = 1
                info.pPushConstantRanges = rangePointer
                return fulcrum_vkCreatePipelineLayout(device, &info, nil, &layout)
            }
        }
        guard layoutResult == VK_SUCCESS, let layout else {
            fulcrum_vkDestroyDescriptorSetLayout(device, setLayout, nil)
            fulcrum_vkDestroyShaderModule(device, module, nil)
            try VulkanError.check(layoutResult, "vkCreatePipelineLayout(\(kernel.name))")
            throw VulkanError(.callFailed, "no pipeline layout for \(kernel.name)")
        }

        var pipeline: VkPipeline?
        let pipelineResult = "main".withCString { entry in
            var stage = VkPipelineShaderStageCreateInfo()
            stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO
            stage.stage = VK_SHADER_STAGE_COMPUTE_BIT
            stage.module = module
            stage.pName = entry
            var info = VkComputePipelineCreateInfo()
            info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO
            info.stage = stage
            info.layout = layout
            return fulcrum_vkCreateComputePipelines(device, cache, 1, &info, nil, &pipeline)
        }
        guard pipelineResult == VK_SUCCESS, let pipeline else {
            fulcrum_vkDestroyPipelineLayout(device, layout, nil)
            fulcrum_vkDestroyDescriptorSetLayout(device, setLayout, nil)
            fulcrum_vkDestroyShaderModule(device, module, nil)
            try VulkanError.check(pipelineResult, "vkCreateComputePipelines(\(kernel.name))")
            throw VulkanError(.callFailed, "no pipeline for \(kernel.name)")
        }
        self.module = module
        self.setLayout = setLayout
        self.layout = layout
        self.pipeline = pipeline
    }

    func destroy(_ device: VkDevice) {
        fulcrum_vkDestroyPipeline(device, pipeline, nil)
        fulcrum_vkDestroyPipelineLayout(device, layout, nil)
        fulcrum_vkDestroyDescriptorSetLayout(device, setLayout, nil)
        fulcrum_vkDestroyShaderModule(device, module, nil)
    }
}
