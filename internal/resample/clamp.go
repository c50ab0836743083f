package resample

// ClampBlocks limits x (high resolution) to [-r, r] block by block while
// keeping every block's mean where the range allows: each block of the Pooling
// (the elements one low-resolution element averages) with mean m and
// deviations d_i = x_i - m becomes
//
//	x_i = clamp(m, -r, r) + s * d_i,
//
// with s in [0, 1] the largest scale that keeps every element of the block in
// [-r, r]. A block already inside the range is left alone, bit for bit. So
// D(ClampBlocks(x)) = clamp(D(x), -r, r) up to rounding: clamping commutes
// with pooling, which an element-wise clamp does not (it shifts the mean of a
// block whose elements straddle a bound).
//
// means and scales are scratch of LowLen elements each; on return means
// holds the original block means and scales each block's s (1 for blocks
// whose elements were all inside the range). ClampBlocks reports whether any
// element changed. It panics if the lengths do not match the Pooling or r is not
// positive.
func (p Pooling) ClampBlocks(x, means, scales []float32, r float32) bool {
	p.checkLens(len(x), len(means), "ClampBlocks")
	if len(scales) != len(means) {
		panic("resample: ClampBlocks: scales and means differ in length")
	}
	if !(r > 0) {
		panic("resample: ClampBlocks: range must be positive")
	}
	p.Pool(means, x, 1)
	changed := false
	for i, m := range means {
		scales[i] = 1
		if m > r || m < -r {
			changed = true
		}
	}
	// Pass 1: the largest scale that keeps each block inside the range.
	lw, lh, lf := p.w/p.fw, p.h/p.fh, p.f/p.ff
	i := 0
	for o := range p.outer {
		for z := range p.f {
			bz := (o*lf + z/p.ff) * lh
			for y := range p.h {
				by := (bz + y/p.fh) * lw
				for xx, v := range x[i : i+p.w] {
					if v <= r && v >= -r {
						continue
					}
					b := by + xx/p.fw
					m := means[b]
					mc := min(max(m, -r), r)
					d := v - m
					var s float32 = 1
					if mc+d > r {
						s = (r - mc) / d
					} else if mc+d < -r {
						s = (-r - mc) / d
					}
					if s < scales[b] {
						scales[b] = max(s, 0)
						changed = true
					}
				}
				i += p.w
			}
		}
	}
	if !changed {
		return false
	}
	// Pass 2: rewrite the blocks that change.
	i = 0
	for o := range p.outer {
		for z := range p.f {
			bz := (o*lf + z/p.ff) * lh
			for y := range p.h {
				by := (bz + y/p.fh) * lw
				row := x[i : i+p.w]
				for xx, v := range row {
					b := by + xx/p.fw
					m, s := means[b], scales[b]
					if s == 1 && m <= r && m >= -r {
						continue
					}
					mc := min(max(m, -r), r)
					row[xx] = min(max(mc+s*(v-m), -r), r)
				}
				i += p.w
			}
		}
	}
	return true
}
