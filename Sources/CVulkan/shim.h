// The Vulkan loader's C API (Debian: libvulkan-dev; at run time libvulkan1 plus an ICD such as
// mesa-vulkan-drivers' lavapipe or a GPU vendor's driver).
#ifndef FULCRUM_CVULKAN_SHIM_H
#define FULCRUM_CVULKAN_SHIM_H
#include <vulkan/vulkan.h>
#endif
