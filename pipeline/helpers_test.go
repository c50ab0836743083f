package pipeline

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/internal/ortest"
	"github.com/ugo-diffusion/ugo/onnx"
)

func TestMain(m *testing.M) {
	ortest.UseRepoLibrary()
	os.Exit(m.Run())
}

// tinyDir is a tiny SD-shaped model folder made by tools/sdtiny/gen.py.
func tinyDir(variant string) string { return filepath.Join("..", "testdata", "sdtiny", variant) }

// load opens a tiny model (single-threaded ONNX Runtime, to share the
// machine with -race) and closes it at the end of the test.
func load(tb testing.TB, dir string, opts ...Option) *Model {
	tb.Helper()
	ortest.Require(tb)
	opts = append([]Option{WithONNXOptions(onnx.WithThreads(1, 1))}, opts...)
	m, err := Load(dir, opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, m.Close()) })
	return m
}

// copyDir copies a model folder into a temporary directory, for tests that
// remove or change files.
func copyDir(tb testing.TB, src string) string {
	tb.Helper()
	dst := tb.TempDir()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	require.NoError(tb, err)
	return dst
}

// maxAbsDiff returns max |a-b|, failing on length mismatch.
func maxAbsDiff(tb testing.TB, a, b []float32) float64 {
	tb.Helper()
	require.Equal(tb, len(a), len(b))
	worst := 0.0
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = max(worst, d)
	}
	return worst
}
