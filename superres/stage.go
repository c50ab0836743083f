package superres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/upscale"
)

// Stage is the upscale.Stage that enlarges its input with a
// super-resolution model, without diffusion: the "traditional upscaler"
// before a refinement. Chained before an upscale.Refine of the same size,
// it makes ESRGAN-then-SDEdit one pipeline:
//
//	upscale.Run(ctx, s, nil,
//		upscale.Generate{Height: 28, Width: 28},
//		superres.Stage{Model: esrgan},                           // 28 -> 112
//		upscale.Refine{Height: 112, Width: 112, Strength: 0.3}) // SDEdit at 112
//
// (Refine resizes its input to its own size first, which is the identity
// when the sizes agree, so its reference is the model's output.)
type Stage struct {
	// Model is the super-resolution model. Required.
	Model *Model
	// Height and Width are the output size; zero means the input size
	// times the model's scale. When they differ from that, the model's
	// output is resized to them with Filter.
	Height, Width int
	// Filter resizes the model's output when Height and Width ask for
	// another size; nil means resize.Bicubic (antialiased when shrinking).
	Filter resize.Strategy
	// Codec, if not nil, makes the stage work on decoded images: latents
	// are decoded, upscaled in image space, resized to Height x Width
	// times the codec's ratio and encoded again. Height and Width are then
	// in latent pixels, and the model's SampleRange should be the codec's
	// image range ([-1, 1], the default).
	Codec upscale.Codec
}

// Run implements upscale.Stage. It does not use s, which may be nil, and
// does not modify x.
func (st Stage) Run(ctx context.Context, _ *upscale.Sampling, x *tensor.Dense) (*tensor.Dense, error) {
	if st.Model == nil {
		return nil, errors.New("superres: Stage needs a Model")
	}
	shape, err := ugo.CheckSample("x", x)
	if err != nil {
		return nil, err
	}
	if len(shape) != 4 {
		return nil, &ugo.ShapeError{What: "x", Got: shape, Want: "rank 4 (N, C, H, W)"}
	}
	if st.Height < 0 || st.Width < 0 {
		return nil, fmt.Errorf("superres: Stage size %dx%d, want positive sizes (or zero: the model's scale)", st.Height, st.Width)
	}
	h, w := st.Height, st.Width
	if h == 0 {
		h = shape[2] * st.Model.Scale()
	}
	if w == 0 {
		w = shape[3] * st.Model.Scale()
	}
	f := st.Filter
	if f == nil {
		f = resize.Bicubic
	}
	if st.Codec == nil {
		return st.upscale(ctx, x, h, w, f)
	}
	img, err := st.Codec.Decode(ctx, x)
	if err != nil {
		return nil, fmt.Errorf("superres: decode: %w", err)
	}
	is, err := ugo.CheckSample("decoded image", img)
	if err != nil {
		return nil, err
	}
	if len(is) != 4 || is[0] != shape[0] || is[2]%shape[2] != 0 || is[3]%shape[3] != 0 || is[2]/shape[2] != is[3]/shape[3] {
		return nil, &ugo.ShapeError{What: "decoded image", Got: is, Want: fmt.Sprintf("an integer multiple, equal on both axes, of the latent %v", shape)}
	}
	ratio := is[2] / shape[2]
	up, err := st.upscale(ctx, img, h*ratio, w*ratio, f)
	if err != nil {
		return nil, err
	}
	z, err := st.Codec.Encode(ctx, up)
	if err != nil {
		return nil, fmt.Errorf("superres: encode: %w", err)
	}
	want := []int{shape[0], shape[1], h, w}
	if zs, err := ugo.CheckSample("encoded latents", z); err != nil {
		return nil, err
	} else if !slices.Equal([]int(zs), want) {
		return nil, &ugo.ShapeError{What: "encoded latents", Got: zs, Want: fmt.Sprintf("%v", want)}
	}
	return z, nil
}

// upscale runs the model on x and resizes its output to h x w when needed.
func (st Stage) upscale(ctx context.Context, x *tensor.Dense, h, w int, f resize.Strategy) (*tensor.Dense, error) {
	y, err := st.Model.Upscale(ctx, x)
	if err != nil {
		return nil, err
	}
	if ys := y.Shape(); ys[2] == h && ys[3] == w {
		return y, nil
	}
	return resize.To(f, y, h, w)
}
