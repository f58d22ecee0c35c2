// The Vulkan API's types (Debian: libvulkan-dev) and Fulcrum's entry points into the loader.
//
// Nothing links libvulkan.so.1: the loader is opened with dlopen the first time Vulkan is used
// (Loader.c), so a host without it runs the CPU backend and only `--backend vulkan` needs
// libvulkan1 plus a driver (a GPU vendor's, or Mesa's lavapipe on the CPU). Swift calls
// `fulcrum_vkX` (Loader+Generated.h, written by scripts/generate-vulkan-loader) where it would
// call `vkX`; VK_NO_PROTOTYPES keeps a direct call from compiling.
#ifndef FULCRUM_CVULKAN_H
#define FULCRUM_CVULKAN_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

/// Opens libvulkan.so.1 once; 1 when it is loaded, 0 when it could not be.
int fulcrum_vulkan_open(void);

/// Why libvulkan.so.1 could not be opened (dlerror's text), or NULL when it was.
const char *fulcrum_vulkan_open_error(void);

/// The loader's exported `name`, or NULL (the loader is opened first when needed).
PFN_vkVoidFunction fulcrum_vulkan_symbol(const char *name);

#include "Loader+Generated.h"

#endif
