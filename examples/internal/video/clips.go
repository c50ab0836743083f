// Package video holds what the video example program and its evaluation
// share: synthetic Fashion-MNIST clips (the training data of the shipped
// video model, made the same way as tools/video/clips.py), batched DDIM
// sampling of N,1,F,H,W clips with or without Upsample Guidance over frames
// and pixels, and the temporal-consistency measures (classifier labels
// across frames, frame-to-frame differences).
package video

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Motion is a smooth affine motion over a clip: the start and end of the
// translation (DX, DY in pixels), rotation (Angle, radians) and Scale. Frame
// f of F sits at s = f/(F-1) of the way (F = 1: s = 0), so a 16-frame clip
// covers the motion of an 8-frame clip at half the speed per frame.
type Motion struct {
	Start, End Pose
}

// Pose is one frame's transform: output point q = Scale * R(Angle) p + (DX, DY)
// about the image centre.
type Pose struct {
	DX, DY, Angle, Scale float64
}

// Kinds are the motion types of the training clips.
var Kinds = []string{"translate", "rotate", "zoom", "translate+rotate", "zoom+rotate"}

// DrawMotion draws a motion of Kinds[kind] with tools/video/clips.py's
// ranges: a translation of 3-7 pixels in all, centred; a rotation of 20-50
// degrees either way, centred; a zoom between 0.75-0.85 and 1.0-1.1, in or out.
func DrawMotion(rng *rand.Rand, kind int) Motion {
	m := Motion{Start: Pose{Scale: 1}, End: Pose{Scale: 1}}
	name := Kinds[kind]
	if name == "translate" || name == "translate+rotate" {
		d := 3 + 4*rng.Float64()
		phi := 2 * math.Pi * rng.Float64()
		vx, vy := d*math.Cos(phi), d*math.Sin(phi)
		m.Start.DX, m.Start.DY, m.End.DX, m.End.DY = -vx/2, -vy/2, vx/2, vy/2
	}
	if name == "rotate" || name == "translate+rotate" || name == "zoom+rotate" {
		a := (20 + 30*rng.Float64()) * math.Pi / 180
		if rng.IntN(2) == 0 {
			a = -a
		}
		m.Start.Angle, m.End.Angle = -a/2, a/2
	}
	if name == "zoom" || name == "zoom+rotate" {
		lo, hi := 0.75+0.1*rng.Float64(), 1+0.1*rng.Float64()
		if rng.IntN(2) == 0 {
			lo, hi = hi, lo
		}
		m.Start.Scale, m.End.Scale = lo, hi
	}
	return m
}

// At returns the pose at s in [0, 1].
func (m Motion) At(s float64) Pose {
	lerp := func(a, b float64) float64 { return a + (b-a)*s }
	return Pose{lerp(m.Start.DX, m.End.DX), lerp(m.Start.DY, m.End.DY), lerp(m.Start.Angle, m.End.Angle), lerp(m.Start.Scale, m.End.Scale)}
}

// Render writes the frames of img (h x w, values in [-1, 1]) under motion m
// into dst (frames x h x w): bilinear sampling as torch's grid_sample with
// align_corners=False over an affine_grid, where what the motion uncovers is
// background, -1. It returns an error when the lengths do not fit.
func Render(dst, img []float32, h, w, frames int, m Motion) error {
	if h <= 0 || w <= 0 || frames <= 0 || len(img) != h*w || len(dst) != frames*h*w {
		return fmt.Errorf("video: render %d frames of %dx%d: image %d values, dst %d", frames, h, w, len(img), len(dst))
	}
	for f := range frames {
		s := 0.0
		if frames > 1 {
			s = float64(f) / float64(frames-1)
		}
		p := m.At(s)
		// Inverse map in normalised coordinates: p = R(-a) (q - t) / scale.
		c, sn := math.Cos(p.Angle)/p.Scale, math.Sin(p.Angle)/p.Scale
		tx, ty := p.DX*2/float64(w), p.DY*2/float64(h)
		out := dst[f*h*w : (f+1)*h*w]
		for i := range h {
			yn := (2*float64(i)+1)/float64(h) - 1
			for j := range w {
				xn := (2*float64(j)+1)/float64(w) - 1
				u := c*(xn-tx) + sn*(yn-ty)
				v := -sn*(xn-tx) + c*(yn-ty)
				out[i*w+j] = bilinear(img, h, w, ((u+1)*float64(w)-1)/2, ((v+1)*float64(h)-1)/2)
			}
		}
	}
	return nil
}

// bilinear samples img+1 at pixel coordinates (x, y) with zeros outside and
// returns the value minus 1, so that outside is -1.
func bilinear(img []float32, h, w int, x, y float64) float32 {
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	at := func(yy, xx int) float64 {
		if yy < 0 || yy >= h || xx < 0 || xx >= w {
			return 0
		}
		return float64(img[yy*w+xx]) + 1
	}
	ix, iy := int(x0), int(y0)
	v := (1-fy)*((1-fx)*at(iy, ix)+fx*at(iy, ix+1)) + fy*((1-fx)*at(iy+1, ix)+fx*at(iy+1, ix+1))
	return float32(v - 1)
}

// Clips makes n clips of the given frame count (N,1,F,h,w values, clip by
// clip) from random images of images (count x h x w in [-1, 1]) with
// random motion kinds, reproducibly from seed. Half the images are
// mirrored, as in training.
func Clips(images []float32, count, h, w, n, frames int, seed uint64) ([]float32, error) {
	if count <= 0 || len(images) != count*h*w {
		return nil, fmt.Errorf("video: %d values for %d images of %dx%d", len(images), count, h, w)
	}
	rng := rand.New(rand.NewPCG(seed, 0x636c6970))
	per := frames * h * w
	out := make([]float32, n*per)
	img := make([]float32, h*w)
	for k := range n {
		src := images[rng.IntN(count)*h*w:][:h*w]
		if rng.IntN(2) == 0 {
			copy(img, src)
		} else {
			for i := range h {
				for j := range w {
					img[i*w+j] = src[i*w+w-1-j]
				}
			}
		}
		if err := Render(out[k*per:(k+1)*per], img, h, w, frames, DrawMotion(rng, rng.IntN(len(Kinds)))); err != nil {
			return nil, err
		}
	}
	return out, nil
}
