package ugo

import (
	"context"
	"errors"
	"fmt"
)

// Region says which part of the sample a sampler draws a model call covers,
// and at what scale. Middleware that calls the model it wraps on something
// other than the whole sample puts a Region on the call's context
// (WithRegion): Upsample Guidance's low-resolution branch covers the whole
// sample downsampled by its factors, a tiled denoiser's call covers one tile
// at full scale. Most backends ignore it; a backend whose model takes inputs
// that depend on the picture's geometry reads it (RegionOf). SDXL's UNet is
// one: its time_ids hold the original size, the crop's top-left corner and
// the target size, in pixels.
//
// All three fields are (H, W) pairs in the units of the sample the sampler
// draws: latent pixels for a latent model. A frame axis (video) is not
// described. A context without a Region means the call covers the whole
// sample at full scale (WholeRegion of x's H and W).
type Region struct {
	// Size is the spatial size (H, W) of the full sample the sampler
	// draws.
	Size [2]int
	// Offset is the top-left corner (y, x) of the call's input within the
	// full sample.
	Offset [2]int
	// Scale is how much the call's input is downsampled relative to the
	// full sample, per axis: one input pixel stands for Scale[0] x Scale[1]
	// sample pixels. Upsample Guidance's low-resolution branch has its
	// factors here; a call at full scale has [1, 1]. WithRegion and
	// RegionFrom read a zero component as 1.
	Scale [2]int
}

// ErrRegion is wrapped by the errors Region.Check returns.
var ErrRegion = errors.New("invalid region")

// WholeRegion returns the Region of a call that covers a whole h x w
// sample at full scale: Size (h, w), Offset (0, 0), Scale (1, 1).
func WholeRegion(h, w int) Region {
	return Region{Size: [2]int{h, w}, Scale: [2]int{1, 1}}
}

// Downscaled returns the Region of a call whose input is r's input
// downsampled by fh along H and fw along W (average pooling by integer
// factors, as Upsample Guidance does): Scale multiplied by (fh, fw), Size
// and Offset unchanged.
func (r Region) Downscaled(fh, fw int) Region {
	r = r.normal()
	r.Scale[0] *= fh
	r.Scale[1] *= fw
	return r
}

// Window returns the Region of a call whose input is the part of r's input
// that starts at row y, column x of that input (a tile): Offset moves by
// (y, x) times Scale, Size and Scale unchanged.
func (r Region) Window(y, x int) Region {
	r = r.normal()
	r.Offset[0] += y * r.Scale[0]
	r.Offset[1] += x * r.Scale[1]
	return r
}

// Check reports whether r is a valid Region for a call whose input has
// spatial size h x w: a positive Size, a non-negative Offset, a Scale of at
// least 1 (zero reads as 1), and the input's footprint, Offset + (h, w) *
// Scale, inside Size. The error wraps ErrRegion.
func (r Region) Check(h, w int) error {
	r = r.normal()
	for i, name := range [2]string{"H", "W"} {
		in := [2]int{h, w}[i]
		switch {
		case r.Size[i] <= 0:
			return fmt.Errorf("ugo: %w: size %v, want positive H and W", ErrRegion, r.Size)
		case r.Offset[i] < 0:
			return fmt.Errorf("ugo: %w: offset %v, want non-negative y and x", ErrRegion, r.Offset)
		case r.Scale[i] < 1:
			return fmt.Errorf("ugo: %w: scale %v, want factors of at least 1", ErrRegion, r.Scale)
		case in <= 0:
			return fmt.Errorf("ugo: %w: input %dx%d, want positive H and W", ErrRegion, h, w)
		case in > (r.Size[i]-r.Offset[i])/r.Scale[i]:
			return fmt.Errorf("ugo: %w: an input of %dx%d at offset %v and scale %v reaches past the %s of a %v sample", ErrRegion, h, w, r.Offset, r.Scale, name, r.Size)
		}
	}
	return nil
}

// normal returns r with zero Scale components read as 1.
func (r Region) normal() Region {
	for i := range r.Scale {
		if r.Scale[i] == 0 {
			r.Scale[i] = 1
		}
	}
	return r
}

type regionKey struct{}

// WithRegion returns a copy of ctx that carries r (zero Scale components
// stored as 1), replacing any Region ctx already carries. Middleware that
// narrows or downsamples a call composes with the Region it was given:
// RegionOf(ctx, h, w).Downscaled(...) or .Window(...). WithRegion
// allocates; middleware that must not allocate per call reuses a
// RegionContext instead.
func WithRegion(ctx context.Context, r Region) context.Context {
	r = r.normal()
	return context.WithValue(ctx, regionKey{}, &r)
}

// RegionFrom returns the Region ctx carries and whether it carries one. It
// does not allocate.
func RegionFrom(ctx context.Context) (Region, bool) {
	if p, ok := ctx.Value(regionKey{}).(*Region); ok {
		return p.normal(), true
	}
	return Region{}, false
}

// RegionOf returns the Region of a call whose input has spatial size h x
// w: the one ctx carries, or WholeRegion(h, w) when it carries none.
func RegionOf(ctx context.Context, h, w int) Region {
	if r, ok := RegionFrom(ctx); ok {
		return r
	}
	return WholeRegion(h, w)
}

// RegionContext is a context that carries Region on top of its parent
// Context, for middleware that puts a Region on every model call without
// allocating: keep one per workspace, set both fields before each call and
// pass &rc as the call's context. It must not be changed while a call that
// received it runs. Cancellation, deadline and other values are the
// parent's.
type RegionContext struct {
	context.Context
	// Region is what RegionFrom returns for this context.
	Region Region
}

// Value returns &c.Region for the key RegionFrom looks up, and the
// parent's value for any other key.
func (c *RegionContext) Value(key any) any {
	if _, ok := key.(regionKey); ok {
		return &c.Region
	}
	return c.Context.Value(key)
}
