package video

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/sampler"
)

// TrainedFrames and TrainedSize are the clip length and frame size the
// shipped video model was trained at.
const (
	TrainedFrames = 8
	TrainedSize   = 28
)

// Setting is one way of sampling clips: Frames frames of Size x Size, with
// Upsample Guidance (factors [Frames/8, Size/28, Size/28], theta 1,
// x0 clamped block-wise to [-1, 1], fashion.Clamp) when Guided, plainly
// otherwise.
type Setting struct {
	Name   string
	Frames int
	Size   int
	Guided bool
}

// Factors returns [Frames/TrainedFrames, Size/TrainedSize, Size/TrainedSize],
// or an error when Frames or Size is not a positive multiple of the
// trained one.
func (s Setting) Factors() ([]int, error) {
	if s.Frames <= 0 || s.Frames%TrainedFrames != 0 || s.Size <= 0 || s.Size%TrainedSize != 0 {
		return nil, fmt.Errorf("%s: %d frames of %dx%d are not multiples of %d frames of %dx%d",
			s.Name, s.Frames, s.Size, s.Size, TrainedFrames, TrainedSize, TrainedSize)
	}
	return []int{s.Frames / TrainedFrames, s.Size / TrainedSize, s.Size / TrainedSize}, nil
}

// Settings are the rows of the video table: native, 2x frames, 2x space and
// both, plain and guided.
func Settings() []Setting {
	return []Setting{
		{Name: "8f 28 native", Frames: 8, Size: 28},
		{Name: "16f 28 plain", Frames: 16, Size: 28},
		{Name: "16f 28 UG [2,1,1]", Frames: 16, Size: 28, Guided: true},
		{Name: "8f 56 plain", Frames: 8, Size: 56},
		{Name: "8f 56 UG [1,2,2]", Frames: 8, Size: 56, Guided: true},
		{Name: "16f 56 plain", Frames: 16, Size: 56},
		{Name: "16f 56 UG [2,2,2]", Frames: 16, Size: 56, Guided: true},
	}
}

// Sampler draws batches of clips with DDIM (eta 0, x0 clipped to [-1, 1]
// and the noise re-derived from it, as examples/internal/fashion) on the
// shipped schedule.
type Sampler struct {
	Model ugo.Denoiser
	Steps int
	// Progress, if set, is called after every step.
	Progress func(step, steps int)
}

// Sample returns len(seeds) clips of setting s in one batch
// (N,1,Frames,Size,Size). Clip i starts from noise.NewTorchCPU(seeds[i])
// drawn over that clip alone (torch.manual_seed(seed);
// torch.randn(1,1,F,S,S)), whatever the batch and the guidance.
func (p *Sampler) Sample(ctx context.Context, s Setting, seeds []uint64) (*tensor.Dense, error) {
	factors, err := s.Factors()
	if err != nil {
		return nil, err
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("%s: no seeds", s.Name)
	}
	solver, err := fashion.NewSolver("ddim", false)
	if err != nil {
		return nil, err
	}
	model := p.Model
	var hook sampler.Hook
	if s.Guided && factors[0]*factors[1]*factors[2] > 1 {
		opts := fashion.Guided(1)
		opts.Factors = factors
		if model, err = guidance.Upsample(p.Model, fashion.Schedule(), opts); err != nil {
			return nil, err
		}
		if hook, err = fashion.Clamp(opts); err != nil {
			return nil, err
		}
	}
	n := len(seeds)
	data := make([]float32, n*s.Frames*s.Size*s.Size)
	x := tensor.New(tensor.WithShape(n, 1, s.Frames, s.Size, s.Size), tensor.WithBacking(data))
	noise.PerImage(noise.TorchSeeds(seeds...)...).Normal(data)
	opts := sampler.Options{Steps: p.Steps, Hook: hook}
	if p.Progress != nil {
		opts.Progress = func(pi sampler.ProgressInfo) error { p.Progress(pi.Step+1, pi.Steps); return nil }
	}
	if err := sampler.Sample(ctx, model, solver, x, opts); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return x, nil
}

// Frames28 returns the frames of clips x (N,1,F,S,S, S a multiple of 28)
// area-downsampled to 28x28: N*F images, clip by clip.
func Frames28(x *tensor.Dense) ([]float32, error) {
	sh := x.Shape()
	if len(sh) != 5 || sh[1] != 1 || sh[3] != sh[4] || sh[3]%TrainedSize != 0 {
		return nil, &ugo.ShapeError{What: "clips", Got: sh, Want: "N,1,F,S,S with S a multiple of 28"}
	}
	n := sh[0] * sh[2]
	f := sh[3] / TrainedSize
	if f == 1 {
		return append([]float32(nil), x.Float32s()...), nil
	}
	out := make([]float32, n*TrainedSize*TrainedSize)
	fashion.AreaDownsample(out, x.Float32s(), n, sh[3], sh[4], f)
	return out, nil
}
