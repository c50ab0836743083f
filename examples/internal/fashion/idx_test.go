package fashion

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeGz(t *testing.T, data []byte) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write(data)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	p := filepath.Join(t.TempDir(), "x.gz")
	require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
	return p
}

func TestReadIDXImages(t *testing.T) {
	hdr := []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2}
	p := writeGz(t, append(hdr, 0, 255, 51, 204))
	data, n, h, w, err := ReadIDXImages(p)
	require.NoError(t, err)
	require.Equal(t, []int{2, 1, 2}, []int{n, h, w})
	require.InDeltaSlice(t, []float32{-1, 1, -0.6, 0.6}, data, 1e-6)

	_, _, _, _, err = ReadIDXImages(writeGz(t, append(hdr, 0, 1, 2)))
	require.ErrorContains(t, err, "reading 2 images")
	bad := append([]byte{0, 0, 8, 1}, hdr[4:]...)
	_, _, _, _, err = ReadIDXImages(writeGz(t, bad))
	require.ErrorContains(t, err, "magic")
	_, _, _, _, err = ReadIDXImages(filepath.Join(t.TempDir(), "missing.gz"))
	require.Error(t, err)
	notGz := filepath.Join(t.TempDir(), "plain")
	require.NoError(t, os.WriteFile(notGz, hdr, 0o644))
	_, _, _, _, err = ReadIDXImages(notGz)
	require.Error(t, err)
}

func TestAreaDownsample(t *testing.T) {
	// Two 2x4 images pooled by 2 into 1x2 each.
	src := []float32{
		1, 3, 5, 7,
		1, 3, 5, 7,
		0, 0, 4, 4,
		0, 0, 8, 8,
	}
	dst := make([]float32, 4)
	AreaDownsample(dst, src, 2, 2, 4, 2)
	require.Equal(t, []float32{2, 6, 0, 6}, dst)
}
