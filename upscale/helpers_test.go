package upscale

import (
	"context"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/internal/analytic"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

var testSchedule = schedule.Linear(1000, 1e-4, 0.02)

func newTensor(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

func randTensor(r *rand.Rand, shape ...int) *tensor.Dense {
	x := newTensor(shape...)
	for i, d := 0, x.Float32s(); i < len(d); i++ {
		d[i] = float32(r.NormFloat64())
	}
	return x
}

func clone(x *tensor.Dense) *tensor.Dense {
	return tensor.New(tensor.WithShape(x.Shape()...), tensor.WithBacking(append([]float32(nil), x.Float32s()...)))
}

// ddim is diffusers' DDIM on the test schedule.
func ddim() *sampler.DDIM {
	d, err := sampler.NewDDIM(schedule.DefaultConfig())
	if err != nil {
		panic(err)
	}
	d.Schedule = testSchedule
	d.ClipSample = false
	return d
}

// fieldModel is the exact denoiser of a Gaussian field with correlation
// length l pixels: at twice its "training" size it draws content at the
// wrong scale, like a trained CNN.
func fieldModel(l float64) ugo.Denoiser {
	f, err := analytic.NewField(l, l)
	if err != nil {
		panic(err)
	}
	return f.Denoiser(testSchedule.AlphaBar)
}

// pointwise is a deterministic, nonlinear model whose output depends on x
// and t elementwise.
type pointwise struct{ a, b float32 }

func (m pointwise) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	shape := x.Shape()
	per := len(x.Float32s()) / shape[0]
	xs, ds := x.Float32s(), dst.Float32s()
	for b := range shape[0] {
		tb := ugo.TimestepAt(t, b) / 1000
		for i := b * per; i < (b+1)*per; i++ {
			v := xs[i]
			ds[i] = m.a*v + m.b*float32(math.Sin(float64(v+tb))) + 0.1*tb
		}
	}
	return nil
}

// vae is a toy Codec with scale 2: decoding repeats each latent pixel 2x2
// and maps the channel mean to three image channels; encoding averages 2x2
// blocks and gives every latent channel the mean of the three.
type vae struct{ channels int }

func (v vae) Decode(ctx context.Context, z *tensor.Dense) (*tensor.Dense, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := z.Shape()
	n, c, h, w := s[0], s[1], s[2], s[3]
	mean := newTensor(n, 1, h, w)
	zs, ms := z.Float32s(), mean.Float32s()
	for b := range n {
		for i := range h * w {
			var sum float32
			for k := range c {
				sum += zs[(b*c+k)*h*w+i]
			}
			ms[b*h*w+i] = sum / float32(c)
		}
	}
	up, err := resize.To(resize.Nearest, mean, 2*h, 2*w)
	if err != nil {
		return nil, err
	}
	img := newTensor(n, 3, 2*h, 2*w)
	us, is := up.Float32s(), img.Float32s()
	p := 4 * h * w
	for b := range n {
		for k := range 3 {
			copy(is[(b*3+k)*p:(b*3+k+1)*p], us[b*p:(b+1)*p])
		}
	}
	return img, nil
}

func (v vae) Encode(ctx context.Context, img *tensor.Dense) (*tensor.Dense, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := img.Shape()
	n, h, w := s[0], s[2]/2, s[3]/2
	down, err := resize.To(resize.Area, img, h, w)
	if err != nil {
		return nil, err
	}
	z := newTensor(n, v.channels, h, w)
	ds, zs := down.Float32s(), z.Float32s()
	p := h * w
	for b := range n {
		for i := range p {
			m := (ds[(b*3)*p+i] + ds[(b*3+1)*p+i] + ds[(b*3+2)*p+i]) / 3
			for k := range v.channels {
				zs[(b*v.channels+k)*p+i] = m
			}
		}
	}
	return z, nil
}
