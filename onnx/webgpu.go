package onnx

import (
	"fmt"
	"maps"
	"runtime"
)

// WebGPUProvider is ONNX Runtime's name for the WebGPU execution provider,
// as listed in GraphInfo.Providers and ModelInfo.Providers.
const WebGPUProvider = "WebGpuExecutionProvider"

// WithWebGPU asks for ONNX Runtime's WebGPU execution provider, which runs
// the model's operators as compute shaders through Dawn (Google's WebGPU
// implementation, built into the runtime library; on Linux it drives the
// GPU through Vulkan). It needs no CUDA: the Linux x64 library that `make
// ort` fetches already contains it, and it uses any GPU with a Vulkan
// driver. What happens when no usable GPU is found is set by WithFallback;
// the error is then a *ProviderError whose Hint says whether the Vulkan
// loader or a driver is missing.
//
// options are the provider's own string options, passed as given (ONNX
// Runtime ignores unknown keys and rejects bad values of known ones; see
// onnxruntime/core/providers/webgpu/webgpu_provider_options.h in ONNX
// Runtime's source). The useful ones:
//
//   - "powerPreference": "high-performance" or "low-power", the adapter Dawn
//     asks for when a machine has several GPUs. WebGPU has no device index.
//   - "preferredLayout": "NHWC" or "NCHW", the layout the provider converts
//     convolutions to.
//   - "validationMode": "disabled", "wgpuOnly", "basic" or "full" (more
//     checks, slower).
//   - "storageBufferCacheMode", "uniformBufferCacheMode",
//     "queryResolveBufferCacheMode", "defaultBufferCacheMode": "disabled",
//     "lazyRelease", "simple" or "bucket".
//   - "forceCpuNodeNames": node names, one per line, kept on the CPU.
//   - "dawnBackendType": "Vulkan" (Linux) or "D3D12" (Windows).
//
// "deviceId" is not a GPU index: it selects a WebGPU context, and contexts
// other than 0 need a WebGPU instance and device created by the caller,
// which this package does not do; leave it unset. "enableGraphCapture"
// needs inputs and outputs in GPU memory, which this package does not bind;
// leave it unset too.
//
// Concurrency: ONNX Runtime runs the calls of one WebGPU session one at a
// time (the provider does not support concurrent runs; a Model stays safe
// for concurrent use, and Upsample Guidance's two calls then simply take
// turns), but calls on two WebGPU sessions at the same time have been
// reported to crash the process on Linux (onnxruntime issue 32561, open at
// the time of writing): run two WebGPU models one after the other.
func WithWebGPU(options map[string]string) Option {
	return func(c *config) {
		c.providers = append(c.providers, provider{name: WebGPUProvider, kind: "webgpu", options: maps.Clone(options)})
	}
}

// webGPUHint narrows down why the WebGPU provider found no adapter. ONNX
// Runtime reports "No supported adapters" whether the Vulkan loader is
// missing, no driver is installed, or the driver is too old for Dawn (Dawn
// prints the detail on standard error), so the loader is probed here.
func webGPUHint() string {
	if runtime.GOOS != "linux" {
		return "WebGPU needs a GPU and a driver that Dawn supports; see the package documentation"
	}
	if err := probeVulkanLoader(); err != nil {
		return fmt.Sprintf("the Vulkan loader %s could not be loaded (%v): install it (Debian and Ubuntu: libvulkan1) "+
			"or put its directory on LD_LIBRARY_PATH, and install the GPU's Vulkan driver", vulkanLoader, err)
	}
	return "the Vulkan loader loads but no usable GPU adapter was found: install the GPU's Vulkan driver " +
		"(NVIDIA's driver ships the ICD file nvidia_icd.json; AMD and Intel use Mesa's RADV and ANV), " +
		"check it with vulkaninfo, or name the driver's ICD file in VK_DRIVER_FILES; " +
		"software Vulkan such as Debian 12's lavapipe is rejected"
}
