package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// LibraryEnv is the environment variable consulted for the ONNX Runtime
// shared library when no WithLibraryPath option is given.
const LibraryEnv = "ONNXRUNTIME_SHARED_LIBRARY_PATH"

// MinRuntimeVersion is the oldest ONNX Runtime release that the pinned
// binding (github.com/yalue/onnxruntime_go v1.35.0) can load.
const MinRuntimeVersion = "1.29"

// LibraryError reports that no usable ONNX Runtime shared library was found.
// Tried lists every candidate in the order it was tried, with the reason it
// was rejected.
type LibraryError struct {
	Tried []LibraryAttempt
}

// LibraryAttempt is one candidate library tried by InitRuntime.
type LibraryAttempt struct {
	// Path is the file name or path handed to the dynamic loader.
	Path string
	// Source says where the candidate came from: "option", LibraryEnv or "system".
	Source string
	// Err is why the candidate was rejected.
	Err error
}

// Error implements error. The message lists what was tried and how to get a
// library.
func (e *LibraryError) Error() string {
	var b strings.Builder
	b.WriteString("onnx: no usable ONNX Runtime shared library (need >= ")
	b.WriteString(MinRuntimeVersion)
	b.WriteString("); tried:")
	for _, a := range e.Tried {
		fmt.Fprintf(&b, "\n  %s (%s): %v", a.Path, a.Source, a.Err)
	}
	b.WriteString("\nto get one: run `make ort` in the ugo repository (Linux x64 CPU build, then set " +
		LibraryEnv + " to the path it prints), or download an official ONNX Runtime release " +
		"(onnxruntime-linux-x64-gpu-* for CUDA) from https://github.com/microsoft/onnxruntime/releases " +
		"and pass its lib/libonnxruntime.so via WithLibraryPath or " + LibraryEnv)
	return b.String()
}

// runtimeState is the process-wide ONNX Runtime environment. The binding
// allows one environment per process; it is created on first use and never
// destroyed.
var runtimeState struct {
	mu      sync.Mutex
	path    string // library that was loaded ("" when initialised by someone else)
	version string
}

// systemLibraries lists the names and paths tried when neither an option nor
// the environment names a library. Bare names are resolved by the dynamic
// loader (LD_LIBRARY_PATH, the ld.so cache, DYLD_LIBRARY_PATH, PATH).
func systemLibraries() []string {
	switch runtime.GOOS {
	case "windows":
		return []string{"onnxruntime.dll"}
	case "darwin":
		return []string{
			"libonnxruntime.dylib",
			"/opt/homebrew/lib/libonnxruntime.dylib",
			"/usr/local/lib/libonnxruntime.dylib",
		}
	default:
		return []string{
			"libonnxruntime.so",
			"libonnxruntime.so.1",
			"/usr/local/lib/libonnxruntime.so",
			"/usr/local/lib/libonnxruntime.so.1",
			"/usr/lib/libonnxruntime.so",
			"/usr/lib/" + runtime.GOARCH + "-linux-gnu/libonnxruntime.so",
			"/usr/lib/x86_64-linux-gnu/libonnxruntime.so",
			"/usr/lib/aarch64-linux-gnu/libonnxruntime.so",
			"/opt/onnxruntime/lib/libonnxruntime.so",
		}
	}
}

// libraryCandidates returns the candidates in discovery order. An explicit
// path is authoritative: when given, it is the only candidate.
func libraryCandidates(explicit string) []LibraryAttempt {
	if explicit != "" {
		return []LibraryAttempt{{Path: explicit, Source: "option"}}
	}
	var c []LibraryAttempt
	if env := os.Getenv(LibraryEnv); env != "" {
		c = append(c, LibraryAttempt{Path: env, Source: LibraryEnv})
	}
	seen := map[string]bool{}
	for _, p := range systemLibraries() {
		if !seen[p] {
			seen[p] = true
			c = append(c, LibraryAttempt{Path: p, Source: "system"})
		}
	}
	return c
}

// InitRuntime loads the ONNX Runtime shared library and creates the
// process-wide environment, once. Open calls it; call it yourself to load
// the library early or to check that one is available.
//
// Discovery order: libraryPath when non-empty (and then nothing else), then
// the file named by the ONNXRUNTIME_SHARED_LIBRARY_PATH environment
// variable, then the usual system names and paths (libonnxruntime.so and
// libonnxruntime.so.1 through the dynamic loader, /usr/local/lib, /usr/lib,
// /opt/onnxruntime/lib; libonnxruntime.dylib on macOS, onnxruntime.dll on
// Windows). When nothing loads, the error is a *LibraryError listing every
// attempt and how to get a library.
//
// InitRuntime is safe for concurrent use. After a successful call later calls
// return nil at once; a later call naming a different libraryPath is an
// error, because a process can hold only one ONNX Runtime.
func InitRuntime(libraryPath string) error {
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	if ort.IsInitialized() {
		if libraryPath != "" && runtimeState.path != "" && !sameFile(libraryPath, runtimeState.path) {
			return fmt.Errorf("onnx: ONNX Runtime is already loaded from %s; cannot also load %s (one runtime per process)",
				runtimeState.path, libraryPath)
		}
		return nil
	}
	lerr := &LibraryError{}
	for _, cand := range libraryCandidates(libraryPath) {
		if filepath.IsAbs(cand.Path) || strings.ContainsRune(cand.Path, os.PathSeparator) {
			if _, err := os.Stat(cand.Path); err != nil {
				cand.Err = errors.Unwrap(err)
				if cand.Err == nil {
					cand.Err = err
				}
				lerr.Tried = append(lerr.Tried, cand)
				continue
			}
		}
		ort.SetSharedLibraryPath(cand.Path)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			cand.Err = err
			lerr.Tried = append(lerr.Tried, cand)
			continue
		}
		runtimeState.path = cand.Path
		runtimeState.version = ort.GetVersion()
		return nil
	}
	return lerr
}

// RuntimeVersion returns the version of the loaded ONNX Runtime library, or
// "" before a successful InitRuntime or Open.
func RuntimeVersion() string {
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	if runtimeState.version == "" && ort.IsInitialized() {
		runtimeState.version = ort.GetVersion()
	}
	return runtimeState.version
}

// RuntimeLibrary returns the path or name of the loaded ONNX Runtime shared
// library, or "" when none is loaded (or when the environment was created
// outside this package).
func RuntimeLibrary() string {
	runtimeState.mu.Lock()
	defer runtimeState.mu.Unlock()
	return runtimeState.path
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
