//go:build linux

package onnx

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// ugo_probe_library returns NULL when name can be dlopen'ed, else the
// loader's message. The handle is closed again.
static const char *ugo_probe_library(const char *name) {
	void *h = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		return e != NULL ? e : "dlopen failed";
	}
	dlclose(h);
	return NULL;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// vulkanLoader is the file name Dawn loads the Vulkan loader from.
const vulkanLoader = "libvulkan.so.1"

// probeVulkanLoader loads and unloads the Vulkan loader the way Dawn does
// (dlopen of libvulkan.so.1, so LD_LIBRARY_PATH and the ld.so cache apply)
// and returns the dynamic loader's message when it cannot.
func probeVulkanLoader() error {
	name := C.CString(vulkanLoader)
	defer C.free(unsafe.Pointer(name))
	if msg := C.ugo_probe_library(name); msg != nil {
		return errors.New(C.GoString(msg))
	}
	return nil
}
