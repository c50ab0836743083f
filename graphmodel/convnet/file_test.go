package convnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func smallNet(t *testing.T) *Net {
	t.Helper()
	return randomNet(t, Config{Channels: 2, Width: 3, Dilations: []int{1, 2}, EmbedDim: 4, TimeHidden: 3, AlphasCumprod: testAbar}, 8)
}

func encode(t *testing.T, n *Net) []byte {
	t.Helper()
	var buf bytes.Buffer
	k, err := n.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if k != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d bytes", k, buf.Len())
	}
	return buf.Bytes()
}

func sameNet(t *testing.T, a, b *Net) {
	t.Helper()
	ca, cb := a.Config(), b.Config()
	if ca.Channels != cb.Channels || ca.Width != cb.Width || ca.EmbedDim != cb.EmbedDim ||
		ca.TimeHidden != cb.TimeHidden || !slices.Equal(ca.Dilations, cb.Dilations) {
		t.Fatalf("configs differ: %+v and %+v", ca, cb)
	}
	pb := b.Params()
	for i, p := range a.Params() {
		for j, v := range p.Value.Float32s() {
			if math.Float32bits(v) != math.Float32bits(pb[i].Value.Float32s()[j]) {
				t.Fatalf("%s[%d]: %v and %v", p.Name, j, v, pb[i].Value.Float32s()[j])
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	n := smallNet(t)
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := n.Save(path); err != nil {
		t.Fatal(err)
	}
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sameNet(t, n, m)
	// Save leaves no temporary file behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("%d files in the folder after Save, want 1", len(entries))
	}
	// The default configuration round-trips too, and Clone copies.
	d, _ := New(DefaultConfig(), 4)
	e, err := Read(bytes.NewReader(encode(t, d)))
	if err != nil {
		t.Fatal(err)
	}
	sameNet(t, d, e)
	sameNet(t, d, d.Clone())
	if err := d.CopyFrom(n); err == nil {
		t.Error("CopyFrom between different configurations: no error")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.bin")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := smallNet(t).Save(filepath.Join(dir, "no", "such", "dir.bin")); err == nil {
		t.Error("Save into a missing folder: no error")
	}

	good := encode(t, smallNet(t))
	// Every truncation is an ErrFormat error mentioning truncation (or,
	// for the last bytes, the checksum).
	for k := 0; k < len(good); k++ {
		_, err := Read(bytes.NewReader(good[:k]))
		if !errors.Is(err, ErrFormat) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("truncated to %d of %d bytes: %v, want ErrFormat wrapping io.ErrUnexpectedEOF", k, len(good), err)
		}
	}
	path := filepath.Join(dir, "short.bin")
	os.WriteFile(path, good[:len(good)/2], 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "truncated") || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: %v", err)
	}

	mutate := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	le := binary.LittleEndian
	count := 44 + 4*len(testAbar) // offset of the parameter count
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"onnx file", []byte("\x08\x07\x12\x07pytorch-------------"), "magic"},
		{"version", mutate(func(b []byte) []byte { le.PutUint32(b[8:], 2); return b }), "version"},
		{"odd EmbedDim", mutate(func(b []byte) []byte { le.PutUint32(b[20:], 3); return b }), "EmbedDim"},
		{"huge Width", mutate(func(b []byte) []byte { le.PutUint32(b[16:], 1<<30); return b }), "Width"},
		{"Width changed", mutate(func(b []byte) []byte { le.PutUint32(b[16:], 4); return b }), "shape"},
		{"schedule length", mutate(func(b []byte) []byte { le.PutUint32(b[40:], 1); return b }), "schedule"},
		{"schedule value", mutate(func(b []byte) []byte { le.PutUint32(b[44+4*7:], 0); return b }), "AlphasCumprod[7]"},
		{"parameter count", mutate(func(b []byte) []byte { le.PutUint32(b[count:], 99); return b }), "parameters"},
		{"name", mutate(func(b []byte) []byte { b[count+8] = 'X'; return b }), "parameter"},
		{"value flipped", mutate(func(b []byte) []byte { b[len(b)-9] ^= 1; return b }), "checksum"},
		{"trailing data", append(append([]byte(nil), good...), 0), "after the checksum"},
	}
	for _, tc := range cases {
		_, err := Read(bytes.NewReader(tc.data))
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrFormat mentioning %q", tc.name, err, tc.want)
		}
	}
}
