package resample

import (
	"fmt"
)

// Pooling describes average pooling and nearest repetition between a
// high-resolution tensor shape and its low-resolution counterpart. The
// zero Pooling is not usable; build one with NewPooling. A Pooling is a
// small value with no internal state and is safe for concurrent use.
type Pooling struct {
	outer      int // N*C: planes that are never pooled
	f, h, w    int // high-resolution extents of the pooled axes
	ff, fh, fw int // factors
}

// NewPooling returns the Pooling for a high-resolution tensor of the given
// shape (rank 4 NCHW or rank 5 NCFHW) pooled by factors, which apply to the
// trailing axes: [fH, fW] or, for rank 5 only, [fF, fH, fW]. It returns an
// error when the rank or the factor list does not fit, a factor is below 1,
// or an axis is not divisible by its factor.
func NewPooling(shape, factors []int) (Pooling, error) {
	if len(shape) != 4 && len(shape) != 5 {
		return Pooling{}, fmt.Errorf("resample: shape %v has rank %d, want 4 (N,C,H,W) or 5 (N,C,F,H,W)", shape, len(shape))
	}
	for _, d := range shape {
		if d <= 0 {
			return Pooling{}, fmt.Errorf("resample: shape %v has a non-positive dimension", shape)
		}
	}
	spatial := len(shape) - 2
	if len(factors) < 1 || len(factors) > spatial {
		return Pooling{}, fmt.Errorf("resample: %d factors %v for a rank-%d tensor, want 1 to %d (trailing axes)", len(factors), factors, len(shape), spatial)
	}
	for _, f := range factors {
		if f < 1 {
			return Pooling{}, fmt.Errorf("resample: factors %v: every factor must be at least 1", factors)
		}
	}
	// full[i] is the factor of spatial axis i (F, H, W for rank 5; H, W for rank 4).
	var full [3]int
	for i := range full {
		full[i] = 1
	}
	off := 3 - len(factors)
	copy(full[off:], factors)
	var ext [3]int
	ext[0] = 1
	copy(ext[3-spatial:], shape[2:])
	names := [3]string{"F", "H", "W"}
	for i := range 3 {
		if ext[i]%full[i] != 0 {
			return Pooling{}, fmt.Errorf("resample: axis %s of shape %v has size %d, not divisible by its factor %d", names[i], shape, ext[i], full[i])
		}
	}
	return Pooling{
		outer: shape[0] * shape[1],
		f:     ext[0], h: ext[1], w: ext[2],
		ff: full[0], fh: full[1], fw: full[2],
	}, nil
}

// K returns the number of high-resolution elements pooled into one
// low-resolution element: the product of the factors.
func (p Pooling) K() int { return p.ff * p.fh * p.fw }

// HighLen returns the number of elements of the high-resolution tensor.
func (p Pooling) HighLen() int { return p.outer * p.f * p.h * p.w }

// LowLen returns the number of elements of the low-resolution tensor.
func (p Pooling) LowLen() int { return p.HighLen() / p.K() }

// LowShape appends the low-resolution shape, of rank rank (4 or 5; the rank
// of the shape given to NewPooling), to dst and returns it. n and c are the
// batch and channel sizes to report, as the Pooling only knows their product.
func (p Pooling) LowShape(dst []int, rank, n, c int) []int {
	dst = append(dst, n, c)
	if rank == 5 {
		dst = append(dst, p.f/p.ff)
	}
	return append(dst, p.h/p.fh, p.w/p.fw)
}

func (p Pooling) checkLens(high, low int, op string) {
	if high != p.HighLen() || low != p.LowLen() {
		panic(fmt.Sprintf("resample: %s: lengths high %d low %d, want %d and %d", op, high, low, p.HighLen(), p.LowLen()))
	}
}

// Pool writes scale times the average of each window of src (high
// resolution) into dst (low resolution): dst = scale * D(src). Each window is
// summed in float64 and rounded once. Pool panics if the lengths do not match
// the Pooling.
func (p Pooling) Pool(dst, src []float32, scale float32) {
	p.checkLens(len(src), len(dst), "Pool")
	c := float64(scale) / float64(p.K())
	lw := p.w / p.fw
	lh := p.h / p.fh
	lf := p.f / p.ff
	if p.fh == 1 && p.ff == 1 {
		p.poolRows(dst, src, c)
		return
	}
	if p.ff == 1 && p.fh == 2 && p.fw == 2 {
		// The common 2x2 image case: two source rows per output row.
		nrows := p.outer * p.f * lh // with ff == 1 the frames are just more rows
		for r := range nrows {
			s := src[2*r*p.w : 2*r*p.w+2*p.w]
			r0 := s[:2*lw]
			r1 := s[p.w : p.w+2*lw]
			d := dst[r*lw : r*lw+lw]
			for x := range d {
				i := 2 * x
				sum := (float64(r0[i]) + float64(r0[i+1])) + (float64(r1[i]) + float64(r1[i+1]))
				d[x] = float32(sum * c)
			}
		}
		return
	}
	// General case: accumulate the ff*fh source rows of each output row in
	// float64, a chunk of columns at a time (the chunk lives on the stack).
	var acc [poolChunk]float64
	plane := p.f * p.h * p.w
	frame := p.h * p.w
	di := 0
	for o := range p.outer {
		base := o * plane
		for jf := range lf {
			for jh := range lh {
				rowBase := base + jf*p.ff*frame + jh*p.fh*p.w
				for x0 := 0; x0 < lw; x0 += poolChunk {
					n := min(poolChunk, lw-x0)
					a := acc[:n]
					clear(a)
					for zf := range p.ff {
						for zh := range p.fh {
							start := rowBase + zf*frame + zh*p.w + x0*p.fw
							accumulate(a, src[start:start+n*p.fw], p.fw)
						}
					}
					d := dst[di+x0 : di+x0+n]
					for x, v := range a {
						d[x] = float32(v * c)
					}
				}
				di += lw
			}
		}
	}
}

// poolChunk is the number of output columns pooled at a time in the general
// case.
const poolChunk = 256

// accumulate adds the sums of consecutive groups of fw elements of s to a.
func accumulate(a []float64, s []float32, fw int) {
	switch fw {
	case 1:
		s = s[:len(a)]
		for x := range a {
			a[x] += float64(s[x])
		}
	case 2:
		s = s[:2*len(a)]
		for x := range a {
			a[x] += float64(s[2*x]) + float64(s[2*x+1])
		}
	case 3:
		s = s[:3*len(a)]
		for x := range a {
			a[x] += float64(s[3*x]) + float64(s[3*x+1]) + float64(s[3*x+2])
		}
	default:
		for x := range a {
			var sum float64
			for _, v := range s[x*fw : x*fw+fw] {
				sum += float64(v)
			}
			a[x] += sum
		}
	}
}

// poolRows handles pooling along W only.
func (p Pooling) poolRows(dst, src []float32, c float64) {
	lw := p.w / p.fw
	nrows := p.outer * p.f * p.h
	switch p.fw {
	case 1:
		for i, v := range src {
			dst[i] = float32(float64(v) * c)
		}
	case 2:
		for r := range nrows {
			s := src[r*p.w : r*p.w+2*lw]
			d := dst[r*lw : r*lw+lw]
			for x := range d {
				d[x] = float32((float64(s[2*x]) + float64(s[2*x+1])) * c)
			}
		}
	default:
		fw := p.fw
		for r := range nrows {
			s := src[r*p.w : r*p.w+p.w]
			d := dst[r*lw : r*lw+lw]
			for x := range d {
				var sum float64
				for _, v := range s[x*fw : x*fw+fw] {
					sum += float64(v)
				}
				d[x] = float32(sum * c)
			}
		}
	}
}

// Repeat writes the nearest-neighbour upsampling of src (low resolution)
// into dst (high resolution): dst = U(src). Repeat panics if the lengths do
// not match the Pooling.
func (p Pooling) Repeat(dst, src []float32) {
	p.checkLens(len(dst), len(src), "Repeat")
	lw := p.w / p.fw
	lh := p.h / p.fh
	lf := p.f / p.ff
	frame := p.h * p.w
	si := 0
	di := 0
	for range p.outer {
		for range lf {
			frameStart := di
			for range lh {
				s := src[si : si+lw]
				si += lw
				d := dst[di : di+p.w]
				repeatRow(d, s, p.fw)
				di += p.w
				for range p.fh - 1 {
					copy(dst[di:di+p.w], d)
					di += p.w
				}
			}
			for range p.ff - 1 {
				copy(dst[di:di+frame], dst[frameStart:frameStart+frame])
				di += frame
			}
		}
	}
}

func repeatRow(d, s []float32, fw int) {
	switch fw {
	case 1:
		copy(d, s)
	case 2:
		d = d[:2*len(s)]
		for x, v := range s {
			d[2*x] = v
			d[2*x+1] = v
		}
	default:
		for x, v := range s {
			seg := d[x*fw : x*fw+fw]
			for i := range seg {
				seg[i] = v
			}
		}
	}
}

// AddRepeated adds alpha times the nearest-neighbour upsampling of src (low
// resolution) to dst (high resolution): dst += alpha * U(src), computed as
// dst[i] + alpha*src[parent(i)] in float32. AddRepeated panics if the lengths
// do not match the Pooling.
func (p Pooling) AddRepeated(dst, src []float32, alpha float32) {
	p.checkLens(len(dst), len(src), "AddRepeated")
	lw := p.w / p.fw
	lh := p.h / p.fh
	lf := p.f / p.ff
	di := 0
	lowFrame := lh * lw
	si := 0
	for range p.outer {
		for range lf {
			for range p.ff {
				for jh := range lh {
					s := src[si+jh*lw : si+jh*lw+lw]
					for range p.fh {
						d := dst[di : di+p.w]
						di += p.w
						addRow(d, s, p.fw, alpha)
					}
				}
			}
			si += lowFrame
		}
	}
}

func addRow(d, s []float32, fw int, alpha float32) {
	switch fw {
	case 1:
		d = d[:len(s)]
		for x, v := range s {
			d[x] += float32(alpha * v)
		}
	case 2:
		d = d[:2*len(s)]
		for x, v := range s {
			a := alpha * v
			d[2*x] += a
			d[2*x+1] += a
		}
	default:
		for x, v := range s {
			a := alpha * v
			seg := d[x*fw : x*fw+fw]
			for i := range seg {
				seg[i] += a
			}
		}
	}
}
