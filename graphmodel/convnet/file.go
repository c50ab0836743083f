package convnet

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/ugo-diffusion/ugo"
)

// The magic string and version of the weights file format (see WriteTo).
const (
	fileMagic   = "UGOCNET\n"
	fileVersion = 1
)

// ErrFormat is wrapped by every error Read returns for a file that is not a
// valid weights file (wrong magic or version, a configuration or parameter
// that does not fit, truncation, a bad checksum).
var ErrFormat = errors.New("convnet: invalid weights file")

// WriteTo writes the network (configuration and parameters) to w in the
// weights file format and returns the number of bytes written.
//
// The format, version 1: all integers are little-endian uint32, all
// parameters little-endian IEEE 754 float32, in this order:
//
//	magic      8 bytes "UGOCNET\n"
//	version    1
//	config     Channels, Width, EmbedDim, TimeHidden, len(Dilations), Dilations...,
//	           len(AlphasCumprod), AlphasCumprod... (float32)
//	count      number of parameters
//	parameter  count times: name length, name (UTF-8), rank, dims..., values
//	checksum   CRC-32 (IEEE) of every byte before it
//
// Parameters come in the canonical order of Net.Params; Read checks every
// name and shape against the configuration.
func (n *Net) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	crc := crc32.NewIEEE()
	bw := bufio.NewWriter(io.MultiWriter(cw, crc))
	var buf [4]byte
	u32 := func(v int) {
		binary.LittleEndian.PutUint32(buf[:], uint32(v))
		bw.Write(buf[:])
	}
	bw.WriteString(fileMagic)
	u32(fileVersion)
	c := n.cfg
	u32(c.Channels)
	u32(c.Width)
	u32(c.EmbedDim)
	u32(c.TimeHidden)
	u32(len(c.Dilations))
	for _, d := range c.Dilations {
		u32(d)
	}
	u32(len(c.AlphasCumprod))
	for _, a := range c.AlphasCumprod {
		binary.LittleEndian.PutUint32(buf[:], math.Float32bits(a))
		bw.Write(buf[:])
	}
	u32(len(n.params))
	for _, p := range n.params {
		u32(len(p.Name))
		bw.WriteString(p.Name)
		shape := p.Value.Shape()
		u32(len(shape))
		for _, d := range shape {
			u32(d)
		}
		for _, v := range p.Value.Float32s() {
			binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
			bw.Write(buf[:])
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	binary.LittleEndian.PutUint32(buf[:], crc.Sum32())
	_, err := cw.Write(buf[:])
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Save writes the network to the file path (through a temporary file in
// the same folder, renamed into place, so that path never holds half a
// file).
func (n *Net) Save(path string) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".convnet-*")
	if err != nil {
		return fmt.Errorf("convnet: saving weights: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("convnet: saving weights: %w", err)
	}
	if _, err = n.WriteTo(f); err != nil {
		return fmt.Errorf("convnet: writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("convnet: writing %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("convnet: saving weights: %w", err)
	}
	return nil
}

// Load reads a network from the file path, written by Save.
func Load(path string) (*Net, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("convnet: loading weights: %w", err)
	}
	defer f.Close()
	n, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// Read reads a network in the weights file format from r, and checks
// that nothing follows it. Errors about the content wrap ErrFormat.
func Read(r io.Reader) (*Net, error) {
	crc := crc32.NewIEEE()
	fr := &fileReader{r: io.TeeReader(bufio.NewReader(r), crc), crc: crc}
	var magic [len(fileMagic)]byte
	fr.full(magic[:], "magic")
	if fr.err != nil {
		return nil, fr.err
	}
	if !bytes.Equal(magic[:], []byte(fileMagic)) {
		return nil, fmt.Errorf("%w: magic %q, want %q (not a convnet weights file)", ErrFormat, magic[:], fileMagic)
	}
	if v := fr.u32("version"); fr.err == nil && v != fileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrFormat, v, fileVersion)
	}
	var c Config
	c.Channels = fr.small("Channels")
	c.Width = fr.small("Width")
	c.EmbedDim = fr.small("EmbedDim")
	c.TimeHidden = fr.small("TimeHidden")
	nd := fr.small("number of blocks")
	if fr.err == nil && nd > 64 {
		return nil, fmt.Errorf("%w: %d blocks, want at most 64", ErrFormat, nd)
	}
	for i := 0; i < nd && fr.err == nil; i++ {
		c.Dilations = append(c.Dilations, fr.small("dilation"))
	}
	T := fr.u32("schedule length")
	if fr.err == nil && (T < 2 || T > maxT) {
		return nil, fmt.Errorf("%w: schedule of %d steps, want 2..%d", ErrFormat, T, maxT)
	}
	if fr.err != nil {
		return nil, fr.err
	}
	raw := make([]byte, 4*T)
	fr.full(raw, "schedule")
	if fr.err != nil {
		return nil, fr.err
	}
	c.AlphasCumprod = make([]float32, T)
	for i := range c.AlphasCumprod {
		c.AlphasCumprod[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	// The parameters are read before the network is allocated, each into
	// a buffer that grows with the data actually present: a short or
	// lying file costs its own size, not what its header promises.
	shapes := paramShapes(c)
	var need int64
	for _, ps := range shapes {
		need += ugo.TensorBytes(2, ps.shape...) // read buffer and network
	}
	if err := ugo.CheckMemory(fmt.Sprintf("convnet: reading the parameters of configuration Width %d, %d blocks", c.Width, len(c.Dilations)), need); err != nil {
		return nil, err
	}
	if count := fr.u32("parameter count"); fr.err == nil && count != uint32(len(shapes)) {
		return nil, fmt.Errorf("%w: %d parameters, want %d for configuration %+v", ErrFormat, count, len(shapes), c)
	}
	values := make([][]float32, len(shapes))
	for k, p := range shapes {
		nameLen := fr.small("name length")
		if fr.err != nil {
			return nil, fr.err
		}
		if nameLen > 64 {
			return nil, fmt.Errorf("%w: parameter name of %d bytes, want at most 64", ErrFormat, nameLen)
		}
		name := make([]byte, nameLen)
		fr.full(name, "parameter name")
		rank := fr.small("rank")
		if fr.err != nil {
			return nil, fr.err
		}
		if string(name) != p.name {
			return nil, fmt.Errorf("%w: parameter %q, want %q", ErrFormat, name, p.name)
		}
		if rank != len(p.shape) {
			return nil, fmt.Errorf("%w: parameter %s has rank %d, want %d", ErrFormat, p.name, rank, len(p.shape))
		}
		size := 1
		for i := range rank {
			if d := fr.small("dimension"); fr.err == nil && d != p.shape[i] {
				return nil, fmt.Errorf("%w: parameter %s has dimension %d = %d, want shape %v", ErrFormat, p.name, i, d, p.shape)
			}
			size *= p.shape[i]
		}
		raw := fr.upTo(4*size, "values of "+p.name)
		if fr.err != nil {
			return nil, fr.err
		}
		vals := make([]float32, size)
		for i := range vals {
			vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			if v := vals[i]; v-v != 0 {
				return nil, fmt.Errorf("%w: parameter %s element %d is %v: %w", ErrFormat, p.name, i, v, ugo.ErrNonFinite)
			}
		}
		values[k] = vals
	}
	sum := crc.Sum32()
	if got := fr.u32("checksum"); fr.err == nil && got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x (corrupt file)", ErrFormat, got, sum)
	}
	if fr.err != nil {
		return nil, fr.err
	}
	var extra [1]byte
	if k, _ := fr.r.Read(extra[:]); k > 0 {
		return nil, fmt.Errorf("%w: data after the checksum", ErrFormat)
	}
	n, err := newZero(c)
	if err != nil {
		return nil, err
	}
	for k, p := range n.params {
		copy(p.Value.Float32s(), values[k])
	}
	return n, nil
}

// fileReader reads the fields of a weights file and keeps the first error.
type fileReader struct {
	r   io.Reader
	crc hash.Hash32
	off int64
	err error
}

func (fr *fileReader) full(p []byte, what string) {
	if fr.err != nil {
		return
	}
	k, err := io.ReadFull(fr.r, p)
	fr.off += int64(k)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			fr.err = fmt.Errorf("%w: truncated at byte %d, reading the %s: %w", ErrFormat, fr.off, what, io.ErrUnexpectedEOF)
		} else {
			fr.err = fmt.Errorf("convnet: reading the %s: %w", what, err)
		}
	}
}

// upTo reads n bytes, growing its buffer with the data that arrives rather
// than allocating n up front.
func (fr *fileReader) upTo(n int, what string) []byte {
	if fr.err != nil {
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(fr.r, int64(n)))
	fr.off += int64(len(b))
	if err != nil {
		fr.err = fmt.Errorf("convnet: reading the %s: %w", what, err)
		return nil
	}
	if len(b) < n {
		fr.err = fmt.Errorf("%w: truncated at byte %d, reading the %s: %w", ErrFormat, fr.off, what, io.ErrUnexpectedEOF)
		return nil
	}
	return b
}

func (fr *fileReader) u32(what string) uint32 {
	var b [4]byte
	fr.full(b[:], what)
	if fr.err != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b[:])
}

// small reads a uint32 that must be at most maxDim (sizes, counts).
func (fr *fileReader) small(what string) int {
	v := fr.u32(what)
	if fr.err == nil && v > maxDim {
		fr.err = fmt.Errorf("%w: %s is %d, want at most %d", ErrFormat, what, v, maxDim)
	}
	return int(v)
}
