// Package fashion holds what the Fashion-MNIST example programs share:
// the shipped model's schedule, and batched DDIM sampling at a chosen size
// with or without Upsample Guidance, from per-image seeds.
package fashion

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
	"github.com/ugo-diffusion/ugo/upscale"
)

// TrainedSize is the resolution the shipped model was trained at.
const TrainedSize = 28

// Schedule returns the shipped model's training schedule: diffusers'
// DDPMScheduler defaults (linear betas 1e-4..0.02, T = 1000).
func Schedule() *schedule.Schedule { return schedule.Linear(1000, 1e-4, 0.02) }

// FindFile returns the first of the candidate paths that exists, trying each
// also relative to the parent folders of the working directory (so that the
// examples work from the repository root and from their own folders).
func FindFile(candidates ...string) (string, error) {
	wd, _ := os.Getwd()
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if _, err := os.Stat(c); err == nil {
				return c, nil
			}
			continue
		}
		for dir := wd; ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, c)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", fmt.Errorf("none of %v found from %s or its parents", candidates, wd)
}

// Setting is one way of sampling: an output size and, when Guide is not nil,
// Upsample Guidance with those options.
type Setting struct {
	Name  string
	Size  int
	Guide *guidance.UpsampleOptions
	// Stages, when not empty, replaces the direct run: the images are the
	// last output of upscale.Run over these stages (of size Size).
	Stages []upscale.Stage
	// Solver names the sampler (see Solvers); "" is DDIM.
	Solver string
	// Steps, when positive, overrides Sampler.Steps for this setting.
	Steps int
	// DiffusersDDIM runs DDIM exactly with diffusers' defaults, whose
	// update keeps the unclipped noise prediction in its direction term
	// (use_clipped_model_output=False); by default DDIM re-derives it from
	// the clipped x0.
	DiffusersDDIM bool
	// Flow says the model is a rectified-flow velocity predictor (the
	// shipped fashion_flow_unet.onnx): it is sampled with
	// sampler.FlowMatchEuler with the static shift FlowShift (0 means 1,
	// none), Solver and DiffusersDDIM are ignored, and guidance reads its
	// outputs as schedule.PredictFlow. Stages are not supported.
	Flow      bool
	FlowShift float64
	// NoBlockClamp leaves a guided setting without the block-wise x0
	// clamp (Clamp) that Sampler.Sample otherwise gives it, so that only
	// the solver's element-wise clip acts.
	NoBlockClamp bool
}

// FlowModelFile is the shipped rectified-flow model, relative to the
// repository root (see FindFile).
const FlowModelFile = "testdata/models/fashion_flow_unet.onnx"

// ClipRange is the data range of the shipped model's images, [-1, 1]: the
// samplers' clip_sample range and that of the block clamp (Clamp).
const ClipRange = 1

// Guided returns the Upsample Guidance options the examples use with the
// shipped model: DefaultUpsampleOptions with theta. Sampler.Sample adds
// the block-wise x0 clamp of Clamp to guided settings.
func Guided(theta float64) guidance.UpsampleOptions {
	o := guidance.DefaultUpsampleOptions()
	o.Theta = theta
	return o
}

// Clamp returns the sampler hook that keeps x0 in the images' range
// [-ClipRange, ClipRange] block-wise for Upsample Guidance with opts
// (guidance.BlockClamp on the shipped model's schedule): the samples are
// images in [-1, 1], and DDIM clips x0 to that range.
func Clamp(opts guidance.UpsampleOptions) (sampler.Hook, error) {
	return guidance.BlockClamp(Schedule(), opts, ClipRange)
}

// Solvers lists the samplers the evaluation sweeps by default, in the order
// it reports them. A Setting accepts every name of sampler.Kinds.
var Solvers = []string{"ddim", "dpm++2m", "euler", "euler_a"}

// NewSolver returns the named sampler (a name of sampler.Kinds; "" is
// DDIM) on the shipped model's schedule, schedule.DefaultConfig (leading
// spacing for every sampler), except that DDIM re-derives the noise from
// the clipped x0 (UseClippedModelOutput) unless diffusersDDIM, and PNDM
// skips its Runge-Kutta steps.
func NewSolver(name string, diffusersDDIM bool) (sampler.Solver, error) {
	cfg := schedule.DefaultConfig()
	cfg.SkipPRKSteps = true
	if name == "" {
		name = "ddim"
	}
	s, err := sampler.New(name, cfg)
	if err != nil {
		return nil, err
	}
	if d, ok := s.(*sampler.DDIM); ok {
		d.UseClippedModelOutput = !diffusersDDIM
	}
	return s, nil
}

// Factor returns Size / TrainedSize, or an error when Size is not a multiple
// of the trained size.
func (s Setting) Factor() (int, error) { return s.FactorOver(TrainedSize) }

// FactorOver returns Size / trained, or an error when Size is not a
// positive multiple of trained.
func (s Setting) FactorOver(trained int) (int, error) {
	if trained <= 0 || s.Size <= 0 || s.Size%trained != 0 {
		return 0, fmt.Errorf("size %d is not a positive multiple of %d", s.Size, trained)
	}
	return s.Size / trained, nil
}

// Seeds returns the n seeds first, first+1, ...: image i of the examples'
// batches is drawn from seed first+i.
func Seeds(first uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = first + uint64(i)
	}
	return s
}

// SeedNoise fills dst, len(seeds) images of equal size, with each image's
// initial noise: image i is noise.NewTorchCPU(seeds[i]) drawn over that
// image alone, as torch.manual_seed(seeds[i]); torch.randn(1, C, H, W).
func SeedNoise(dst []float32, seeds []uint64) {
	noise.PerImage(noise.TorchSeeds(seeds...)...).Normal(dst)
}

// Sampler draws batches of images with the Setting's sampler (by default
// DDIM, eta 0, diffusers' defaults).
type Sampler struct {
	Model ugo.Denoiser
	Steps int
	// Trained is the model's training size; 0 means TrainedSize (the
	// shipped 28x28 model).
	Trained int
	// Progress, if set, is called after every DDIM step of every batch
	// with the number of images finished so far and the step within the
	// current batch.
	Progress func(imagesDone, step, steps int)
}

// Sample returns len(seeds) images of setting s in one batch (N,1,Size,Size).
// Image i starts from noise.NewTorchCPU(seeds[i]) drawn over one image, so a
// seed gives the same initial noise whatever the batch and whatever the
// guidance, and equals torch.manual_seed(seed); torch.randn(1,1,S,S).
func (p *Sampler) Sample(ctx context.Context, s Setting, seeds []uint64, imagesDone int) (*tensor.Dense, error) {
	trained := p.Trained
	if trained == 0 {
		trained = TrainedSize
	}
	f, err := s.FactorOver(trained)
	if err != nil {
		return nil, err
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%s: no seeds", s.Name)
	}
	sched := Schedule()
	var solver sampler.Solver
	if s.Flow {
		if len(s.Stages) > 0 {
			return nil, fmt.Errorf("%s: upscaling stages are not supported with a flow model", s.Name)
		}
		solver = &sampler.FlowMatchEuler{Shift: s.FlowShift}
	} else if solver, err = NewSolver(s.Solver, s.DiffusersDDIM); err != nil {
		return nil, err
	}
	steps := p.Steps
	if s.Steps > 0 {
		steps = s.Steps
	}
	if len(s.Stages) > 0 {
		us := upscale.Sampling{Model: p.Model, Schedule: sched, Solver: solver, Steps: steps, Channels: 1,
			Trained: [2]int{trained, trained}, Noise: noise.TorchSeeds(seeds...)}
		if !s.NoBlockClamp {
			us.ClampRange = ClipRange
		}
		if p.Progress != nil {
			us.Progress = func(_ int, q sampler.ProgressInfo) error { p.Progress(imagesDone, q.Step+1, q.Steps); return nil }
		}
		outs, err := upscale.Run(ctx, us, nil, s.Stages...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		return outs[len(outs)-1], nil
	}
	model := p.Model
	var hook sampler.Hook
	if s.Guide != nil && f > 1 {
		opts := *s.Guide
		opts.Factors = []int{f, f}
		if s.Flow {
			opts.Prediction = schedule.PredictFlow
		}
		if model, err = guidance.Upsample(p.Model, sched, opts); err != nil {
			return nil, err
		}
		if !s.NoBlockClamp {
			if hook, err = Clamp(opts); err != nil {
				return nil, err
			}
		}
	}
	n, per := len(seeds), s.Size*s.Size
	data := make([]float32, n*per)
	x := tensor.New(tensor.WithShape(n, 1, s.Size, s.Size), tensor.WithBacking(data))
	SeedNoise(data, seeds)
	// Stochastic samplers (Euler a) draw their per-step noise over the whole
	// batch from the first seed: their images depend on the batch, not only
	// on their own seed.
	opts := sampler.Options{Steps: steps, Noise: noise.NewTorchCPU(seeds[0] + 1<<32), Hook: hook}
	if p.Progress != nil {
		opts.Progress = func(pi sampler.ProgressInfo) error {
			p.Progress(imagesDone, pi.Step+1, pi.Steps)
			return nil
		}
	}
	if err := sampler.Sample(ctx, model, solver, x, opts); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return x, nil
}
