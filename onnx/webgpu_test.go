package onnx

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// webgpuChildEnv names the case a child process of TestWebGPUEnvironment
// checks; the parent sets up that case's Vulkan environment.
const webgpuChildEnv = "UGO_ONNX_WEBGPU_CASE"

// vulkanDebs is where `make vulkan-debs` keeps Debian's Vulkan loader and
// Mesa's Vulkan drivers, relative to this package.
const vulkanDebs = "../.cache/vulkan"

// TestWebGPUBadOption: the provider options reach ONNX Runtime's WebGPU
// provider under their plain names, which checks their values before it
// looks for a GPU, so a bad value fails the same way on every machine.
func TestWebGPUBadOption(t *testing.T) {
	requireRuntime(t)
	_, err := Open(modelPath("dynamic.onnx"), WithWebGPU(map[string]string{"preferredLayout": "NWHC"}))
	var pe *ProviderError
	if !errors.As(err, &pe) || pe.Provider != WebGPUProvider || !strings.Contains(err.Error(), "Invalid preferred layout: NWHC") {
		t.Fatalf("err = %v, want a *ProviderError for %s naming the bad layout", err, WebGPUProvider)
	}
}

// TestWebGPUEnvironment runs the WebGPU provider in child processes, one per
// Vulkan setup (the Vulkan loader is loaded once per process):
//
//   - no-loader: no libvulkan.so.1 on the loader path (this machine's own
//     setup; skipped where a Vulkan loader is installed);
//   - no-driver: a Vulkan loader (the system's, or Debian's libvulkan1 from
//     `make vulkan-debs`) with VK_DRIVER_FILES naming no driver;
//   - lavapipe: that loader with Mesa's software driver (the system's, or
//     Debian's mesa-vulkan-drivers from `make vulkan-debs`).
//
// In each, Open without fallback must fail with a *ProviderError whose hint
// names the missing piece, and Open with FallbackCPU must warn and compute
// on the CPU. Where an adapter is found after all (lavapipe with a Mesa
// recent enough for Dawn, or a GPU), the WebGPU run must match the
// reference instead.
func TestWebGPUEnvironment(t *testing.T) {
	if c := os.Getenv(webgpuChildEnv); c != "" {
		webgpuChild(t, c)
		return
	}
	requireRuntime(t)
	loaderEnv, loaderFrom := vulkanLoaderEnv(t)
	cases := []struct {
		name   string
		env    func(t *testing.T) []string
		stderr string // what Dawn or the Vulkan loader says on standard error
	}{
		{"no-loader", func(t *testing.T) []string {
			if err := probeVulkanLoader(); err == nil {
				t.Skip("a Vulkan loader is installed on this system: no process here can lack one")
			}
			return nil
		}, "Couldn't load Vulkan"},
		{"no-driver", func(t *testing.T) []string {
			if loaderEnv == nil {
				t.Skip("no Vulkan loader: install libvulkan1 or run `make vulkan-debs`")
			}
			none := filepath.Join(t.TempDir(), "no-driver.json")
			return append(slices.Clone(loaderEnv), "VK_DRIVER_FILES="+none, "VK_ICD_FILENAMES="+none)
		}, "Found no drivers"},
		{"lavapipe", func(t *testing.T) []string {
			if loaderEnv == nil {
				t.Skip("no Vulkan loader: install libvulkan1 or run `make vulkan-debs`")
			}
			icd := lavapipeICD(t)
			if icd == "" {
				t.Skip("no lavapipe driver: install mesa-vulkan-drivers or run `make vulkan-debs`")
			}
			return append(slices.Clone(loaderEnv), "VK_DRIVER_FILES="+icd, "VK_ICD_FILENAMES="+icd)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			if env != nil {
				t.Logf("Vulkan loader: %s", loaderFrom)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestWebGPUEnvironment$", "-test.v")
			cmd.Env = append(os.Environ(), webgpuChildEnv+"="+tc.name, "VK_ADD_DRIVER_FILES=")
			cmd.Env = append(cmd.Env, env...)
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("--- PASS")) {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			if tc.stderr != "" && !bytes.Contains(out, []byte(tc.stderr)) {
				t.Errorf("the child's output does not contain %q:\n%s", tc.stderr, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "Warning:") || strings.Contains(line, "webgpu_test.go") {
					t.Log(strings.TrimSpace(line))
				}
			}
		})
	}
}

// webgpuChild is the child side of TestWebGPUEnvironment.
func webgpuChild(t *testing.T, name string) {
	requireRuntime(t)
	x := randDense(rand.New(rand.NewPCG(7, 7)), 2, refC, 8, 12)
	want := reference(x.Float32s(), x.Shape(), func(int) float64 { return 321 }, nil)
	predict := func(m *Model) []float32 {
		dst := zerosLike(x)
		if err := m.PredictNoise(context.Background(), dst, x, []float32{321, 321}); err != nil {
			t.Fatal(err)
		}
		return dst.Float32s()
	}

	m, err := Open(modelPath("dynamic.onnx"), WithWebGPU(nil))
	if err == nil {
		defer m.Close()
		if name != "lavapipe" {
			t.Fatalf("%s: WebGPU found an adapter: %v", name, m.Info().Providers)
		}
		if !slices.Equal(m.Info().Providers, []string{WebGPUProvider, "CPUExecutionProvider"}) {
			t.Fatalf("Providers = %v", m.Info().Providers)
		}
		assertClose(t, predict(m), want, 1e-3, "WebGPU")
		t.Logf("%s: WebGPU adapter found; output matches the reference", name)
		return
	}
	var pe *ProviderError
	if !errors.Is(err, ErrProviderUnavailable) || !errors.As(err, &pe) || pe.Provider != WebGPUProvider {
		t.Fatalf("err = %v, want a *ProviderError for %s wrapping ErrProviderUnavailable", err, WebGPUProvider)
	}
	hint := "no usable GPU adapter"
	if name == "no-loader" {
		hint = "libvulkan.so.1 could not be loaded"
	}
	if !strings.Contains(pe.Hint, hint) || !strings.Contains(err.Error(), hint) {
		t.Fatalf("hint %q does not say %q", pe.Hint, hint)
	}
	t.Logf("%s: refused: %v", name, pe.Err)

	var logs bytes.Buffer
	m, err = Open(modelPath("dynamic.onnx"), WithWebGPU(nil), WithFallback(FallbackCPU),
		WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !slices.Equal(m.Info().Providers, []string{"CPUExecutionProvider"}) {
		t.Fatalf("Providers = %v", m.Info().Providers)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), WebGPUProvider) {
		t.Fatalf("no fallback warning logged: %q", logs.String())
	}
	assertClose(t, predict(m), want, 1e-4, "CPU fallback")
}

// vulkanLoaderEnv returns the environment that makes a Vulkan loader
// loadable (nil when there is none) and where it comes from: the system's,
// or Debian's libvulkan1 from `make vulkan-debs`, unpacked into a temporary
// folder put first on LD_LIBRARY_PATH.
func vulkanLoaderEnv(t *testing.T) ([]string, string) {
	if err := probeVulkanLoader(); err == nil {
		return []string{}, "the system's"
	}
	lib := unpackDeb(t, "libvulkan1")
	if lib == "" {
		return nil, "none"
	}
	ld := lib
	if old := os.Getenv("LD_LIBRARY_PATH"); old != "" {
		ld += string(os.PathListSeparator) + old
	}
	return []string{"LD_LIBRARY_PATH=" + ld}, "Debian's libvulkan1 from " + vulkanDebs
}

// lavapipeICD returns the ICD file of Mesa's lavapipe driver: the system's,
// or one written for mesa-vulkan-drivers from `make vulkan-debs`, unpacked
// into a temporary folder; "" when neither exists.
func lavapipeICD(t *testing.T) string {
	const name = "lvp_icd.x86_64.json"
	if p := "/usr/share/vulkan/icd.d/" + name; fileExists(p) {
		return p
	}
	lib := unpackDeb(t, "mesa-vulkan-drivers")
	if lib == "" || !fileExists(filepath.Join(lib, "libvulkan_lvp.so")) {
		return ""
	}
	icd := filepath.Join(t.TempDir(), name)
	body := `{"file_format_version": "1.0.0", "ICD": {"library_path": "` + filepath.Join(lib, "libvulkan_lvp.so") + `", "api_version": "1.1.0"}}`
	if err := os.WriteFile(icd, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return icd
}

// unpackDeb unpacks the amd64 .deb of pkg from vulkanDebs into a temporary
// folder with dpkg-deb and returns its library folder, or "" when the .deb
// or dpkg-deb is missing.
func unpackDeb(t *testing.T, pkg string) string {
	debs, _ := filepath.Glob(filepath.Join(vulkanDebs, pkg+"_*_amd64.deb"))
	if len(debs) == 0 {
		return ""
	}
	dpkg, err := exec.LookPath("dpkg-deb")
	if err != nil {
		t.Logf("%s: %v", debs[0], err)
		return ""
	}
	dir := t.TempDir()
	if out, err := exec.Command(dpkg, "-x", debs[len(debs)-1], dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", debs[len(debs)-1], err, out)
	}
	return filepath.Join(dir, "usr", "lib", "x86_64-linux-gnu")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestProviderErrorHint: without a narrowed-down hint, the message still
// points at what the provider needs.
func TestProviderErrorHint(t *testing.T) {
	cause := errors.New("boom")
	for _, tc := range []struct {
		e    *ProviderError
		want string
	}{
		{&ProviderError{Provider: WebGPUProvider, Err: cause}, "Vulkan driver"},
		{&ProviderError{Provider: "CUDAExecutionProvider", Err: cause}, "CUDA/cuDNN"},
		{&ProviderError{Provider: WebGPUProvider, Err: cause, Hint: "install libvulkan1"}, "install libvulkan1"},
	} {
		msg := tc.e.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "boom") || !strings.Contains(msg, tc.e.Provider) {
			t.Errorf("%q does not name the provider, the cause and %q", msg, tc.want)
		}
		if !errors.Is(tc.e, ErrProviderUnavailable) || !errors.Is(tc.e, cause) {
			t.Errorf("%v does not wrap ErrProviderUnavailable and its cause", tc.e)
		}
	}
}
