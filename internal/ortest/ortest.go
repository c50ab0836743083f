// Package ortest lets the tests of packages that use ONNX Runtime find the
// library `make ort` installs and skip, or under CI fail, when it is
// missing. It is for tests only. (Package onnx's own tests keep their copy:
// importing this package from them would be an import cycle.)
package ortest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ugo-diffusion/ugo/onnx"
)

// RepoLibrary is where `make ort` links the ONNX Runtime library it
// installs (scripts/ort.sh pins the version), relative to the repository
// root.
const RepoLibrary = ".cache/ort/libonnxruntime.so.1"

// UseRepoLibrary points onnx.LibraryEnv at the repository's library when
// the environment names none: it looks for RepoLibrary in the working
// directory and its parents. Call it from TestMain, before any test starts
// the runtime (or a subprocess that does).
func UseRepoLibrary() {
	if os.Getenv(onnx.LibraryEnv) != "" {
		return
	}
	dir, err := os.Getwd()
	if err != nil {
		return
	}
	for {
		p := filepath.Join(dir, RepoLibrary)
		if _, err := os.Stat(p); err == nil {
			os.Setenv(onnx.LibraryEnv, p)
			return
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
}

// Require initialises ONNX Runtime or skips the test; under CI (CI=true) a
// missing runtime fails the test instead.
func Require(tb testing.TB) {
	tb.Helper()
	UseRepoLibrary()
	if err := onnx.InitRuntime(""); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("ONNX Runtime is required under CI: %v", err)
		}
		tb.Skipf("ONNX Runtime not available (run `make ort` and set %s): %v", onnx.LibraryEnv, err)
	}
}
