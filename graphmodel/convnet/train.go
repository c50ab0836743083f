package convnet

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/noise"
)

// TrainConfig configures a Trainer.
type TrainConfig struct {
	// Batch, Height and Width give the shape of a training batch
	// (Batch, Channels, Height, Width). Required.
	Batch, Height, Width int
	// LearningRate is Adam's step size; 0 means 1e-3.
	LearningRate float64
	// Clip, if positive, clips every gradient element to [-Clip, Clip]
	// before the Adam update.
	Clip float64
	// EMADecay, in [0, 1), keeps an exponential moving average of the
	// parameters (see Trainer.EMA); 0 turns it off.
	EMADecay float64
	// Seed seeds the draws of timesteps and noise in Step.
	Seed uint64
}

// Trainer trains a Net with gorgonia's Adam solver on the v-prediction
// loss mean((v(x_t, t) - v)^2), where x_t = sqrt(abar_t) x0 +
// sqrt(1-abar_t) eps and v = sqrt(abar_t) eps - sqrt(1-abar_t) x0, abar
// being the Net's schedule (Config.AlphasCumprod). In terms of the eps the
// Net's graph returns, this is the DDPM loss weighted by 1/abar_t, that is
// by SNR+1. It owns one gorgonia graph of the network at the batch shape,
// with the gradient graph, bound to the Net's parameter tensors: each step
// updates them in place. A Trainer is not
// safe for concurrent use, and the Net must not be evaluated (by a
// graphmodel.Model, say) while a step runs.
type Trainer struct {
	net    *Net
	cfg    TrainConfig
	abar   []float32
	g      *gorgonia.ExprGraph
	vm     gorgonia.VM
	solver *gorgonia.AdamSolver
	params gorgonia.Nodes
	loss   *gorgonia.Node

	xt, t, target *tensor.Dense // bound inputs

	rng   *rand.Rand
	noise *noise.PCG
	x0buf []float32 // scratch for Step

	ema   *Net
	steps int
}

// NewTrainer returns a Trainer for net.
func NewTrainer(net *Net, cfg TrainConfig) (tr *Trainer, err error) {
	if net == nil {
		return nil, errors.New("convnet: NewTrainer: nil Net")
	}
	if cfg.Batch < 1 || cfg.Height < 1 || cfg.Width < 1 {
		return nil, fmt.Errorf("convnet: NewTrainer: batch shape %d x %d x %d, want positive sizes", cfg.Batch, cfg.Height, cfg.Width)
	}
	if cfg.LearningRate == 0 {
		cfg.LearningRate = 1e-3
	}
	if !(cfg.LearningRate > 0) || math.IsInf(cfg.LearningRate, 0) {
		return nil, fmt.Errorf("convnet: NewTrainer: learning rate %v, want a positive number", cfg.LearningRate)
	}
	if !(cfg.EMADecay >= 0 && cfg.EMADecay < 1) {
		return nil, fmt.Errorf("convnet: NewTrainer: EMADecay %v, want a value in [0, 1)", cfg.EMADecay)
	}
	if cfg.Clip < 0 || math.IsNaN(cfg.Clip) {
		return nil, fmt.Errorf("convnet: NewTrainer: Clip %v, want >= 0", cfg.Clip)
	}
	defer func() {
		if r := recover(); r != nil {
			tr, err = nil, fmt.Errorf("convnet: NewTrainer: gorgonia panicked: %v", r)
		}
	}()

	shape := []int{cfg.Batch, net.cfg.Channels, cfg.Height, cfg.Width}
	size := shapeSize(shape)
	tr = &Trainer{
		net:    net,
		cfg:    cfg,
		abar:   net.cfg.AlphasCumprod,
		g:      gorgonia.NewGraph(),
		xt:     tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, size))),
		target: tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, size))),
		t:      tensor.New(tensor.WithShape(cfg.Batch), tensor.WithBacking(make([]float32, cfg.Batch))),
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		noise:  noise.NewPCG(cfg.Seed ^ 0x5851f42d4c957f2d),
		x0buf:  make([]float32, size),
	}
	xn := gorgonia.NewTensor(tr.g, tensor.Float32, 4, gorgonia.WithShape(shape...), gorgonia.WithName("convnet.xt"), gorgonia.WithValue(tr.xt))
	tn := gorgonia.NewVector(tr.g, tensor.Float32, gorgonia.WithShape(cfg.Batch), gorgonia.WithName("convnet.t"), gorgonia.WithValue(tr.t))
	target := gorgonia.NewTensor(tr.g, tensor.Float32, 4, gorgonia.WithShape(shape...), gorgonia.WithName("convnet.v"), gorgonia.WithValue(tr.target))
	_, pred, params, err := net.build(tr.g, xn, tn)
	if err != nil {
		return nil, fmt.Errorf("convnet: NewTrainer: %w", err)
	}
	diff, err := gorgonia.Sub(pred, target)
	if err != nil {
		return nil, fmt.Errorf("convnet: NewTrainer: %w", err)
	}
	sq, err := gorgonia.Square(diff)
	if err != nil {
		return nil, fmt.Errorf("convnet: NewTrainer: %w", err)
	}
	if tr.loss, err = gorgonia.Mean(sq); err != nil {
		return nil, fmt.Errorf("convnet: NewTrainer: %w", err)
	}
	if _, err = gorgonia.Grad(tr.loss, params...); err != nil {
		return nil, fmt.Errorf("convnet: NewTrainer: gradient graph: %w", err)
	}
	prog, locMap, err := gorgonia.Compile(tr.g)
	if err != nil {
		return nil, fmt.Errorf("convnet: NewTrainer: compiling: %w", err)
	}
	tr.params = params
	tr.vm = gorgonia.NewTapeMachine(tr.g, gorgonia.WithPrecompiled(prog, locMap), gorgonia.BindDualValues(params...))
	opts := []gorgonia.SolverOpt{gorgonia.WithLearnRate(cfg.LearningRate)}
	if cfg.Clip > 0 {
		opts = append(opts, gorgonia.WithClip(cfg.Clip))
	}
	tr.solver = gorgonia.NewAdamSolver(opts...)
	if cfg.EMADecay > 0 {
		tr.ema = net.Clone()
	}
	return tr, nil
}

// Steps returns the number of completed training steps.
func (tr *Trainer) Steps() int { return tr.steps }

// EMA returns the exponential moving average of the parameters (with the
// usual warm-up: the decay of step k is min(EMADecay, (1+k)/(10+k))), or
// nil when TrainConfig.EMADecay is 0. The Net is the Trainer's own and
// changes with every step; Clone it to keep a snapshot.
func (tr *Trainer) EMA() *Net { return tr.ema }

// Step runs one training step on a batch of clean images x0 (Batch x
// Channels x Height x Width values, row-major, in [-1, 1]): it draws one
// integer timestep per image, uniform in [0, T), and standard normal noise
// eps, forms x_t and the target v, and updates the parameters. It returns
// the loss before the update.
func (tr *Trainer) Step(x0 []float32) (float32, error) {
	if len(x0) != len(tr.x0buf) {
		return 0, fmt.Errorf("convnet: Step: %d values, want %d", len(x0), len(tr.x0buf))
	}
	T := len(tr.abar)
	ts := tr.t.Float32s()
	for i := range ts {
		ts[i] = float32(tr.rng.IntN(T))
	}
	tr.noise.Normal(tr.x0buf)
	return tr.stepNoised(x0, tr.x0buf, ts)
}

// StepOn runs one training step with given timesteps t (Batch values, in
// [0, T-1], integer or not) and noise eps (the shape of x0), and returns
// the loss before the update. It makes training reproducible from outside.
func (tr *Trainer) StepOn(x0, eps, t []float32) (float32, error) {
	if len(x0) != len(tr.x0buf) || len(eps) != len(tr.x0buf) {
		return 0, fmt.Errorf("convnet: StepOn: %d and %d values, want %d", len(x0), len(eps), len(tr.x0buf))
	}
	if len(t) != tr.cfg.Batch {
		return 0, fmt.Errorf("convnet: StepOn: %d timesteps, want %d", len(t), tr.cfg.Batch)
	}
	return tr.stepNoised(x0, eps, t)
}

func (tr *Trainer) stepNoised(x0, eps, t []float32) (loss float32, err error) {
	T := len(tr.abar)
	per := len(x0) / tr.cfg.Batch
	xt, ts, v := tr.xt.Float32s(), tr.t.Float32s(), tr.target.Float32s()
	for i, ti := range t {
		if !(ti >= 0 && ti <= float32(T-1)) {
			return 0, fmt.Errorf("convnet: timestep %v, want a value in [0, %d]", ti, T-1)
		}
		ts[i] = ti
		a := abarAt(tr.abar, ti)
		sa, sb := float32(math.Sqrt(a)), float32(math.Sqrt(1-a))
		for j := i * per; j < (i+1)*per; j++ {
			xt[j] = sa*x0[j] + sb*eps[j]
			v[j] = sa*eps[j] - sb*x0[j]
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("convnet: training step: gorgonia panicked: %v", r)
		}
	}()
	err = tr.vm.RunAll()
	if err == nil {
		loss, err = scalarF32(tr.loss.Value())
	}
	tr.vm.Reset()
	if err != nil {
		return 0, fmt.Errorf("convnet: training step: %w", err)
	}
	if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
		return loss, fmt.Errorf("convnet: training step %d: loss is %v", tr.steps, loss)
	}
	if err := tr.solver.Step(gorgonia.NodesToValueGrads(tr.params)); err != nil {
		return loss, fmt.Errorf("convnet: Adam step: %w", err)
	}
	tr.steps++
	if tr.ema != nil {
		d := float32(min(tr.cfg.EMADecay, float64(tr.steps)/float64(tr.steps+9)))
		for i, p := range tr.net.params {
			w, e := p.Value.Float32s(), tr.ema.params[i].Value.Float32s()
			for j := range e {
				e[j] = d*e[j] + (1-d)*w[j]
			}
		}
	}
	return loss, nil
}

// abarAt interpolates alphas_cumprod linearly at a fractional timestep.
func abarAt(abar []float32, t float32) float64 {
	i := int(t)
	if i >= len(abar)-1 {
		return float64(abar[len(abar)-1])
	}
	f := float64(t) - float64(i)
	return (1-f)*float64(abar[i]) + f*float64(abar[i+1])
}

func scalarF32(v gorgonia.Value) (float32, error) {
	if v == nil {
		return 0, errors.New("no loss value")
	}
	switch d := v.Data().(type) {
	case float32:
		return d, nil
	case []float32:
		if len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, fmt.Errorf("loss value %v (%T), want a float32 scalar", v, v.Data())
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
