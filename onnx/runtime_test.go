package onnx

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// subprocessEnv marks a child test process that must not load the library,
// so that discovery failures can be tested (the runtime loads once per process).
const subprocessEnv = "UGO_ONNX_TEST_CHILD"

func TestLibraryCandidates(t *testing.T) {
	cases := []struct {
		name     string
		explicit string
		env      string
		first    []LibraryAttempt
		onlyOne  bool
	}{
		{"explicit is authoritative", "/x/libonnxruntime.so", "/env/lib.so", []LibraryAttempt{{Path: "/x/libonnxruntime.so", Source: "option"}}, true},
		{"environment first", "", "/env/lib.so", []LibraryAttempt{{Path: "/env/lib.so", Source: LibraryEnv}}, false},
		{"system only", "", "", []LibraryAttempt{{Path: systemLibraries()[0], Source: "system"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(LibraryEnv, tc.env)
			got := libraryCandidates(tc.explicit)
			if len(got) < len(tc.first) || !slices.Equal(got[:len(tc.first)], tc.first) {
				t.Fatalf("candidates = %v, want to start with %v", got, tc.first)
			}
			if tc.onlyOne != (len(got) == 1) {
				t.Fatalf("got %d candidates", len(got))
			}
		})
	}
}

// TestLibraryNotFound runs itself in a child process where no library can
// load, and checks the error lists the attempts and how to get a library.
func TestLibraryNotFound(t *testing.T) {
	if mode := os.Getenv(subprocessEnv); mode != "" {
		if ok, _ := lookSystemLibrary(); ok {
			t.Skip("a system ONNX Runtime is installed; discovery cannot fail here")
		}
		var opts []Option
		if mode == "option" {
			opts = append(opts, WithLibraryPath("/nonexistent/option/libonnxruntime.so"))
		}
		_, err := Open(modelPath("dynamic.onnx"), opts...)
		var le *LibraryError
		if !errors.As(err, &le) {
			t.Fatalf("err = %v, want a *LibraryError", err)
		}
		msg := err.Error()
		for _, want := range []string{"make ort", LibraryEnv, "releases"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error does not mention %q:\n%s", want, msg)
			}
		}
		switch mode {
		case "option":
			if len(le.Tried) != 1 || le.Tried[0].Source != "option" {
				t.Errorf("tried %v, want only the option", le.Tried)
			}
		case "env":
			if len(le.Tried) < 2 || le.Tried[0].Path != "/nonexistent/env/libonnxruntime.so" || le.Tried[1].Source != "system" {
				t.Errorf("tried %v, want the environment then the system", le.Tried)
			}
		}
		return
	}
	for _, mode := range []string{"option", "env"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLibraryNotFound$", "-test.v")
			cmd.Env = append(os.Environ(), subprocessEnv+"="+mode, LibraryEnv+"=/nonexistent/env/libonnxruntime.so")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			if !bytes.Contains(out, []byte("--- PASS")) {
				t.Fatalf("child did not pass:\n%s", out)
			}
		})
	}
}

// lookSystemLibrary reports whether a system-wide library exists at one of
// the absolute candidate paths.
func lookSystemLibrary() (bool, string) {
	for _, p := range systemLibraries() {
		if strings.HasPrefix(p, "/") {
			if _, err := os.Stat(p); err == nil {
				return true, p
			}
		}
	}
	return false, ""
}

func TestInitRuntimeTwice(t *testing.T) {
	requireRuntime(t)
	if err := InitRuntime(""); err != nil {
		t.Fatalf("second InitRuntime: %v", err)
	}
	if lib := RuntimeLibrary(); lib != "" {
		if err := InitRuntime(lib); err != nil {
			t.Fatalf("InitRuntime with the loaded library: %v", err)
		}
	}
	err := InitRuntime(t.TempDir() + "/other/libonnxruntime.so")
	if err == nil || !strings.Contains(err.Error(), "one runtime per process") {
		t.Fatalf("err = %v, want a one-runtime error", err)
	}
	if RuntimeVersion() == "" {
		t.Fatal("RuntimeVersion is empty")
	}
}

// TestGPUProviders checks both fallback policies for CUDA, TensorRT and
// WebGPU. On a machine with the CPU-only library (or, for WebGPU, without a
// Vulkan GPU) the providers cannot be appended; where they can, the test
// checks they were.
func TestGPUProviders(t *testing.T) {
	requireRuntime(t)
	cases := []struct {
		name string
		opt  Option
		ep   string
	}{
		{"CUDA", WithCUDA(0, map[string]string{"cudnn_conv_algo_search": "DEFAULT"}), "CUDAExecutionProvider"},
		{"TensorRT", WithTensorRT(0, map[string]string{"trt_fp16_enable": "0"}), "TensorrtExecutionProvider"},
		{"WebGPU", WithWebGPU(map[string]string{"powerPreference": "high-performance"}), WebGPUProvider},
	}
	for _, tc := range cases {
		t.Run(tc.name+"/fail", func(t *testing.T) {
			m, err := Open(modelPath("dynamic.onnx"), tc.opt)
			if err == nil {
				defer m.Close()
				if !slices.Contains(m.Info().Providers, tc.ep) {
					t.Fatalf("Open succeeded without %s: %v", tc.ep, m.Info().Providers)
				}
				t.Skipf("%s is available here", tc.ep)
			}
			var pe *ProviderError
			if !errors.Is(err, ErrProviderUnavailable) || !errors.As(err, &pe) || pe.Provider != tc.ep {
				t.Fatalf("err = %v, want a *ProviderError for %s wrapping ErrProviderUnavailable", err, tc.ep)
			}
		})
		t.Run(tc.name+"/cpu fallback", func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			m, err := Open(modelPath("dynamic.onnx"), tc.opt, WithFallback(FallbackCPU), WithLogger(logger))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if slices.Contains(m.Info().Providers, tc.ep) {
				t.Skipf("%s is available here", tc.ep)
			}
			if !slices.Equal(m.Info().Providers, []string{"CPUExecutionProvider"}) {
				t.Fatalf("Providers = %v", m.Info().Providers)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), tc.ep) {
				t.Fatalf("no fallback warning logged: %q", logs.String())
			}
			x := zerosLike(tensor.New(tensor.WithShape(1, 2, 4, 4), tensor.Of(tensor.Float32)))
			x.Float32s()[3] = 1
			dst := zerosLike(x)
			if err := m.PredictNoise(context.Background(), dst, x, []float32{10}); err != nil {
				t.Fatal(err)
			}
			want := reference(x.Float32s(), []int{1, 2, 4, 4}, func(int) float64 { return 10 }, nil)
			assertClose(t, dst.Float32s(), want, 1e-4, "fallback")
		})
	}
}
