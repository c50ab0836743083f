package convnet

import (
	"errors"
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/graphmodel"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// Config sets the architecture of a Net.
type Config struct {
	// Channels is the number of image channels C (1 for grey images).
	Channels int
	// Width is the number of feature channels of the hidden layers.
	Width int
	// Dilations holds one residual block of the half-resolution stage
	// per entry: a 3x3 convolution with that dilation (and as much zero
	// padding). Each block widens the receptive field by 4*d pixels of
	// the full-resolution image.
	Dilations []int
	// EmbedDim is the size of the sinusoidal timestep embedding (even).
	EmbedDim int
	// TimeHidden is the width of the timestep MLP's hidden layer.
	TimeHidden int
	// AlphasCumprod is the training schedule's alphas_cumprod, abar_t for
	// t = 0..T-1 (schedule.Schedule.AlphasCumprod). The network predicts
	// v = sqrt(abar_t) eps - sqrt(1-abar_t) x0 and its graph turns it into
	// eps (see Net), with abar interpolated linearly between training
	// steps.
	AlphasCumprod []float32
}

// DefaultConfig returns the configuration that examples/gotrain trains on
// 14x14 Fashion-MNIST: 1 channel, 32 features, three half-resolution
// blocks without dilation (a receptive field of about 24x24 pixels), a
// 32-wide embedding, a 64-wide timestep MLP (61,378 parameters), and
// diffusers' default schedule, schedule.Linear(1000, 1e-4, 0.02).
func DefaultConfig() Config {
	return Config{Channels: 1, Width: 32, Dilations: []int{1, 1, 1}, EmbedDim: 32, TimeHidden: 64,
		AlphasCumprod: schedule.Linear(1000, 1e-4, 0.02).AlphasCumprod()}
}

// maxDim bounds every size of a Config, and maxT the length of its
// schedule, so that a corrupt file cannot ask for absurd allocations.
const (
	maxDim = 1 << 12
	maxT   = 1 << 16
)

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	switch {
	case c.Channels < 1 || c.Channels > maxDim:
		return fmt.Errorf("convnet: Channels is %d, want 1..%d", c.Channels, maxDim)
	case c.Width < 1 || c.Width > maxDim:
		return fmt.Errorf("convnet: Width is %d, want 1..%d", c.Width, maxDim)
	case len(c.Dilations) > 64:
		return fmt.Errorf("convnet: %d blocks, want at most 64", len(c.Dilations))
	case c.EmbedDim < 2 || c.EmbedDim%2 != 0 || c.EmbedDim > maxDim:
		return fmt.Errorf("convnet: EmbedDim is %d, want an even number in 2..%d", c.EmbedDim, maxDim)
	case c.TimeHidden < 1 || c.TimeHidden > maxDim:
		return fmt.Errorf("convnet: TimeHidden is %d, want 1..%d", c.TimeHidden, maxDim)
	}
	for i, d := range c.Dilations {
		if d < 1 || d > 64 {
			return fmt.Errorf("convnet: Dilations[%d] is %d, want 1..64", i, d)
		}
	}
	if len(c.AlphasCumprod) < 2 || len(c.AlphasCumprod) > maxT {
		return fmt.Errorf("convnet: AlphasCumprod has %d values, want 2..%d (the training schedule's alphas_cumprod)", len(c.AlphasCumprod), maxT)
	}
	for i, a := range c.AlphasCumprod {
		if !(a > 0 && a <= 1) {
			return fmt.Errorf("convnet: AlphasCumprod[%d] is %v, want a value in (0, 1]", i, a)
		}
	}
	return nil
}

// Param is one named parameter tensor of a Net.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// Net is a small fully convolutional noise-prediction network with
// sinusoidal timestep conditioning: a two-level U-shaped stack of residual
// 3x3 convolutions that predicts v, whose graph returns eps. With x of shape (N, C, H, W), t of length N,
// silu(a) = a*sigmoid(a), conv_d a 3x3 convolution with dilation d and
// zero padding d (same output size), down the average of 2x2 blocks and up
// the nearest-neighbour repetition by 2:
//
//	emb = [sin(t*f_0) .. sin(t*f_{E/2-1}), cos(t*f_0) .. cos(t*f_{E/2-1})],  f_j = 10000^(-2j/E)
//	ht  = silu(emb @ time.w1 + time.b1)                                       (N, TimeHidden)
//	s(L) = ht @ L.p + L.b, added to every pixel of channel c of element n     (N, channels of L)
//	h1  = silu(conv_1(x; stem.w) + s(stem))                                   (N, Width, H, W)
//	h1  = h1 + silu(conv_1(h1; enc.w) + s(enc))
//	h2  = down(h1)                                                            (N, Width, H/2, W/2)
//	h2  = h2 + silu(conv_d(h2; midI.w) + s(midI))                             for each dilation d
//	h   = h1 + up(h2)
//	h   = h + silu(conv_1(h; dec.w) + s(dec))
//	v   = conv_1(h; out.w) + s(out) + s(skip) * x
//	eps = sqrt(abar_t) v + sqrt(1-abar_t) x
//
// Convolutions have no bias of their own: s(L) carries it (L.b). The term
// s(skip) * x, a per-channel scale of the input computed from the
// timestep, spares the convolutions an identity map at low noise, where v
// is nearly the noise in x. abar_t is Config.AlphasCumprod interpolated
// linearly in t (extrapolated linearly outside [0, T-1]), computed in the
// graph as a sum of ramps max(0, t-k) over the training steps k.
//
// Predicting v (Salimans and Ho, arXiv 2202.00512) rather than eps matters
// for a small network: at high noise, x0 = (x - sqrt(1-abar) eps) /
// sqrt(abar) magnifies an error in eps by 1/sqrt(abar) (150 at t = 999 of
// the default schedule), and an eps-network trained for minutes gives
// samples full of saturated specks; through v the error reaches eps scaled
// by sqrt(abar) instead. The network has no normalisation; it runs at any
// even H and W.
//
// The parameters live in *tensor.Dense values (Params) that every graph
// built by Build binds through graphmodel.Weight, so the per-shape graphs
// of a graphmodel.Model and a Trainer's graph share them.
type Net struct {
	cfg    Config
	params []Param
	byName map[string]*tensor.Dense
	freqs  *tensor.Dense // (1, EmbedDim/2), constant
	ones   *tensor.Dense // (1, 2, 1, 2), constant
	// The ramp basis of sqrt(abar_t) and sqrt(1-abar_t), constants:
	// f(t) = f(0) + sum_k max(0, t-k) * slopes[k], k = 0..T-2.
	knots          *tensor.Dense // (1, T-1): 0, 1, .., T-2
	slopeA, slopeB *tensor.Dense // (T-1, 1): slope changes of sqrt(abar), sqrt(1-abar)
	startA, startB float32       // sqrt(abar_0), sqrt(1-abar_0)
}

// paramShapes lists the parameters of a configuration in their canonical
// order (the order of Params and of the weights file).
func paramShapes(c Config) []struct {
	name  string
	shape []int
} {
	type ps = struct {
		name  string
		shape []int
	}
	W, C, TH := c.Width, c.Channels, c.TimeHidden
	out := []ps{
		{"time.w1", []int{c.EmbedDim, TH}},
		{"time.b1", []int{TH}},
		{"stem.w", []int{W, C, 3, 3}},
		{"stem.p", []int{TH, W}},
		{"stem.b", []int{W}},
	}
	conv := func(name string) {
		out = append(out, ps{name + ".w", []int{W, W, 3, 3}}, ps{name + ".p", []int{TH, W}}, ps{name + ".b", []int{W}})
	}
	conv("enc")
	for i := range c.Dilations {
		conv(fmt.Sprintf("mid%d", i))
	}
	conv("dec")
	return append(out,
		ps{"out.w", []int{C, W, 3, 3}},
		ps{"out.p", []int{TH, C}},
		ps{"out.b", []int{C}},
		ps{"skip.p", []int{TH, C}},
		ps{"skip.b", []int{C}},
	)
}

// New returns a Net with freshly initialised parameters: convolution and
// linear weights drawn from a normal distribution scaled by their fan-in
// (He initialisation for the layers followed by silu, smaller for the
// residual blocks and the output), biases zero. The same seed gives the
// same parameters.
func New(cfg Config, seed uint64) (*Net, error) {
	n, err := newZero(cfg)
	if err != nil {
		return nil, err
	}
	src := noise.NewPCG(seed)
	blocks := float64(len(cfg.Dilations) + 2)
	for _, p := range n.params {
		w := p.Value.Float32s()
		shape := p.Value.Shape()
		if len(shape) == 1 {
			continue // biases start at zero
		}
		fanIn := shape[0] // linear (in, out)
		if len(shape) == 4 {
			fanIn = shape[1] * shape[2] * shape[3]
		}
		std := math.Sqrt(2 / float64(fanIn))
		switch {
		case p.Name != "stem.w" && p.Name != "out.w" && len(shape) == 4: // residual blocks
			std /= math.Sqrt(2 * math.Max(blocks, 1))
		case p.Name == "out.w":
			std = 0.1 * math.Sqrt(1/float64(fanIn))
		case len(shape) == 2 && p.Name != "time.w1":
			std = 0.5 * math.Sqrt(1/float64(fanIn)) // timestep projections
		}
		src.Normal(w)
		for i := range w {
			w[i] *= float32(std)
		}
	}
	return n, nil
}

// newZero returns a Net of configuration cfg with all parameters zero.
func newZero(cfg Config) (*Net, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// A configuration within the per-field limits can still describe
	// tens of gigabytes of parameters (64 blocks of width 4096): refuse it
	// before allocating.
	var need int64
	for _, ps := range paramShapes(cfg) {
		need += ugo.TensorBytes(1, ps.shape...)
		if need < 0 {
			need = math.MaxInt64
			break
		}
	}
	if err := ugo.CheckMemory(fmt.Sprintf("convnet: the parameters of configuration Width %d, %d blocks", cfg.Width, len(cfg.Dilations)), need); err != nil {
		return nil, err
	}
	cfg.Dilations = append([]int(nil), cfg.Dilations...)
	cfg.AlphasCumprod = append([]float32(nil), cfg.AlphasCumprod...)
	n := &Net{cfg: cfg, byName: make(map[string]*tensor.Dense)}
	for _, ps := range paramShapes(cfg) {
		size := 1
		for _, d := range ps.shape {
			size *= d
		}
		v := tensor.New(tensor.WithShape(ps.shape...), tensor.WithBacking(make([]float32, size)))
		n.params = append(n.params, Param{Name: ps.name, Value: v})
		n.byName[ps.name] = v
	}
	half := cfg.EmbedDim / 2
	f := make([]float32, half)
	for j := range f {
		f[j] = float32(math.Exp(-math.Log(10000) * float64(j) / float64(half)))
	}
	n.freqs = tensor.New(tensor.WithShape(1, half), tensor.WithBacking(f))
	n.ones = tensor.New(tensor.WithShape(1, 2, 1, 2), tensor.WithBacking([]float32{1, 1, 1, 1}))
	T := len(cfg.AlphasCumprod)
	knots := make([]float32, T-1)
	sa, sb := make([]float32, T-1), make([]float32, T-1)
	var prevA, prevB float64
	for k := range knots {
		knots[k] = float32(k)
		a0, a1 := float64(cfg.AlphasCumprod[k]), float64(cfg.AlphasCumprod[k+1])
		slopeA := math.Sqrt(a1) - math.Sqrt(a0)
		slopeB := math.Sqrt(1-a1) - math.Sqrt(1-a0)
		sa[k], sb[k] = float32(slopeA-prevA), float32(slopeB-prevB)
		prevA, prevB = slopeA, slopeB
	}
	n.knots = tensor.New(tensor.WithShape(1, T-1), tensor.WithBacking(knots))
	n.slopeA = tensor.New(tensor.WithShape(T-1, 1), tensor.WithBacking(sa))
	n.slopeB = tensor.New(tensor.WithShape(T-1, 1), tensor.WithBacking(sb))
	a0 := float64(cfg.AlphasCumprod[0])
	n.startA, n.startB = float32(math.Sqrt(a0)), float32(math.Sqrt(1-a0))
	return n, nil
}

// Config returns the network's configuration.
func (n *Net) Config() Config {
	c := n.cfg
	c.Dilations = append([]int(nil), c.Dilations...)
	c.AlphasCumprod = append([]float32(nil), c.AlphasCumprod...)
	return c
}

// Params returns the parameters in their canonical order. The tensors are
// the network's own: modifying their elements changes the network.
func (n *Net) Params() []Param { return append([]Param(nil), n.params...) }

// Param returns the parameter called name, or nil.
func (n *Net) Param(name string) *tensor.Dense { return n.byName[name] }

// NumParams returns the number of scalar parameters.
func (n *Net) NumParams() int {
	total := 0
	for _, p := range n.params {
		total += p.Value.Shape().TotalSize()
	}
	return total
}

// Freqs returns the frequencies f_j of the timestep embedding (a copy).
func (n *Net) Freqs() []float32 { return append([]float32(nil), n.freqs.Float32s()...) }

// Clone returns a deep copy of the network.
func (n *Net) Clone() *Net {
	c, err := newZero(n.cfg)
	if err != nil {
		panic(err) // n's configuration was validated when n was made
	}
	if err := c.CopyFrom(n); err != nil {
		panic(err) // same configuration, same parameters
	}
	return c
}

// CopyFrom copies the parameters of src into n. The two networks must have
// the same parameter names and shapes.
func (n *Net) CopyFrom(src *Net) error {
	if len(src.params) != len(n.params) {
		return fmt.Errorf("convnet: CopyFrom: %d parameters, want %d", len(src.params), len(n.params))
	}
	for i, p := range n.params {
		q := src.params[i]
		if q.Name != p.Name || !q.Value.Shape().Eq(p.Value.Shape()) {
			return fmt.Errorf("convnet: CopyFrom: parameter %s %v, want %s %v", q.Name, q.Value.Shape(), p.Name, p.Value.Shape())
		}
	}
	for i, p := range n.params {
		copy(p.Value.Float32s(), src.params[i].Value.Float32s())
	}
	return nil
}

// Denoiser returns a graphmodel.Model that evaluates the network. The model
// reads the network's parameters at every call, so it sees later changes to
// them (a Trainer's steps); do not train and sample at the same time.
func (n *Net) Denoiser() (*graphmodel.Model, error) { return graphmodel.New(n.Build) }

// Build is a graphmodel.BuildFunc: it adds the network to g, reading x
// (N, C, H, W) and t (N), and returns eps (N, C, H, W).
func (n *Net) Build(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (*gorgonia.Node, error) {
	eps, _, _, err := n.build(g, x, t)
	return eps, err
}

// build adds the network to g and returns its outputs eps and v and its
// parameter nodes in canonical order.
func (n *Net) build(g *gorgonia.ExprGraph, x, t *gorgonia.Node) (eps, v *gorgonia.Node, params gorgonia.Nodes, err error) {
	if x == nil || t == nil {
		return nil, nil, nil, errors.New("convnet: nil input node")
	}
	xs, ts := x.Shape(), t.Shape()
	if len(xs) != 4 {
		return nil, nil, nil, fmt.Errorf("convnet: x has shape %v, want (N, C, H, W)", xs)
	}
	if xs[1] != n.cfg.Channels {
		return nil, nil, nil, fmt.Errorf("convnet: x has %d channels, want %d", xs[1], n.cfg.Channels)
	}
	if ts.TotalSize() != xs[0] || len(ts) > 1 {
		return nil, nil, nil, fmt.Errorf("convnet: t has shape %v, want (%d)", ts, xs[0])
	}
	if xs[2]%2 != 0 || xs[3]%2 != 0 {
		return nil, nil, nil, fmt.Errorf("convnet: x is %dx%d, want an even height and width", xs[2], xs[3])
	}
	b := builder{g: g, net: n}
	// After a failed step the builder passes nil nodes on, on which some
	// gorgonia functions panic: report the first error instead.
	defer func() {
		if r := recover(); r != nil {
			eps, v, params, err = nil, nil, nil, b.err
			if err == nil {
				err = fmt.Errorf("convnet: building the graph: panic: %v", r)
			}
		}
	}()
	for _, p := range n.params {
		b.weight(p.Name)
	}
	N := xs[0]
	// Timestep embedding and MLP.
	tcol := b.do1(gorgonia.Reshape(t, tensor.Shape{N, 1}))
	freqs := b.constant("convnet.freqs", n.freqs)
	arg := b.do1(gorgonia.BroadcastHadamardProd(tcol, freqs, []byte{1}, []byte{0}))
	emb := b.do1(gorgonia.Concat(1, b.do1(gorgonia.Sin(arg)), b.do1(gorgonia.Cos(arg))))
	ht := b.silu(b.linear(emb, "time.w1", "time.b1"))

	h1 := b.silu(b.conv(x, ht, "stem", 1))
	h1 = b.residual(h1, ht, "enc", 1)
	h2 := b.down(h1)
	for i, d := range n.cfg.Dilations {
		h2 = b.residual(h2, ht, fmt.Sprintf("mid%d", i), d)
	}
	h := b.do1(gorgonia.Add(h1, b.up(h2)))
	h = b.residual(h, ht, "dec", 1)
	v = b.conv(h, ht, "out", 1)
	v = b.do1(gorgonia.Add(v, b.scale(x, b.linear(ht, "skip.p", "skip.b"))))

	// eps = sqrt(abar_t) v + sqrt(1-abar_t) x, the coefficients as sums of
	// ramps over the training steps.
	ramps := b.do1(gorgonia.Rectify(b.do1(gorgonia.BroadcastSub(tcol, b.constant("convnet.knots", n.knots), []byte{1}, []byte{0}))))
	coef := func(name string, slopes *tensor.Dense, start float32) *gorgonia.Node {
		c := b.do1(gorgonia.Mul(ramps, b.constant(name, slopes)))
		c = b.do1(gorgonia.Add(c, gorgonia.NewConstant(start)))
		return b.do1(gorgonia.Reshape(c, tensor.Shape{N, 1, 1, 1}))
	}
	ca, cb := coef("convnet.slopeA", n.slopeA, n.startA), coef("convnet.slopeB", n.slopeB, n.startB)
	if b.err != nil {
		return nil, nil, nil, b.err
	}
	va := b.do1(gorgonia.BroadcastHadamardProd(v, ca, nil, []byte{1, 2, 3}))
	xb := b.do1(gorgonia.BroadcastHadamardProd(x, cb, nil, []byte{1, 2, 3}))
	eps = b.do1(gorgonia.Add(va, xb))
	if b.err != nil {
		return nil, nil, nil, b.err
	}
	return eps, v, b.nodes, nil
}

// builder threads the first error through a sequence of graph operations.
type builder struct {
	g      *gorgonia.ExprGraph
	net    *Net
	nodes  gorgonia.Nodes
	byName map[string]*gorgonia.Node
	err    error
}

func (b *builder) weight(name string) {
	if b.err != nil {
		return
	}
	node, err := graphmodel.Weight(b.g, name, b.net.byName[name])
	if err != nil {
		b.err = err
		return
	}
	if b.byName == nil {
		b.byName = make(map[string]*gorgonia.Node)
	}
	b.byName[name] = node
	b.nodes = append(b.nodes, node)
}

func (b *builder) constant(name string, v *tensor.Dense) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	node, err := graphmodel.Weight(b.g, name, v)
	b.err = err
	return node
}

func (b *builder) do1(n *gorgonia.Node, err error) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	if err != nil {
		b.err = err
		return nil
	}
	return n
}

// linear returns a @ w + bias for a (N, in), w (in, out), bias (out).
func (b *builder) linear(a *gorgonia.Node, w, bias string) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	m := b.do1(gorgonia.Mul(a, b.byName[w]))
	if b.err != nil {
		return nil
	}
	out := m.Shape()[1]
	row := b.do1(gorgonia.Reshape(b.byName[bias], tensor.Shape{1, out}))
	return b.do1(gorgonia.BroadcastAdd(m, row, nil, []byte{0}))
}

func (b *builder) silu(a *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	return b.do1(gorgonia.HadamardProd(a, b.do1(gorgonia.Sigmoid(a))))
}

// residual returns h + silu(conv_d(h; L.w) + s(L)).
func (b *builder) residual(h, ht *gorgonia.Node, layer string, d int) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	return b.do1(gorgonia.Add(h, b.silu(b.conv(h, ht, layer, d))))
}

// down averages the 2x2 blocks of h (N, C, H, W) into (N, C, H/2, W/2).
// (gorgonia's AveragePool2D divides by the input width instead of the
// kernel size in v0.9.18, so this reshapes and sums instead.)
func (b *builder) down(h *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	s := h.Shape()
	n, c, hh, ww := s[0], s[1], s[2]/2, s[3]/2
	r := b.do1(gorgonia.Reshape(h, tensor.Shape{n * c * hh, 2, ww, 2}))
	sum := b.do1(gorgonia.Sum(r, 1, 3))
	if b.err != nil {
		return nil
	}
	avg := b.do1(gorgonia.Mul(sum, gorgonia.NewConstant(float32(0.25))))
	return b.do1(gorgonia.Reshape(avg, tensor.Shape{n, c, hh, ww}))
}

// up repeats every pixel of h (N, C, H, W) into a 2x2 block: (N, C, 2H,
// 2W). (gorgonia's Upsample2D reads and writes every element through
// boxed At/SetAt calls, which is slow; a broadcast product with ones is
// the same nearest-neighbour repetition.)
func (b *builder) up(h *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	s := h.Shape()
	n, c, hh, ww := s[0], s[1], s[2], s[3]
	r := b.do1(gorgonia.Reshape(h, tensor.Shape{n * c * hh, 1, ww, 1}))
	ones := b.constant("convnet.ones", b.net.ones)
	rep := b.do1(gorgonia.BroadcastHadamardProd(r, ones, []byte{1, 3}, []byte{0, 2}))
	return b.do1(gorgonia.Reshape(rep, tensor.Shape{n, c, 2 * hh, 2 * ww}))
}

// scale returns x (N, C, H, W) times s (N, C), broadcast over the pixels.
func (b *builder) scale(x, s *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	ss := s.Shape()
	s4 := b.do1(gorgonia.Reshape(s, tensor.Shape{ss[0], ss[1], 1, 1}))
	return b.do1(gorgonia.BroadcastHadamardProd(x, s4, nil, []byte{2, 3}))
}

// conv returns conv_d(h; L.w) + s(L), with s(L) = ht @ L.p + L.b broadcast
// over the pixels.
func (b *builder) conv(h, ht *gorgonia.Node, layer string, d int) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	c := b.do1(gorgonia.Conv2d(h, b.byName[layer+".w"], tensor.Shape{3, 3}, []int{d, d}, []int{1, 1}, []int{d, d}))
	s := b.linear(ht, layer+".p", layer+".b")
	if b.err != nil {
		return nil
	}
	ss := s.Shape()
	s4 := b.do1(gorgonia.Reshape(s, tensor.Shape{ss[0], ss[1], 1, 1}))
	return b.do1(gorgonia.BroadcastAdd(c, s4, nil, []byte{2, 3}))
}
