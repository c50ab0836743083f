package tiling

import "math"

// axis is the tiling of one spatial axis: tile starts and, per tile, its
// blending weights divided by the sum of the weights of every tile covering
// each position, so that the normalised weights of the tiles covering a
// position sum to 1. Buffers are sized for the largest grid of the axis and
// reused: filling an axis allocates nothing.
type axis struct {
	length, size, overlap int
	profile               []float64   // the weight of a tile at each of its positions
	starts                []int       // len = number of tiles of the current grid
	weights               [][]float32 // weights[i][k]: normalised weight of tile i at its position k
	sum                   []float64   // per position of the axis
}

// newAxis prepares the tiling of an axis of the given length with tiles of
// size (at most length) overlapping by at least overlap (< size).
func newAxis(length, size, overlap int, blend Blend) *axis {
	size = min(size, length)
	overlap = min(overlap, size-1)
	a := &axis{length: length, size: size, overlap: overlap, profile: profile(size, overlap, blend), sum: make([]float64, length)}
	n := a.maxTiles()
	a.starts = make([]int, 0, n)
	a.weights = make([][]float32, n)
	for i := range a.weights {
		a.weights[i] = make([]float32, size)
	}
	return a
}

// stride is the distance between the starts of neighbouring tiles of a
// jittered grid.
func (a *axis) stride() int { return a.size - a.overlap }

// maxTiles bounds the number of tiles of any grid of the axis.
func (a *axis) maxTiles() int {
	if a.size >= a.length {
		return 1
	}
	// Jittered grids: ceil((length-size+stride-1)/stride) + 1 at most.
	return (a.length-a.size+a.stride()-1)/a.stride() + 2
}

// even fills the grid of the axis with n = ceil((length-overlap)/stride)
// tiles spread evenly from 0 to length-size (rounded positions): the grid
// without jitter, symmetric about the middle of the axis.
func (a *axis) even() {
	a.starts = a.starts[:0]
	if a.size >= a.length {
		a.starts = append(a.starts, 0)
		a.normalise()
		return
	}
	n := (a.length - a.overlap + a.stride() - 1) / a.stride()
	span := a.length - a.size
	for i := range n {
		a.starts = append(a.starts, (2*i*span+(n-1))/(2*(n-1))) // round(i*span/(n-1))
	}
	a.normalise()
}

// shifted fills the grid of the axis with tiles every stride positions,
// starting stride-shift positions before the axis (0 <= shift < stride),
// with the tiles that stick out moved back inside: the first at 0, the last
// at length-size. Neighbours overlap by at least overlap.
func (a *axis) shifted(shift int) {
	a.starts = a.starts[:0]
	if a.size >= a.length {
		a.starts = append(a.starts, 0)
		a.normalise()
		return
	}
	s, last := a.stride(), a.length-a.size
	for p := -shift; ; p += s {
		q := min(max(p, 0), last)
		if n := len(a.starts); n == 0 || a.starts[n-1] != q {
			a.starts = append(a.starts, q)
		}
		if q == last {
			break
		}
	}
	a.normalise()
}

// normalise computes the normalised weights of the current grid.
func (a *axis) normalise() {
	clear(a.sum)
	for _, s := range a.starts {
		for k, w := range a.profile {
			a.sum[s+k] += w
		}
	}
	for i, s := range a.starts {
		wi := a.weights[i]
		for k, w := range a.profile {
			wi[k] = float32(w / a.sum[s+k])
		}
	}
}

// profile returns the weight of a tile of the given size at each of its
// positions: positive everywhere, so that every position of an axis has a
// positive total weight.
//
// Linear is a trapezoid: it rises linearly over the first overlap positions,
// is 1 in the middle and falls over the last overlap positions (w(k) =
// min(1, (k+1/2)/overlap, (size-k-1/2)/overlap)), so that two tiles whose
// overlap is exactly overlap cross-fade linearly across it. Gaussian is
// exp(-d^2/(2 sigma^2)) with d the distance to the tile's centre and sigma
// = size/4.
func profile(size, overlap int, blend Blend) []float64 {
	p := make([]float64, size)
	switch blend {
	case Gaussian:
		c, sigma := float64(size-1)/2, float64(size)/4
		for k := range p {
			d := (float64(k) - c) / sigma
			p[k] = math.Exp(-d * d / 2)
		}
	default:
		r := float64(max(overlap, 1))
		for k := range p {
			p[k] = min(1, (float64(k)+0.5)/r, (float64(size-k)-0.5)/r)
		}
	}
	return p
}

// splitmix64 is a step of the SplitMix64 generator (Steele, Lea and Flood,
// 2014): a bijective mix of its input, used to derive the jitter of a step
// from the seed and the timestep.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// jitter returns the grid shifts of the two axes (each in [0, stride)) for
// timestep t: a hash of the seed and the bits of t, so that a run is
// reproducible whatever the order or concurrency of the calls.
func jitter(seed uint64, t float32, strideY, strideX int) (int, int) {
	h := splitmix64(seed ^ uint64(math.Float32bits(t)))
	hy, hx := h, splitmix64(h)
	return int(hy % uint64(strideY)), int(hx % uint64(strideX))
}
