package fashion

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func idxFile(magic uint32, dims [3]uint32, body []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	binary.Write(zw, binary.BigEndian, append([]uint32{magic}, dims[:]...))
	zw.Write(body)
	zw.Close()
	return b.Bytes()
}

// FuzzReadIDXImages: any file is an error or images whose count and size
// match the data returned, with values in [-1, 1].
func FuzzReadIDXImages(f *testing.F) {
	f.Add(idxFile(0x803, [3]uint32{2, 2, 3}, []byte{0, 255, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
	f.Add(idxFile(0x803, [3]uint32{1 << 21, 1 << 21, 1 << 22}, nil)) // the product wraps to 0 in 64 bits
	f.Add(idxFile(0x803, [3]uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil))
	f.Add(idxFile(0x803, [3]uint32{1 << 20, 28, 28}, []byte{1, 2, 3})) // a header promising 800 MB
	f.Add(idxFile(0x801, [3]uint32{1, 1, 1}, []byte{0}))
	f.Add([]byte("not gzip"))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "f.gz")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		imgs, n, h, w, err := ReadIDXImages(p)
		if err != nil {
			return
		}
		if n <= 0 || h <= 0 || w <= 0 || len(imgs) != n*h*w {
			t.Fatalf("%d values for %d x %d x %d", len(imgs), n, h, w)
		}
		for _, v := range imgs {
			if !(v >= -1 && v <= 1) {
				t.Fatalf("value %v", v)
			}
		}
	})
}
