package resize

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// MaxSide is the largest height or width a Plan accepts.
const MaxSide = 1 << 20

// Strategy is a resampling method. Plan precomputes what resizing planes of
// sh x sw values to dh x dw values takes; the Plan then resizes any number
// of such planes. The package values Nearest, Bilinear, AntialiasBilinear,
// Bicubic, Lanczos3 and Area are Strategies, and so is any *Kernel.
type Strategy interface {
	// Plan returns the plan of resizing sh x sw planes to dh x dw. It fails
	// on a non-positive size or one above MaxSide.
	Plan(dh, dw, sh, sw int) (*Plan, error)
	// String returns the strategy's name, as ByName accepts it.
	String() string
}

// Kernel is a separable resampling filter, in the manner of
// golang.org/x/image/draw's Kernel: the weight of the source sample at
// distance t (in source pixels, centre to centre) from the point being
// computed is At(t), for |t| < Support, and 0 beyond.
//
// Without Antialias the kernel keeps its width whatever the scale, as
// torch.nn.functional.interpolate(antialias=False) does: downsampling then
// point-samples (and aliases), and taps beyond an edge read the edge sample
// (replicate padding). With Antialias the kernel is stretched by the scale
// factor when downsampling, so that every source sample contributes (PIL's
// Image.resize, interpolate(antialias=True)), and taps beyond an edge are
// dropped. In both cases the weights of each output sample are normalised
// to sum to 1, so a constant stays constant.
type Kernel struct {
	// Name is the kernel's name, returned by String.
	Name string
	// Support is the kernel's half-width in source pixels (before
	// stretching), positive.
	Support float64
	// At returns the weight at distance t, for |t| < Support.
	At func(t float64) float64
	// Antialias stretches the kernel by the scale factor when
	// downsampling; see the type documentation.
	Antialias bool
}

// The resampling strategies. Sample centres sit at half-integer positions
// (align_corners=False in torch's terms, PIL's and OpenCV's convention), so
// output sample i of n covers the source interval [i, i+1)*(src/n).
var (
	// Nearest copies the source sample whose pixel contains the output
	// sample's centre (PIL's NEAREST, torch's "nearest-exact"). Upsampling
	// by an integer factor repeats each sample.
	Nearest Strategy = nearest{}
	// Bilinear interpolates linearly between the two nearest source
	// samples, without antialiasing: torch's interpolate(mode="bilinear",
	// align_corners=False), the usual latent upscale of the hires fix.
	Bilinear = &Kernel{Name: "bilinear", Support: 1, At: triangle}
	// AntialiasBilinear is the triangle filter stretched when downsampling:
	// PIL's BILINEAR and torch's interpolate(mode="bilinear",
	// antialias=True). Upsampling, it equals Bilinear.
	AntialiasBilinear = &Kernel{Name: "antialias-bilinear", Support: 1, At: triangle, Antialias: true}
	// Bicubic is the Catmull-Rom cubic (Keys' kernel with a = -0.5),
	// antialiased when downsampling: PIL's BICUBIC and golang.org/x/image/draw's
	// CatmullRom. torch's non-antialiased bicubic uses a = -0.75.
	Bicubic = &Kernel{Name: "bicubic", Support: 2, At: func(t float64) float64 { return keys(t, -0.5) }, Antialias: true}
	// Lanczos3 is the 3-lobe Lanczos windowed sinc, antialiased when
	// downsampling: PIL's LANCZOS.
	Lanczos3 = &Kernel{Name: "lanczos3", Support: 3, At: lanczos3, Antialias: true}
	// Area averages the source samples an output sample's pixel covers,
	// weighting each by the covered fraction of its pixel (OpenCV's
	// INTER_AREA; for integer downsampling factors, average pooling and
	// torch's mode="area"). Upsampling, it is nearest neighbour with
	// blended boundaries.
	Area Strategy = area{}
)

// Strategies lists the package's strategies, in the order above.
var Strategies = []Strategy{Nearest, Bilinear, AntialiasBilinear, Bicubic, Lanczos3, Area}

// ByName returns the package strategy called name (as its String method
// says: "nearest", "bilinear", "antialias-bilinear", "bicubic", "lanczos3",
// "area").
func ByName(name string) (Strategy, error) {
	var names []string
	for _, s := range Strategies {
		if s.String() == name {
			return s, nil
		}
		names = append(names, s.String())
	}
	return nil, fmt.Errorf("resize: unknown strategy %q, want one of %q", name, names)
}

func triangle(t float64) float64 {
	t = math.Abs(t)
	if t < 1 {
		return 1 - t
	}
	return 0
}

// keys is Keys' cubic convolution kernel with parameter a.
func keys(t, a float64) float64 {
	t = math.Abs(t)
	switch {
	case t < 1:
		return ((a+2)*t-(a+3))*t*t + 1
	case t < 2:
		return ((a*t-5*a)*t+8*a)*t - 4*a
	}
	return 0
}

// sinc is sin(pi x)/(pi x), exactly 0 at the non-zero integers (where
// math.Sin(pi*x) is not), so that Lanczos weights vanish on sample centres.
func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	if x == math.Trunc(x) {
		return 0
	}
	x *= math.Pi
	return math.Sin(x) / x
}

func lanczos3(t float64) float64 {
	if math.Abs(t) < 3 {
		return sinc(t) * sinc(t/3)
	}
	return 0
}

// String returns k.Name.
func (k *Kernel) String() string { return k.Name }

// Plan returns the plan of resizing sh x sw planes to dh x dw with k.
func (k *Kernel) Plan(dh, dw, sh, sw int) (*Plan, error) {
	if k == nil || k.At == nil || !(k.Support > 0) || math.IsInf(k.Support, 0) {
		return nil, errors.New("resize: a Kernel needs At and a finite positive Support")
	}
	return newPlan(k.String(), dh, dw, sh, sw, func(dn, sn int) (axis, error) { return k.axis(dn, sn) })
}

// axis computes the weights of one axis resized from sn to dn samples.
func (k *Kernel) axis(dn, sn int) (axis, error) {
	scale := float64(sn) / float64(dn)
	fs := 1.0
	if k.Antialias && scale > 1 {
		fs = scale
	}
	support := k.Support * fs
	var a axis
	acc := make([]float64, 0, int(2*support)+2)
	for i := range dn {
		c := (float64(i) + 0.5) * scale // centre in source coordinates
		lo := int(math.Floor(c - support))
		hi := int(math.Ceil(c + support))
		acc = acc[:0]
		// first is the source index of acc[0].
		first := lo
		if !k.Antialias {
			first = max(lo, 0)
		} else {
			lo, hi = max(lo, 0), min(hi, sn)
			first = lo
		}
		for j := lo; j < hi; j++ {
			w := k.At((float64(j) + 0.5 - c) / fs)
			if w != w || math.IsInf(w, 0) {
				return axis{}, fmt.Errorf("resize: kernel %s returned %v", k.Name, w)
			}
			jj := min(max(j, 0), sn-1) // replicate padding (only without Antialias can j leave [0, sn))
			for jj-first >= len(acc) {
				acc = append(acc, 0)
			}
			acc[jj-first] += w
		}
		if err := a.add(first, acc); err != nil {
			return axis{}, fmt.Errorf("resize: kernel %s at output %d of %d: %w", k.Name, i, dn, err)
		}
	}
	return a, nil
}

type nearest struct{}

func (nearest) String() string { return "nearest" }

// Plan returns the plan of a nearest-neighbour resize.
func (nearest) Plan(dh, dw, sh, sw int) (*Plan, error) {
	return newPlan("nearest", dh, dw, sh, sw, func(dn, sn int) (axis, error) {
		var a axis
		one := []float64{1}
		for i := range dn {
			// floor((i+0.5)*sn/dn) in integers.
			j := min((2*i+1)*sn/(2*dn), sn-1)
			if err := a.add(j, one); err != nil {
				return axis{}, err
			}
		}
		return a, nil
	})
}

type area struct{}

func (area) String() string { return "area" }

// Plan returns the plan of an area-weighted resize.
func (area) Plan(dh, dw, sh, sw int) (*Plan, error) {
	return newPlan("area", dh, dw, sh, sw, func(dn, sn int) (axis, error) {
		var a axis
		var w []float64
		for i := range dn {
			// Output pixel i covers [i*sn, (i+1)*sn)/dn in source pixels;
			// work in units of 1/dn to stay in integers.
			lo, hi := i*sn, (i+1)*sn
			first, last := lo/dn, (hi-1)/dn
			w = w[:0]
			for j := first; j <= last; j++ {
				ov := min(hi, (j+1)*dn) - max(lo, j*dn)
				w = append(w, float64(ov)/float64(sn))
			}
			if err := a.add(first, w); err != nil {
				return axis{}, err
			}
		}
		return a, nil
	})
}

// axis holds the weights of one axis: output sample i is the sum over k of
// w[off[i]+k] * source[start[i]+k], k < off[i+1]-off[i].
type axis struct {
	start []int32
	off   []int32 // len n+1
	w     []float64
	// single: every output reads one source sample with weight 1 (a
	// gather); identity: moreover output i reads source i.
	single, identity bool
}

// add appends an output sample reading len(w) source samples from first,
// normalising the weights to sum to 1 and trimming zero weights at both
// ends.
func (a *axis) add(first int, w []float64) error {
	if a.off == nil {
		a.off = []int32{0}
	}
	for len(w) > 0 && w[0] == 0 {
		w, first = w[1:], first+1
	}
	for len(w) > 0 && w[len(w)-1] == 0 {
		w = w[:len(w)-1]
	}
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	if len(w) == 0 || !(math.Abs(sum) > 1e-12) {
		return errors.New("weights sum to zero")
	}
	a.start = append(a.start, int32(first))
	for _, v := range w {
		a.w = append(a.w, v/sum)
	}
	a.off = append(a.off, int32(len(a.w)))
	return nil
}

// finish sets the single and identity flags.
func (a *axis) finish() {
	n := len(a.start)
	a.single = len(a.w) == n
	a.identity = a.single
	for i := range n {
		if a.single && a.w[i] != 1 {
			a.single, a.identity = false, false
		}
		if int(a.start[i]) != i {
			a.identity = false
		}
	}
}

// Plan resizes planes of a fixed size to another fixed size with one
// strategy. Its weights are computed once, by Strategy.Plan; resizing then
// allocates nothing (scratch buffers are pooled). A Plan is safe for
// concurrent use.
type Plan struct {
	name           string
	dh, dw, sh, sw int
	rows, cols     axis
	scratch        sync.Pool // *work
}

type work struct {
	tmp []float32 // one plane after the horizontal pass, sh x dw
	acc []float64 // one output row, dw
}

func newPlan(name string, dh, dw, sh, sw int, build func(dn, sn int) (axis, error)) (*Plan, error) {
	for _, d := range []int{dh, dw, sh, sw} {
		if d <= 0 || d > MaxSide {
			return nil, fmt.Errorf("resize: %s from %dx%d to %dx%d: sizes must be in 1..%d", name, sh, sw, dh, dw, MaxSide)
		}
	}
	p := &Plan{name: name, dh: dh, dw: dw, sh: sh, sw: sw}
	var err error
	if p.rows, err = build(dh, sh); err != nil {
		return nil, err
	}
	if p.cols, err = build(dw, sw); err != nil {
		return nil, err
	}
	p.rows.finish()
	p.cols.finish()
	return p, nil
}

// String describes the plan, as "bicubic 64x64->128x128".
func (p *Plan) String() string {
	return fmt.Sprintf("%s %dx%d->%dx%d", p.name, p.sh, p.sw, p.dh, p.dw)
}

// Src returns the source plane size, and Dst the destination's.
func (p *Plan) Src() (h, w int) { return p.sh, p.sw }

// Dst returns the destination plane size.
func (p *Plan) Dst() (h, w int) { return p.dh, p.dw }

// Taps returns the mean number of source samples read per output sample
// along the rows (vertical) and columns (horizontal) axis.
func (p *Plan) Taps() (vertical, horizontal float64) {
	return float64(len(p.rows.w)) / float64(p.dh), float64(len(p.cols.w)) / float64(p.dw)
}

// Scale resizes planes: src holds len(src)/(sh*sw) row-major sh x sw planes
// and dst receives as many dh x dw planes. It panics if the lengths are not
// whole, equal numbers of planes (a programmer error, as in gonum's floats);
// Resize validates tensors instead. dst and src must not overlap.
func (p *Plan) Scale(dst, src []float32) {
	sp, dp := p.sh*p.sw, p.dh*p.dw
	if len(src)%sp != 0 || len(dst)%dp != 0 || len(src)/sp != len(dst)/dp {
		panic(fmt.Sprintf("resize: %s: %d source and %d destination values are not equal numbers of planes", p, len(src), len(dst)))
	}
	n := len(src) / sp
	if p.rows.identity && p.cols.identity {
		copy(dst, src)
		return
	}
	wk, _ := p.scratch.Get().(*work)
	if wk == nil {
		wk = &work{tmp: make([]float32, p.sh*p.dw), acc: make([]float64, p.dw)}
	}
	for i := range n {
		s, d := src[i*sp:(i+1)*sp], dst[i*dp:(i+1)*dp]
		switch {
		case p.cols.identity:
			p.vertical(d, s, wk.acc)
		case p.rows.identity:
			p.horizontal(d, s)
		default:
			p.horizontal(wk.tmp, s)
			p.vertical(d, wk.tmp, wk.acc)
		}
	}
	p.scratch.Put(wk)
}

// horizontal resizes the rows of an sh x sw plane into an sh x dw one.
func (p *Plan) horizontal(dst, src []float32) {
	a := &p.cols
	sw, dw := p.sw, p.dw
	for y := range p.sh {
		in, out := src[y*sw:(y+1)*sw], dst[y*dw:(y+1)*dw]
		if a.single {
			for x, j := range a.start {
				out[x] = in[j]
			}
			continue
		}
		for x := range out {
			w := a.w[a.off[x]:a.off[x+1]]
			seg := in[a.start[x]:]
			seg = seg[:len(w)]
			s := 0.0
			for k, v := range w {
				s += v * float64(seg[k])
			}
			out[x] = float32(s)
		}
	}
}

// vertical resizes the columns of an sh x dw plane into a dh x dw one,
// accumulating each output row in acc.
func (p *Plan) vertical(dst, src []float32, acc []float64) {
	a := &p.rows
	dw := p.dw
	for y := range p.dh {
		out := dst[y*dw : (y+1)*dw]
		if a.single {
			j := int(a.start[y])
			copy(out, src[j*dw:(j+1)*dw])
			continue
		}
		w := a.w[a.off[y]:a.off[y+1]]
		j0 := int(a.start[y])
		row := src[j0*dw : (j0+1)*dw]
		v := w[0]
		for x, s := range row {
			acc[x] = v * float64(s)
		}
		for k := 1; k < len(w); k++ {
			row = src[(j0+k)*dw : (j0+k+1)*dw]
			v = w[k]
			for x, s := range row {
				acc[x] += v * float64(s)
			}
		}
		for x, s := range acc {
			out[x] = float32(s)
		}
	}
}

// Resize resizes the last two axes of src into dst: both are float32
// tensors of rank 2 or more with equal leading axes, src's last two axes
// the plan's source size and dst's its destination size (N,C,H,W images,
// N,C,F,H,W video). It returns a *ugo.ShapeError when they do not fit.
func (p *Plan) Resize(dst, src *tensor.Dense) error {
	ss, err := checkTensor("src", src)
	if err != nil {
		return err
	}
	ds, err := checkTensor("dst", dst)
	if err != nil {
		return err
	}
	r := len(ss)
	if len(ds) != r || ss[r-2] != p.sh || ss[r-1] != p.sw || ds[r-2] != p.dh || ds[r-1] != p.dw {
		return &ugo.ShapeError{What: "dst", Got: ds, Want: fmt.Sprintf("src %v resized by %s", ss, p)}
	}
	for i := range r - 2 {
		if ss[i] != ds[i] {
			return &ugo.ShapeError{What: "dst", Got: ds, Want: fmt.Sprintf("the leading axes of src %v", ss)}
		}
	}
	if ugo.Overlapping(dst, src) {
		return fmt.Errorf("resize: %w: Resize reads src while it writes dst; pass a separate buffer", ugo.ErrAlias)
	}
	p.Scale(dst.Float32s(), src.Float32s())
	return nil
}

// checkTensor validates a float32 tensor of rank >= 2 with a dense backing
// slice and returns its shape.
func checkTensor(name string, x *tensor.Dense) ([]int, error) {
	return ugo.CheckDense(name, x, 2)
}

// To returns src (float32, rank >= 2) with its last two axes resized to
// h x w by s, in a new tensor. It computes a plan on each call; keep a Plan
// to resize many tensors of one size.
func To(s Strategy, src *tensor.Dense, h, w int) (*tensor.Dense, error) {
	if s == nil {
		return nil, errors.New("resize: nil strategy")
	}
	ss, err := checkTensor("src", src)
	if err != nil {
		return nil, err
	}
	r := len(ss)
	ds := append([]int(nil), ss...)
	ds[r-2], ds[r-1] = h, w
	if h > 0 && w > 0 {
		if need := ugo.TensorBytes(1, ds...); need > ugo.MemoryLimit() {
			return nil, ugo.CheckMemory(fmt.Sprintf("resize: a %v result", ds), need)
		}
	}
	p, err := s.Plan(h, w, ss[r-2], ss[r-1])
	if err != nil {
		return nil, err
	}
	n := 1
	for _, d := range ds {
		n *= d
	}
	dst := tensor.New(tensor.WithShape(ds...), tensor.WithBacking(make([]float32, n)))
	p.Scale(dst.Float32s(), src.Float32s())
	return dst, nil
}
