package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/sampler"
)

// VAEEncoderPath is the path of the VAE encoder in a model folder. Load
// does not need it; OpenVAE does.
const VAEEncoderPath = "vae_encoder/model.onnx"

// The VAE encoder outputs understood by OpenVAE: diffusers' export samples
// the posterior inside the graph (latent_sample); newer optimum exports
// return its parameters, mean and log-variance stacked along the channels
// (latent_parameters), of which the mean is used.
const (
	vaeEncSample = "latent_sample"
	vaeEncParams = "latent_parameters"
)

// VAE is a model's variational autoencoder, both ways: Encode maps images
// to latents and Decode latents to images, each with the model's scaling
// factor applied. It implements upscale.Codec, which Latent Frequency
// Mixing and image-space upscaling need. A VAE is safe for concurrent use;
// Close releases the encoder (the decoder belongs to the Model).
type VAE struct {
	m       *Model
	enc     *onnx.Graph
	in, out string
	params  bool // out holds mean and log-variance: keep the first half
	decode  DecodeOptions
}

// OpenVAE opens the folder's VAE encoder (vae_encoder/model.onnx, input
// sample [N, 3, H, W] -> latent_sample or latent_parameters) next to the
// model's decoder. Decode and Encode tile as decode says; opts configure the
// encoder's ONNX Runtime session (Load's options are not kept).
//
// diffusers' ONNX export draws a sample of the latent posterior inside the
// encoder graph (a RandomNormalLike node), so its Encode is random from
// call to call, as diffusers' vae.encode(x).latent_dist.sample() is; an
// export with latent_parameters gives the deterministic mean (diffusers'
// latent_dist.mode()).
func (m *Model) OpenVAE(decode DecodeOptions, opts ...onnx.Option) (*VAE, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	path := filepath.Join(m.info.Dir, VAEEncoderPath)
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		return nil, &MissingError{Dir: m.info.Dir, Missing: []string{VAEEncoderPath}}
	}
	_, err := decode.plan(1, 1, m.info.VAEScale)
	if err != nil {
		return nil, err
	}
	v := &VAE{m: m, decode: decode}
	if v.enc, err = onnx.OpenGraph(path, opts...); err != nil {
		return nil, fmt.Errorf("pipeline: vae encoder: %w", err)
	}
	info := v.enc.Info()
	switch {
	case hasTensor(info.Outputs, vaeEncSample):
		v.out = vaeEncSample
	case hasTensor(info.Outputs, vaeEncParams):
		v.out, v.params = vaeEncParams, true
	case len(info.Outputs) == 1:
		v.out = info.Outputs[0].Name
	default:
		v.enc.Close()
		return nil, fmt.Errorf("pipeline: %s has outputs %v, want %s or %s", VAEEncoderPath, tensorNames(info.Outputs), vaeEncSample, vaeEncParams)
	}
	switch {
	case hasTensor(info.Inputs, "sample") && len(info.Inputs) == 1:
		v.in = "sample"
	case len(info.Inputs) == 1:
		v.in = info.Inputs[0].Name
	default:
		v.enc.Close()
		return nil, fmt.Errorf("pipeline: %s has inputs %v, want one input sample [batch, 3, height, width]", VAEEncoderPath, tensorNames(info.Inputs))
	}
	if len(info.Outputs) > 1 {
		// Restrict the session to the output used (see onnx.WithOutputs).
		v.enc.Close()
		if v.enc, err = onnx.OpenGraph(path, append(slices.Clip(opts), onnx.WithOutputs(v.out))...); err != nil {
			return nil, fmt.Errorf("pipeline: vae encoder: %w", err)
		}
	}
	in, _ := v.enc.Input(v.in)
	out, _ := v.enc.Output(v.out)
	if len(in.Dims) != 4 || (in.DType != onnx.Float32 && in.DType != onnx.Float16) {
		v.enc.Close()
		return nil, fmt.Errorf("pipeline: %s input %s, want float [batch, 3, height, width]", VAEEncoderPath, in)
	}
	if len(out.Dims) != 4 || (out.DType != onnx.Float32 && out.DType != onnx.Float16) {
		v.enc.Close()
		return nil, fmt.Errorf("pipeline: %s output %s, want float [batch, channels, height, width]", VAEEncoderPath, out)
	}
	c := int64(m.info.LatentChannels)
	if d := out.Dims[1]; d > 0 && d != c && d != 2*c {
		v.enc.Close()
		return nil, fmt.Errorf("pipeline: %s output %s has %d channels, want %d latent channels (or %d: mean and log-variance)", VAEEncoderPath, out, d, c, 2*c)
	} else if d == 2*c {
		v.params = true
	}
	return v, nil
}

func hasTensor(ts []onnx.TensorInfo, name string) bool {
	for _, t := range ts {
		if t.Name == name {
			return true
		}
	}
	return false
}

// Close releases the encoder.
func (v *VAE) Close() error {
	if v == nil || v.enc == nil {
		return nil
	}
	return v.enc.Close()
}

// Decode is Model.Decode with the VAE's DecodeOptions: latents [N, C, h, w]
// (as sampled, scaling factor included) to images [N, 3, h*s, w*s] in
// [-1, 1], s the VAE scale.
func (v *VAE) Decode(ctx context.Context, latents *tensor.Dense) (*tensor.Dense, error) {
	if v == nil {
		return nil, errNilModel
	}
	return v.m.Decode(ctx, latents, v.decode)
}

// Encode maps images [N, 3, H, W] with values in [-1, 1] (H and W
// multiples of the VAE scale) to latents [N, C, H/s, W/s] multiplied by the
// scaling factor, the space the UNet samples in, one image per encoder
// call. images is not modified.
//
// It tiles as Decode does, with the VAE's DecodeOptions (in latent pixels:
// tiles of TileSize*s image pixels, overlapping by at least Overlap*s):
// each image tile is encoded on its own and the latent tiles are blended
// with Decode's weights, so that the encoder's memory follows the tile
// size, not the image size (diffusers' enable_vae_tiling also tiles both
// ways). An encoder whose receptive field is narrower than a quarter of the
// overlap gives the whole-image result; with GroupNorm layers the tiles'
// statistics differ slightly.
func (v *VAE) Encode(ctx context.Context, images *tensor.Dense) (*tensor.Dense, error) {
	if v == nil || v.enc == nil {
		return nil, errors.New("pipeline: Encode on a closed or nil VAE")
	}
	info := &v.m.info
	vs, C := info.VAEScale, info.LatentChannels
	if images == nil || images.Dtype() != tensor.Float32 || images.Dims() != 4 {
		return nil, errors.New("pipeline: Encode: want float32 images [N, 3, H, W]")
	}
	s := images.Shape()
	N, H, W := s[0], s[2], s[3]
	if s[1] != 3 || N < 1 || H < vs || W < vs || H%vs != 0 || W%vs != 0 || len(images.Float32s()) != N*3*H*W {
		return nil, fmt.Errorf("pipeline: Encode: images have shape %v, want [N, 3, H, W] with H and W multiples of %d", []int(s), vs)
	}
	h, w := H/vs, W/vs
	plan, err := v.decode.plan(h, w, vs)
	if err != nil {
		return nil, err
	}
	oc := C
	if v.params {
		oc = 2 * C
	}
	th, tw := plan.th, plan.tw
	tiled := len(plan.ys)*len(plan.xs) > 1
	out := tensor.New(tensor.WithShape(N, C, h, w), tensor.Of(tensor.Float32))
	res := tensor.New(tensor.WithShape(1, oc, th, tw), tensor.Of(tensor.Float32))
	src, dst, rs := images.Float32s(), out.Float32s(), res.Float32s()
	scale := float32(info.ScalingFactor)
	var tile *tensor.Dense
	var wy, wx [][]float32
	if tiled {
		tile = tensor.New(tensor.WithShape(1, 3, th*vs, tw*vs), tensor.Of(tensor.Float32))
		wy, wx = axisWeights(plan.ys, th, h), axisWeights(plan.xs, tw, w)
	}
	for n := range N {
		img := src[n*3*H*W : (n+1)*3*H*W]
		d := dst[n*C*h*w : (n+1)*C*h*w]
		for iy, y0 := range plan.ys {
			for ix, x0 := range plan.xs {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				in := tile
				if tiled {
					TH, TW, py, px := th*vs, tw*vs, y0*vs, x0*vs
					ts := tile.Float32s()
					for c := range 3 {
						for y := range TH {
							copy(ts[(c*TH+y)*TW:(c*TH+y+1)*TW], img[(c*H+py+y)*W+px:(c*H+py+y)*W+px+TW])
						}
					}
				} else {
					in = tensor.New(tensor.WithShape(1, 3, H, W), tensor.WithBacking(img))
				}
				if err := v.enc.Run(ctx, map[string]*tensor.Dense{v.in: in}, map[string]*tensor.Dense{v.out: res}); err != nil {
					return nil, fmt.Errorf("pipeline: vae encoder on a %dx%d image (expecting a %dx%d latent: VAE scale %d): %w", tw*vs, th*vs, tw, th, vs, err)
				}
				for i := range rs[:C*th*tw] { // the mean comes first in latent_parameters
					rs[i] *= scale
				}
				if !tiled {
					copy(d, rs[:C*h*w])
					continue
				}
				blend(d, rs[:C*th*tw], C, wy[iy], wx[ix], y0, x0, h, w)
			}
		}
	}
	return out, nil
}

// Solver returns the sampler a run with these settings samples with, configured from the
// model's scheduler_config.json (Request.Sampler), for callers who drive
// their own sampling loop or upscaling stages.
func (p *Settings) Solver() sampler.Solver { return p.solver }
