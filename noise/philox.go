package noise

import "math"

// Philox reproduces torch.randn on a CUDA device, as re-implemented on the
// CPU by the AUTOMATIC1111 webui (modules/rng_philox.py) and
// stable-diffusion.cpp (rng_philox.hpp): each torch.randn call of n values
// runs Philox4x32-10 once per value i with key = seed (low word first) and
// counter = (call index, 0, i mod 2^32, i div 2^32), and turns the first two
// output words into one normal with the sine branch of Box-Muller.
//
// Box-Muller is evaluated in float64 and rounded once to float32, as the
// webui's numpy code does; stable-diffusion.cpp evaluates it in float32 and
// can differ in the last bits. Requests beyond 2^32 values spill the index
// into the fourth counter word, where the reference implementations wrap.
//
// A Philox source is not safe for concurrent use.
type Philox struct {
	key    [2]uint32
	offset uint32 // number of Normal calls so far
}

// NewPhilox returns a source equal to torch.manual_seed(seed) followed by
// torch.randn on a CUDA device, in the webui's reproduction.
func NewPhilox(seed uint64) *Philox {
	return &Philox{key: [2]uint32{uint32(seed), uint32(seed >> 32)}}
}

const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// philox4x32 runs the ten Philox4x32 rounds on counter c with key k and
// returns the first two output words (the only ones torch uses here).
func philox4x32(c0, c1, c2, c3, k0, k1 uint32) (uint32, uint32) {
	for r := 0; r < 10; r++ {
		if r > 0 {
			k0 += philoxW0
			k1 += philoxW1
		}
		p0 := uint64(c0) * philoxM0
		p1 := uint64(c2) * philoxM1
		c0, c1, c2, c3 = uint32(p1>>32)^c1^k0, uint32(p1), uint32(p0>>32)^c3^k1, uint32(p0)
	}
	return c0, c1
}

// The webui's float32 constants, used in float64 arithmetic as numpy
// promotes them: 2^-32 and 2*pi*2^-32, each rounded to float32.
var (
	twoPow32Inv    = float64(float32(2.3283064e-10))
	twoPow32Inv2Pi = float64(float32(2.3283064e-10 * 6.2831855))
)

// philoxBoxMuller maps two uniform words to one standard normal, in float64.
func philoxBoxMuller(x, y uint32) float64 {
	u := float64(float64(x)*twoPow32Inv) + twoPow32Inv/2
	v := float64(float64(y)*twoPow32Inv2Pi) + twoPow32Inv2Pi/2
	s := math.Sqrt(-2 * math.Log(u))
	return s * math.Sin(v)
}

// Normal fills dst as one torch.randn(len(dst)) call on a CUDA generator.
func (p *Philox) Normal(dst []float32) {
	off := p.offset
	p.offset++
	for i := range dst {
		x, y := philox4x32(off, 0, uint32(i), uint32(uint64(i)>>32), p.key[0], p.key[1])
		dst[i] = float32(philoxBoxMuller(x, y))
	}
}
