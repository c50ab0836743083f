package pipeline

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// Tiling chooses between whole-image and tiled VAE decoding.
type Tiling int

const (
	// TileAuto decodes images of up to DecodeOptions.MaxWholePixels pixels
	// whole and larger ones in tiles. It is the default.
	TileAuto Tiling = iota
	// TileAlways decodes in tiles whenever the latent is larger than one tile.
	TileAlways
	// TileNever decodes every image in one VAE call.
	TileNever
)

// Defaults of DecodeOptions fields left at zero.
const (
	// DefaultTileSize is the tile side in latent pixels (512 image pixels
	// for SD, the size its VAE was trained on).
	DefaultTileSize = 64
	// DefaultTileOverlap is the overlap of neighbouring tiles in latent
	// pixels (128 image pixels), as in diffusers' tiled VAE decoding.
	DefaultTileOverlap = 16
	// DefaultMaxWholePixels is the largest image TileAuto decodes whole.
	DefaultMaxWholePixels = 1024 * 1024
)

// DecodeOptions configures VAE decoding.
//
// Tiled decoding splits the latent into overlapping tiles of TileSize
// latent pixels, evenly spread so that neighbours share at least Overlap,
// decodes each on its own and blends them: inside each shared band a tile's
// weight is 0 over the quarter of the band nearest its own edge (where its
// convolutions saw zero padding instead of the neighbour's content), rises
// linearly over the middle half and is 1 over the far quarter, and the
// weights of the tiles covering a pixel sum to 1. Peak memory then follows
// the tile size, not the image size. For a decoder whose receptive field is
// narrower than a quarter of the overlap (32 image pixels with the defaults)
// the result equals whole-image decoding; Stable Diffusion's VAE decoder has
// GroupNorm layers, whose statistics differ per tile, and a mid-block
// attention over the whole latent, so its tiles differ slightly in tone and
// long-range coherence, which the blending keeps free of visible seams (as
// in diffusers' enable_vae_tiling).
type DecodeOptions struct {
	// Tiling chooses whole or tiled decoding (default TileAuto).
	Tiling Tiling
	// TileSize is the tile side in latent pixels (default DefaultTileSize).
	TileSize int
	// Overlap is the minimum overlap of neighbouring tiles in latent pixels
	// (default DefaultTileOverlap); at most TileSize/2.
	Overlap int
	// MaxWholePixels is the largest image, in pixels, that TileAuto decodes
	// whole (default DefaultMaxWholePixels).
	MaxWholePixels int

	progress func(Progress) error
}

// tilePlan is the tile grid of one image, in latent pixels.
type tilePlan struct {
	ys, xs []int // tile starts
	th, tw int   // tile size
}

// plan returns the tile grid for an h x w latent (vs image pixels per latent
// pixel); a whole-image decode is one tile.
func (o DecodeOptions) plan(h, w, vs int) (tilePlan, error) {
	T, O, maxPix := o.TileSize, o.Overlap, o.MaxWholePixels
	if T == 0 {
		T = DefaultTileSize
	}
	if O == 0 {
		O = DefaultTileOverlap
	}
	if maxPix == 0 {
		maxPix = DefaultMaxWholePixels
	}
	if T < 2 || O < 0 || 2*O > T {
		return tilePlan{}, fmt.Errorf("pipeline: tile size %d and overlap %d: want size >= 2 and 0 <= overlap <= size/2", T, O)
	}
	whole := tilePlan{ys: []int{0}, xs: []int{0}, th: h, tw: w}
	switch o.Tiling {
	case TileNever:
		return whole, nil
	case TileAuto:
		if h*vs*w*vs <= maxPix {
			return whole, nil
		}
	case TileAlways:
	default:
		return tilePlan{}, fmt.Errorf("pipeline: unknown tiling mode %d", int(o.Tiling))
	}
	p := tilePlan{th: min(T, h), tw: min(T, w)}
	p.ys = tileStarts(h, T, O)
	p.xs = tileStarts(w, T, O)
	return p, nil
}

// tileStarts spreads tiles of size T over L so that neighbours overlap by
// at least O: n = ceil((L-O)/(T-O)) tiles at evenly rounded positions.
func tileStarts(L, T, O int) []int {
	if L <= T {
		return []int{0}
	}
	n := (L - O + T - O - 1) / (T - O)
	starts := make([]int, n)
	for i := range starts {
		starts[i] = (i*(L-T)*2 + (n - 1)) / (2 * (n - 1)) // round(i*(L-T)/(n-1))
	}
	return starts
}

// axisWeights returns, for each tile along an axis of total pixels P (tiles
// of size S pixels at the given pixel starts), its blending weights, which
// sum to 1 at every pixel.
func axisWeights(starts []int, S, P int) [][]float32 {
	n := len(starts)
	w := make([][]float32, n)
	sum := make([]float64, P)
	ramp := func(p, a, b int, rising bool) float64 {
		// Overlap band [a, b): zero over the quarter nearest the tile's own
		// edge, linear over the middle half, one over the far quarter.
		m := (b - a) / 4
		width := float64(b - a - 2*m)
		var v float64
		if rising {
			v = (float64(p-(a+m)) + 0.5) / width
		} else {
			v = (float64((b-m)-p) - 0.5) / width
		}
		return min(1, max(0, v))
	}
	for i, s := range starts {
		w[i] = make([]float32, S)
		for k := range S {
			p := s + k
			v := 1.0
			if i > 0 && p < starts[i-1]+S {
				v *= ramp(p, s, starts[i-1]+S, true)
			}
			if i+1 < n && p >= starts[i+1] {
				v *= ramp(p, starts[i+1], s+S, false)
			}
			w[i][k] = float32(v)
			sum[p] += v
		}
	}
	for i, s := range starts {
		for k := range S {
			p := s + k
			if sum[p] > 0 {
				w[i][k] = float32(float64(w[i][k]) / sum[p])
				continue
			}
			// Only reachable when three tiles overlap: share equally.
			c := 0
			for _, s2 := range starts {
				if p >= s2 && p < s2+S {
					c++
				}
			}
			w[i][k] = 1 / float32(c)
		}
	}
	return w
}

// Decode turns sampled latents [N, C, h, w] into images [N, 3, h*s, w*s] (s the VAE scale)
// with values nominally in [-1, 1]: it divides them by the VAE scaling
// factor and runs the VAE decoder on each image, whole or in blended tiles
// as opts say. latents is not modified.
func (m *Model) Decode(ctx context.Context, latents *tensor.Dense, opts DecodeOptions) (*tensor.Dense, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	if _, err := ugo.CheckDense("latents", latents, 4); err != nil {
		return nil, fmt.Errorf("pipeline: Decode: want float32 latents [N, %d, h, w]: %w", m.info.LatentChannels, err)
	}
	if latents.Dims() != 4 {
		return nil, fmt.Errorf("pipeline: Decode: want float32 latents [N, %d, h, w]", m.info.LatentChannels)
	}
	s := latents.Shape()
	N, C, h, w := s[0], s[1], s[2], s[3]
	if C != m.info.LatentChannels || N < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("pipeline: Decode: latents have shape %v, want [N, %d, h, w]", []int(s), m.info.LatentChannels)
	}
	vs := m.info.VAEScale
	plan, err := opts.plan(h, w, vs)
	if err != nil {
		return nil, err
	}
	H, W := h*vs, w*vs
	out := tensor.New(tensor.WithShape(N, 3, H, W), tensor.Of(tensor.Float32))
	lat := latents.Float32s()
	inv := float32(1 / m.info.ScalingFactor)
	th, tw := plan.th, plan.tw
	in := tensor.New(tensor.WithShape(1, C, th, tw), tensor.Of(tensor.Float32))
	inData := in.Float32s()
	tiled := len(plan.ys)*len(plan.xs) > 1
	var tile *tensor.Dense
	var wy, wx [][]float32
	if tiled {
		tile = tensor.New(tensor.WithShape(1, 3, th*vs, tw*vs), tensor.Of(tensor.Float32))
		pys, pxs := make([]int, len(plan.ys)), make([]int, len(plan.xs))
		for i, y := range plan.ys {
			pys[i] = y * vs
		}
		for i, x := range plan.xs {
			pxs[i] = x * vs
		}
		wy, wx = axisWeights(pys, th*vs, H), axisWeights(pxs, tw*vs, W)
	}
	total, done := N*len(plan.ys)*len(plan.xs), 0
	outData := out.Float32s()
	for n := range N {
		img := lat[n*C*h*w : (n+1)*C*h*w]
		dst := outData[n*3*H*W : (n+1)*3*H*W]
		for iy, y0 := range plan.ys {
			for ix, x0 := range plan.xs {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				for c := range C {
					for y := range th {
						src := img[(c*h+y0+y)*w+x0 : (c*h+y0+y)*w+x0+tw]
						row := inData[(c*th+y)*tw : (c*th+y+1)*tw]
						for x, v := range src {
							row[x] = v * inv
						}
					}
				}
				target := tile
				if !tiled {
					target = tensor.New(tensor.WithShape(1, 3, H, W), tensor.WithBacking(dst))
				}
				if err := m.vae.Run(ctx, map[string]*tensor.Dense{m.vaeIn: in}, map[string]*tensor.Dense{m.vaeOut: target}); err != nil {
					return nil, fmt.Errorf("pipeline: vae decoder on a %dx%d latent (expecting a %dx%d image: VAE scale %d): %w",
						tw, th, tw*vs, th*vs, vs, err)
				}
				if tiled {
					blend(dst, tile.Float32s(), 3, wy[iy], wx[ix], y0*vs, x0*vs, H, W)
				}
				done++
				if opts.progress != nil {
					if err := opts.progress(Progress{Stage: StageDecode, Done: done, Total: total}); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

// blend adds the weighted tile (channels x TH x TW) into dst (channels x H
// x W) at (py, px).
func blend(dst, tile []float32, channels int, wy, wx []float32, py, px, H, W int) {
	TH, TW := len(wy), len(wx)
	for c := range channels {
		for y := range TH {
			wr := wy[y]
			if wr == 0 {
				continue
			}
			d := dst[(c*H+py+y)*W+px : (c*H+py+y)*W+px+TW]
			t := tile[(c*TH+y)*TW : (c*TH+y+1)*TW]
			for x, v := range t {
				d[x] += wr * wx[x] * v
			}
		}
	}
}
