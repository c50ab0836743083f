package upscale

import (
	"fmt"

	"github.com/ugo-diffusion/ugo/noise"
)

// PerImage returns a noise.Source that splits every Normal call into
// len(srcs) equal parts and fills part i from srcs[i]: over a batch of
// len(srcs) samples, each sample draws from its own source, one call per
// draw (as diffusers does with one generator per image). A sample's noise
// is then the same whatever the batch it is drawn in.
//
// Its Normal panics when the length is not a multiple of len(srcs) (a
// programmer error; the stages check batch sizes first). PerImage panics
// when srcs is empty or holds nil. The returned source is not safe for
// concurrent use, like its parts.
func PerImage(srcs ...noise.Source) noise.Source {
	if len(srcs) == 0 {
		panic("upscale: PerImage needs at least one source")
	}
	for i, s := range srcs {
		if s == nil {
			panic(fmt.Sprintf("upscale: PerImage: source %d is nil", i))
		}
	}
	if len(srcs) == 1 {
		return srcs[0]
	}
	return perImage(append([]noise.Source(nil), srcs...))
}

type perImage []noise.Source

func (p perImage) Normal(dst []float32) {
	n := len(p)
	if len(dst)%n != 0 {
		panic(fmt.Sprintf("upscale: %d noise values do not split into %d images", len(dst), n))
	}
	m := len(dst) / n
	for i, s := range p {
		s.Normal(dst[i*m : (i+1)*m])
	}
}

// TorchSeeds returns one noise.TorchCPU source per seed: image i of a batch
// then draws what torch.manual_seed(seeds[i]) followed by torch.randn
// calls over one image would, as the Fashion-MNIST examples seed their
// images.
func TorchSeeds(seeds ...uint64) []noise.Source {
	out := make([]noise.Source, len(seeds))
	for i, s := range seeds {
		out[i] = noise.NewTorchCPU(s)
	}
	return out
}
