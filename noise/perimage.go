package noise

import (
	"fmt"
)

// PerImage returns a Source that splits every Normal call into len(srcs)
// equal parts and fills part i from srcs[i]: over a batch of len(srcs)
// samples, each sample draws from its own source, one call per draw (as
// diffusers does with one generator per image). A sample's noise is then
// the same whatever the batch it is drawn in.
//
// Its Normal panics when the length is not a multiple of len(srcs) (a
// programmer error; callers check batch sizes first). PerImage panics when
// srcs is empty or holds nil. The returned source is not safe for
// concurrent use, like its parts. It saves and restores its state (see
// State) when every part does.
func PerImage(srcs ...Source) Source {
	if len(srcs) == 0 {
		panic("noise: PerImage needs at least one source")
	}
	for i, s := range srcs {
		if s == nil {
			panic(fmt.Sprintf("noise: PerImage: source %d is nil", i))
		}
	}
	if len(srcs) == 1 {
		return srcs[0]
	}
	return perImage(append([]Source(nil), srcs...))
}

type perImage []Source

func (p perImage) Normal(dst []float32) {
	n := len(p)
	if len(dst)%n != 0 {
		panic(fmt.Sprintf("noise: %d noise values do not split into %d images", len(dst), n))
	}
	m := len(dst) / n
	for i, s := range p {
		s.Normal(dst[i*m : (i+1)*m])
	}
}

// TorchSeeds returns one TorchCPU source per seed: image i of a batch then
// draws what torch.manual_seed(seeds[i]) followed by torch.randn calls over
// one image would.
func TorchSeeds(seeds ...uint64) []Source {
	out := make([]Source, len(seeds))
	for i, s := range seeds {
		out[i] = NewTorchCPU(s)
	}
	return out
}
