package convnet

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

var testAbar = schedule.Linear(1000, 1e-4, 0.02).AlphasCumprod()

// The loss on one fixed batch (fixed images, noise and timesteps) falls
// steadily: gradients reach every layer and Adam follows them.
func TestTrainingLossDecreases(t *testing.T) {
	cfg := Config{Channels: 1, Width: 8, Dilations: []int{1, 2}, EmbedDim: 8, TimeHidden: 8, AlphasCumprod: testAbar}
	net, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	const B, H, W = 4, 8, 8
	tr, err := NewTrainer(net, TrainConfig{Batch: B, Height: H, Width: W, LearningRate: 3e-3})
	if err != nil {
		t.Fatal(err)
	}
	x0 := make([]float32, B*H*W)
	for i := range x0 { // a bright square on a dark background
		y, x := i/W%H, i%W
		x0[i] = -1
		if y >= 2 && y < 6 && x >= 2 && x < 6 {
			x0[i] = 1
		}
	}
	eps := make([]float32, len(x0))
	noise.NewPCG(2).Normal(eps)
	ts := []float32{50, 300, 600, 900}

	before := map[string][]float32{}
	for _, p := range net.Params() {
		before[p.Name] = append([]float32(nil), p.Value.Float32s()...)
	}
	var losses []float32
	for range 40 {
		loss, err := tr.StepOn(x0, eps, ts)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, loss)
	}
	t.Logf("loss: first %.4f, 10th %.4f, 20th %.4f, last %.4f", losses[0], losses[9], losses[19], losses[len(losses)-1])
	if last := losses[len(losses)-1]; !(last < 0.5*losses[0]) {
		t.Errorf("loss went from %v to %v, want it at least halved", losses[0], last)
	}
	if tr.Steps() != 40 {
		t.Errorf("Steps() = %d, want 40", tr.Steps())
	}
	// Every parameter moved (gradients reached every layer).
	for _, p := range net.Params() {
		moved := false
		for j, v := range p.Value.Float32s() {
			if v != before[p.Name][j] {
				moved = true
				break
			}
		}
		if !moved {
			t.Errorf("parameter %s did not change", p.Name)
		}
	}
}

// A Denoiser made before training sees the trained weights: the per-shape
// graphs and the training graph share the parameter tensors.
func TestTrainerAndDenoiserShareWeights(t *testing.T) {
	cfg := Config{Channels: 1, Width: 4, Dilations: []int{1}, EmbedDim: 4, TimeHidden: 4, AlphasCumprod: testAbar}
	net, err := New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	model, err := net.Denoiser()
	if err != nil {
		t.Fatal(err)
	}
	x := dense(1, 1, 6, 6)
	noise.NewPCG(4).Normal(x.Float32s())
	out1, out2 := dense(1, 1, 6, 6), dense(1, 1, 6, 6)
	if err := model.PredictNoise(context.Background(), out1, x, []float32{400}); err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(net, TrainConfig{Batch: 2, Height: 6, Width: 6, EMADecay: 0.9, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	x0 := make([]float32, 2*36)
	for range 3 {
		if _, err := tr.Step(x0); err != nil {
			t.Fatal(err)
		}
	}
	if err := model.PredictNoise(context.Background(), out2, x, []float32{400}); err != nil {
		t.Fatal(err)
	}
	same := true
	for i := range out1.Float32s() {
		if out1.Float32s()[i] != out2.Float32s()[i] {
			same = false
		}
	}
	if same {
		t.Error("the Denoiser's output did not change after training steps")
	}
	if got := refForward(net, x.Float32s(), [4]int{1, 1, 6, 6}, []float32{400}); math.Abs(float64(got[7]-out2.Float32s()[7])) > 1e-5 {
		t.Errorf("after training, graph %v, reference %v", out2.Float32s()[7], got[7])
	}
	// The EMA lies between the initial and the current parameters.
	ema := tr.EMA()
	if ema == nil {
		t.Fatal("EMA() = nil with EMADecay 0.9")
	}
	if ema.Param("stem.w").Float32s()[0] == net.Param("stem.w").Float32s()[0] {
		t.Error("EMA equals the current parameters")
	}
}

func TestStepDeterministic(t *testing.T) {
	cfg := Config{Channels: 1, Width: 4, Dilations: []int{2}, EmbedDim: 4, TimeHidden: 4, AlphasCumprod: testAbar}
	run := func() []float32 {
		net, err := New(cfg, 9)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := NewTrainer(net, TrainConfig{Batch: 3, Height: 4, Width: 6, Seed: 11})
		if err != nil {
			t.Fatal(err)
		}
		x0 := make([]float32, 72)
		noise.NewPCG(1).Normal(x0)
		var losses []float32
		for range 3 {
			l, err := tr.Step(x0)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, l)
		}
		return losses
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seeds, different losses: %v and %v", a, b)
		}
	}
}

func TestTrainerErrors(t *testing.T) {
	net, err := New(Config{Channels: 1, Width: 2, EmbedDim: 2, TimeHidden: 2, AlphasCumprod: testAbar}, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := []TrainConfig{
		{Height: 4, Width: 4},
		{Batch: 1, Height: 0, Width: 4},
		{Batch: 1, Height: 4, Width: 4, LearningRate: -1},
		{Batch: 1, Height: 4, Width: 4, EMADecay: 1},
		{Batch: 1, Height: 4, Width: 4, Clip: math.NaN()},
	}
	for i, cfg := range bad {
		if _, err := NewTrainer(net, cfg); err == nil {
			t.Errorf("config %d: no error", i)
		}
	}
	if _, err := NewTrainer(nil, TrainConfig{Batch: 1, Height: 4, Width: 4}); err == nil {
		t.Error("nil net: no error")
	}
	tr, err := NewTrainer(net, TrainConfig{Batch: 2, Height: 4, Width: 4, Clip: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(make([]float32, 31)); err == nil {
		t.Error("Step with a short batch: no error")
	}
	if _, err := tr.StepOn(make([]float32, 32), make([]float32, 32), []float32{1}); err == nil {
		t.Error("StepOn with one timestep for two images: no error")
	}
	if _, err := tr.StepOn(make([]float32, 32), make([]float32, 32), []float32{1, 1000}); err == nil || !strings.Contains(err.Error(), "timestep") {
		t.Errorf("StepOn with t = 1000: %v, want a timestep error", err)
	}
	nan := make([]float32, 32)
	nan[3] = float32(math.NaN())
	if _, err := tr.StepOn(nan, make([]float32, 32), []float32{1, 2}); err == nil || !strings.Contains(err.Error(), "loss") {
		t.Errorf("StepOn with a NaN image: %v, want a loss error", err)
	}
	if tr.EMA() != nil {
		t.Error("EMA() != nil without EMADecay")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{Channels: 0, Width: 1, EmbedDim: 2, TimeHidden: 1, AlphasCumprod: testAbar},
		{Channels: 1, Width: 0, EmbedDim: 2, TimeHidden: 1, AlphasCumprod: testAbar},
		{Channels: 1, Width: 1, EmbedDim: 3, TimeHidden: 1, AlphasCumprod: testAbar},
		{Channels: 1, Width: 1, EmbedDim: 2, TimeHidden: 0, AlphasCumprod: testAbar},
		{Channels: 1, Width: 1, EmbedDim: 2, TimeHidden: 1, Dilations: []int{0}},
		{Channels: 1, Width: 1 << 20, EmbedDim: 2, TimeHidden: 1, AlphasCumprod: testAbar},
		{Channels: 1, Width: 1, EmbedDim: 2, TimeHidden: 1},
		{Channels: 1, Width: 1, EmbedDim: 2, TimeHidden: 1, AlphasCumprod: []float32{0.9, 0}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
		if _, err := New(c, 1); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
	net, err := New(DefaultConfig(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := net.NumParams(); got != 61378 {
		t.Errorf("DefaultConfig has %d parameters, want 61378", got)
	}
	// New is deterministic in its seed.
	other, _ := New(DefaultConfig(), 1)
	if net.Param("mid2.w").Float32s()[5] != other.Param("mid2.w").Float32s()[5] {
		t.Error("same seed, different weights")
	}
}

// The gradients gorgonia computes for the training loss match central
// finite differences of the reference forward pass, for a sample of the
// elements of every parameter.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	cfg := Config{Channels: 2, Width: 3, Dilations: []int{1, 2}, EmbedDim: 4, TimeHidden: 3, AlphasCumprod: testAbar}
	net := randomNet(t, cfg, 21)
	const B, H, W = 2, 6, 4
	tr, err := NewTrainer(net, TrainConfig{Batch: B, Height: H, Width: W})
	if err != nil {
		t.Fatal(err)
	}
	xt, target := tr.xt.Float32s(), tr.target.Float32s()
	noise.NewPCG(5).Normal(xt)
	noise.NewPCG(6).Normal(target)
	ts := tr.t.Float32s()
	ts[0], ts[1] = 80, 700
	if err := tr.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	defer tr.vm.Reset()
	shape := [4]int{B, cfg.Channels, H, W}
	loss := func() float64 {
		_, vs := refForward64(net, xt, shape, ts)
		var sum float64
		for i, v := range vs {
			d := v - float64(target[i])
			sum += d * d
		}
		return sum / float64(len(vs))
	}
	gl, err := scalarF32(tr.loss.Value())
	if err != nil {
		t.Fatal(err)
	}
	if want := loss(); math.Abs(float64(gl)-want) > 1e-5*want {
		t.Fatalf("graph loss %v, reference %v", gl, want)
	}
	checked := 0
	for i, p := range net.Params() {
		gv, err := tr.params[i].Grad()
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		grad := gv.Data().([]float32)
		vals := p.Value.Float32s()
		for _, j := range []int{0, len(vals) / 2, len(vals) - 1} {
			old := vals[j]
			const h = 1e-3
			vals[j] = old + h
			up, dUp := loss(), float64(vals[j])
			vals[j] = old - h
			down, dDown := loss(), float64(vals[j])
			vals[j] = old
			fd := (up - down) / (dUp - dDown)
			if diff := math.Abs(fd - float64(grad[j])); diff > 2e-3*math.Max(math.Abs(fd), 0.05) {
				t.Errorf("%s[%d]: gradient %v, finite difference %v", p.Name, j, grad[j], fd)
			}
			checked++
		}
	}
	t.Logf("checked %d gradient elements", checked)
}
