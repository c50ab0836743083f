package convnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"testing"

	"github.com/ugo-diffusion/ugo"
)

// resum rewrites the checksum of a weights file after a mutation.
func resum(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

// TestHostileWeights: headers that are valid field by field but describe an
// absurd network, and finite-checksummed files with NaN parameters.
func TestHostileWeights(t *testing.T) {
	good := encode(t, smallNet(t))
	le := binary.LittleEndian
	// Width 4096 with 64 blocks of dilation 1: about 38 GB of parameters
	// from a 300-byte header.
	var huge bytes.Buffer
	huge.WriteString(fileMagic)
	for _, v := range append([]uint32{fileVersion, 2, 4096, 4, 3, 64}, make([]uint32, 64)...) {
		binary.Write(&huge, le, v)
	}
	h := huge.Bytes()
	for i := 0; i < 64; i++ {
		le.PutUint32(h[len(h)-4*64+4*i:], 1)
	}
	binary.Write(&huge, le, uint32(len(testAbar)))
	for _, a := range testAbar {
		binary.Write(&huge, le, a)
	}
	_, err := Read(bytes.NewReader(huge.Bytes()))
	var me *ugo.MemoryError
	if !errors.As(err, &me) {
		t.Fatalf("a 38 GB configuration: %v, want a *ugo.MemoryError", err)
	}
	if _, err := New(Config{Channels: 2, Width: 4096, Dilations: make64(), EmbedDim: 4, TimeHidden: 3, AlphasCumprod: testAbar}, 1); !errors.As(err, &me) {
		t.Fatalf("New with a 38 GB configuration: %v", err)
	}
	nan := append([]byte(nil), good...)
	le.PutUint32(nan[len(nan)-8:], math.Float32bits(float32(math.NaN())))
	if _, err := Read(bytes.NewReader(resum(nan))); !errors.Is(err, ErrFormat) || !errors.Is(err, ugo.ErrNonFinite) {
		t.Fatalf("a NaN parameter: %v", err)
	}
}

func make64() []int {
	d := make([]int, 64)
	for i := range d {
		d[i] = 1
	}
	return d
}

// FuzzRead: any byte string is an ErrFormat error (or an I/O or memory
// error), or a network that writes back to the same bytes.
func FuzzRead(f *testing.F) {
	good := encode(&testing.T{}, smallNet(&testing.T{}))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(fileMagic))
	f.Add([]byte{})
	flipped := append([]byte(nil), good...)
	flipped[20] ^= 0xff
	f.Add(resum(flipped))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Read(bytes.NewReader(data))
		if err != nil {
			var me *ugo.MemoryError
			if !errors.Is(err, ErrFormat) && !errors.As(err, &me) {
				t.Fatalf("error %v wraps neither ErrFormat nor a *ugo.MemoryError", err)
			}
			return
		}
		var out bytes.Buffer
		if _, err := n.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Fatal("a file that reads does not write back to itself")
		}
	})
}
