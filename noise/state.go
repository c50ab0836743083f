package noise

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ErrState is wrapped by the error UnmarshalBinary returns for a state that
// is not one this package wrote for that kind of source: wrong kind, wrong
// version, wrong length or an impossible value.
var ErrState = errors.New("noise: invalid source state")

// The state encodings start with a four-byte tag naming the kind of source
// and a version byte, so that a state is never restored into another kind.
const stateVersion = 1

var (
	tagTorchCPU = [4]byte{'u', 'g', 't', 'c'}
	tagPhilox   = [4]byte{'u', 'g', 'p', 'x'}
	tagPCG      = [4]byte{'u', 'g', 'p', 'g'}
	tagPerImage = [4]byte{'u', 'g', 'p', 'i'}
)

func header(tag [4]byte, n int) []byte {
	b := make([]byte, 5, 5+n)
	copy(b, tag[:])
	b[4] = stateVersion
	return b
}

func checkHeader(data []byte, tag [4]byte, what string) ([]byte, error) {
	if len(data) < 5 || [4]byte(data[:4]) != tag {
		return nil, fmt.Errorf("%w: not a %s state", ErrState, what)
	}
	if data[4] != stateVersion {
		return nil, fmt.Errorf("%w: %s state version %d, want %d", ErrState, what, data[4], stateVersion)
	}
	return data[5:], nil
}

// Saving and restoring sources: every source of this package implements
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler, as math/rand/v2's
// PCG does, so that a run resumed in another process (sampler.Options's
// StartStep) continues the same stream of noise.
var (
	_ encoding.BinaryMarshaler   = (*TorchCPU)(nil)
	_ encoding.BinaryUnmarshaler = (*TorchCPU)(nil)
	_ encoding.BinaryMarshaler   = (*Philox)(nil)
	_ encoding.BinaryUnmarshaler = (*Philox)(nil)
	_ encoding.BinaryMarshaler   = (*PCG)(nil)
	_ encoding.BinaryUnmarshaler = (*PCG)(nil)
	_ encoding.BinaryMarshaler   = perImage(nil)
	_ encoding.BinaryUnmarshaler = perImage(nil)
)

// torchCPUStateLen is the payload of a TorchCPU state: kernel, the MT19937
// words and position, the Box-Muller cache flag and value.
const torchCPUStateLen = 1 + 4*mtN + 2 + 1 + 8

// MarshalBinary returns the source's whole state: the Mersenne Twister's
// words and position, the kernel and torch's cached Box-Muller value.
func (t *TorchCPU) MarshalBinary() ([]byte, error) {
	b := header(tagTorchCPU, torchCPUStateLen)
	b = append(b, byte(t.kernel))
	for _, w := range t.mt.state {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(t.mt.next))
	if t.hasNext {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(t.next)), nil
}

// UnmarshalBinary restores a state written by MarshalBinary. On error the
// source is unchanged.
func (t *TorchCPU) UnmarshalBinary(data []byte) error {
	p, err := checkHeader(data, tagTorchCPU, "TorchCPU")
	if err != nil {
		return err
	}
	if len(p) != torchCPUStateLen {
		return fmt.Errorf("%w: TorchCPU state has %d bytes, want %d", ErrState, len(p), torchCPUStateLen)
	}
	var s TorchCPU
	s.kernel = TorchKernel(p[0])
	if s.kernel != TorchAVX2 && s.kernel != TorchGeneric {
		return fmt.Errorf("%w: unknown TorchCPU kernel %d", ErrState, p[0])
	}
	p = p[1:]
	for i := range s.mt.state {
		s.mt.state[i] = binary.LittleEndian.Uint32(p[4*i:])
	}
	p = p[4*mtN:]
	s.mt.next = int(binary.LittleEndian.Uint16(p))
	if s.mt.next > mtN {
		return fmt.Errorf("%w: TorchCPU position %d beyond %d", ErrState, s.mt.next, mtN)
	}
	switch p[2] {
	case 0:
	case 1:
		s.hasNext = true
	default:
		return fmt.Errorf("%w: TorchCPU cache flag %d", ErrState, p[2])
	}
	s.next = math.Float64frombits(binary.LittleEndian.Uint64(p[3:]))
	if math.IsNaN(s.next) || math.IsInf(s.next, 0) {
		return fmt.Errorf("%w: TorchCPU cached value %v", ErrState, s.next)
	}
	*t = s
	return nil
}

// MarshalBinary returns the source's state: its key and the number of
// Normal calls so far.
func (p *Philox) MarshalBinary() ([]byte, error) {
	b := header(tagPhilox, 12)
	b = binary.LittleEndian.AppendUint32(b, p.key[0])
	b = binary.LittleEndian.AppendUint32(b, p.key[1])
	return binary.LittleEndian.AppendUint32(b, p.offset), nil
}

// UnmarshalBinary restores a state written by MarshalBinary. On error the
// source is unchanged.
func (p *Philox) UnmarshalBinary(data []byte) error {
	b, err := checkHeader(data, tagPhilox, "Philox")
	if err != nil {
		return err
	}
	if len(b) != 12 {
		return fmt.Errorf("%w: Philox state has %d bytes, want 12", ErrState, len(b))
	}
	p.key = [2]uint32{binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])}
	p.offset = binary.LittleEndian.Uint32(b[8:])
	return nil
}

// MarshalBinary returns the state of the underlying math/rand/v2 PCG
// generator (its normal method keeps no state of its own).
func (p *PCG) MarshalBinary() ([]byte, error) {
	s, err := p.pcg.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append(header(tagPCG, len(s)), s...), nil
}

// UnmarshalBinary restores a state written by MarshalBinary. On error the
// source is unchanged.
func (p *PCG) UnmarshalBinary(data []byte) error {
	b, err := checkHeader(data, tagPCG, "PCG")
	if err != nil {
		return err
	}
	g := new(rand.PCG)
	if err := g.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("%w: PCG: %v", ErrState, err)
	}
	*p = PCG{pcg: g, r: rand.New(g)}
	return nil
}

// MarshalBinary saves every part in order; it fails when a part does not
// implement encoding.BinaryMarshaler.
func (p perImage) MarshalBinary() ([]byte, error) {
	b := header(tagPerImage, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	for i, s := range p {
		m, ok := s.(encoding.BinaryMarshaler)
		if !ok {
			return nil, fmt.Errorf("noise: PerImage: source %d (%T) cannot save its state", i, s)
		}
		part, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("noise: PerImage: source %d: %w", i, err)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(len(part)))
		b = append(b, part...)
	}
	return b, nil
}

// UnmarshalBinary restores every part from a state written by
// MarshalBinary over the same number and kinds of sources. On error some
// parts may have been restored and others not.
func (p perImage) UnmarshalBinary(data []byte) error {
	b, err := checkHeader(data, tagPerImage, "PerImage")
	if err != nil {
		return err
	}
	if len(b) < 4 || int(binary.LittleEndian.Uint32(b)) != len(p) {
		return fmt.Errorf("%w: PerImage state is not for %d sources", ErrState, len(p))
	}
	b = b[4:]
	parts := make([][]byte, len(p))
	for i := range p {
		if len(b) < 4 {
			return fmt.Errorf("%w: PerImage state truncated at source %d", ErrState, i)
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return fmt.Errorf("%w: PerImage state truncated at source %d", ErrState, i)
		}
		parts[i], b = b[4:4+n], b[4+n:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: PerImage state has %d trailing bytes", ErrState, len(b))
	}
	for i, s := range p {
		u, ok := s.(encoding.BinaryUnmarshaler)
		if !ok {
			return fmt.Errorf("noise: PerImage: source %d (%T) cannot restore its state", i, s)
		}
		if err := u.UnmarshalBinary(parts[i]); err != nil {
			return fmt.Errorf("noise: PerImage: source %d: %w", i, err)
		}
	}
	return nil
}
