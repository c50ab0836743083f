package noise

import "math/rand/v2"

// PCG is the fast default source: math/rand/v2's PCG generator (128-bit
// state, DXSM output) and its ziggurat normal method, rounded to float32. It
// is not compatible with any torch generator, and its values may change if
// the Go standard library changes its normal method; use TorchCPU or Philox
// when values must match another tool.
//
// A PCG source is not safe for concurrent use.
type PCG struct {
	pcg *rand.PCG
	r   *rand.Rand
}

// pcgStream is the second PCG seed word, fixed so that one uint64 seed
// picks the generator.
const pcgStream = 0x5547_4f5f_6e6f_6973 // "UGO_nois"

// NewPCG returns a PCG source seeded with seed.
func NewPCG(seed uint64) *PCG {
	g := rand.NewPCG(seed, pcgStream)
	return &PCG{pcg: g, r: rand.New(g)}
}

// Normal fills dst with standard normal values.
func (p *PCG) Normal(dst []float32) {
	for i := range dst {
		dst[i] = float32(p.r.NormFloat64())
	}
}
