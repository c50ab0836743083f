package noise

import (
	"encoding"
	"errors"
	"slices"
	"testing"
)

// stateful is a Source that saves and restores its state.
type stateful interface {
	Source
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// draws makes Normal calls of lengths that exercise every path: torch's
// scalar Box-Muller path (fewer than 16 values, which caches a value across
// calls), its vectorised path and a tail that is not a multiple of 16.
func draws(s Source) []float32 {
	var out []float32
	for _, n := range []int{3, 17, 1, 100, 16, 5} {
		d := make([]float32, n)
		s.Normal(d)
		out = append(out, d...)
	}
	return out
}

// A source restored from a saved state, in a fresh value seeded otherwise,
// continues exactly as the original does.
func TestStateRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		new  func(seed uint64) stateful
	}{
		{"torchcpu", func(s uint64) stateful { return NewTorchCPU(s) }},
		{"torchcpu_generic", func(s uint64) stateful { return NewTorchCPUKernel(s, TorchGeneric) }},
		{"philox", func(s uint64) stateful { return NewPhilox(s) }},
		{"pcg", func(s uint64) stateful { return NewPCG(s) }},
		{"perimage", func(s uint64) stateful { return PerImage(TorchSeeds(s, s+1, s+2)...).(stateful) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := c.new(42)
			// An odd first call leaves torch's Box-Muller cache set.
			first := make([]float32, 3)
			if c.name == "perimage" {
				first = make([]float32, 3*7)
			}
			orig.Normal(first)
			state, err := orig.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			want := drawsFor(c.name, orig)

			restored := c.new(7)
			if err := restored.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			if got := drawsFor(c.name, restored); !slices.Equal(got, want) {
				t.Fatal("restored source does not continue the original stream")
			}
			// A second save of the restored source at the same point is
			// the same bytes.
			again := c.new(9)
			if err := again.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			if s2, _ := again.MarshalBinary(); !slices.Equal(s2, state) {
				t.Error("save -> restore -> save changed the state")
			}
		})
	}
}

// drawsFor draws lengths that a PerImage of three sources can split.
func drawsFor(name string, s Source) []float32 {
	if name != "perimage" {
		return draws(s)
	}
	var out []float32
	for _, n := range []int{6, 54, 300} {
		d := make([]float32, n)
		s.Normal(d)
		out = append(out, d...)
	}
	return out
}

// Every corrupt state (truncated at any byte, another kind's tag, another
// version, bad fields) is refused with ErrState and leaves the source as it
// was.
func TestStateRejected(t *testing.T) {
	srcs := map[string]stateful{
		"torchcpu": NewTorchCPU(1), "philox": NewPhilox(1), "pcg": NewPCG(1),
		"perimage": PerImage(TorchSeeds(1, 2)...).(stateful),
	}
	n := 0
	for name, s := range srcs {
		state, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var bad [][]byte
		for i := 0; i < len(state); i++ {
			bad = append(bad, state[:i])
		}
		bad = append(bad, append(slices.Clone(state), 0))
		v := slices.Clone(state)
		v[4] = 99
		bad = append(bad, v)
		for other, o := range srcs {
			if other != name {
				os, _ := o.MarshalBinary()
				bad = append(bad, os)
			}
		}
		if name == "torchcpu" {
			k := slices.Clone(state)
			k[5] = 7 // kernel
			p := slices.Clone(state)
			p[6+4*mtN] = 0xff // position beyond 624
			f := slices.Clone(state)
			f[6+4*mtN+2] = 2 // cache flag
			bad = append(bad, k, p, f)
		}
		before := drawsFor(name, freshLike(name))
		for i, b := range bad {
			target := freshLike(name)
			if err := target.UnmarshalBinary(b); !errors.Is(err, ErrState) {
				t.Errorf("%s: bad state %d (%d bytes): err = %v, want ErrState", name, i, len(b), err)
			}
			if name != "perimage" && !slices.Equal(drawsFor(name, target), before) {
				t.Errorf("%s: bad state %d changed the source", name, i)
			}
			n++
		}
	}
	t.Logf("%d corrupt states refused", n)
}

func freshLike(name string) stateful {
	switch name {
	case "torchcpu":
		return NewTorchCPU(1)
	case "philox":
		return NewPhilox(1)
	case "pcg":
		return NewPCG(1)
	}
	return PerImage(TorchSeeds(1, 2)...).(stateful)
}

// A PerImage over a source that cannot save its state says so.
func TestPerImageStateNeedsMarshalers(t *testing.T) {
	p := PerImage(NewTorchCPU(1), plainSource{}).(stateful)
	if _, err := p.MarshalBinary(); err == nil {
		t.Fatal("MarshalBinary over a plain Source succeeded")
	}
}

type plainSource struct{}

func (plainSource) Normal(dst []float32) {}

// FuzzUnmarshalState: no input panics any source's UnmarshalBinary, and an
// accepted state saves back to the same bytes.
func FuzzUnmarshalState(f *testing.F) {
	for _, s := range []stateful{NewTorchCPU(3), NewPhilox(3), NewPCG(3), PerImage(TorchSeeds(3, 4)...).(stateful)} {
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range []stateful{NewTorchCPU(1), NewPhilox(1), NewPCG(1), PerImage(TorchSeeds(1, 2)...).(stateful)} {
			if err := s.UnmarshalBinary(data); err != nil {
				continue
			}
			back, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(back, data) {
				t.Fatalf("%T: accepted state does not save back to the same bytes", s)
			}
		}
	})
}
