//go:build !linux

package onnx

import "errors"

const vulkanLoader = "the Vulkan loader"

// probeVulkanLoader is only implemented on Linux.
func probeVulkanLoader() error { return errors.New("not probed on this system") }
