// Opens the Vulkan loader at run time (see CVulkan.h).
#include "CVulkan.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void *library;
static char failure[512];
static pthread_once_t opened = PTHREAD_ONCE_INIT;

static void open_library(void) {
    // RTLD_LOCAL: the loader's symbols stay out of the global namespace (drivers and layers it
    // loads resolve against it, not against this process).
    library = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(failure, sizeof failure, "%s", reason != NULL ? reason : "libvulkan.so.1: cannot open");
    }
}

int fulcrum_vulkan_open(void) {
    pthread_once(&opened, open_library);
    return library != NULL;
}

const char *fulcrum_vulkan_open_error(void) {
    pthread_once(&opened, open_library);
    return library != NULL ? NULL : failure;
}

PFN_vkVoidFunction fulcrum_vulkan_symbol(const char *name) {
    if (!fulcrum_vulkan_open()) return NULL;
    PFN_vkVoidFunction function;
    void *address = dlsym(library, name);
    memcpy(&function, &address, sizeof function);
    return function;
}
