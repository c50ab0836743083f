package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/metrics"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/tiling"
	"github.com/ugo-diffusion/ugo/upscale"
)

// The 14x14 protocol: a model trained on Fashion-MNIST area-downsampled to
// 14x14, sampled at 14 (native), 28 (2x) and 56 (4x), scored against the
// real 28x28 test images, which are a real high-resolution reference for it.
const (
	low  = 14 // the model's training size
	high = 28 // the real reference's size
)

// score is a statistic and its bootstrap interval.
type score struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// hiresResult is one row of the 14x14 protocol's table. Scores that do not
// apply to the row (the native 14x14 row has no 28x28 output) are nil.
type hiresResult struct {
	Name  string `json:"name"`
	Size  int    `json:"size"`
	N     int    `json:"n"`
	Steps int    `json:"steps,omitempty"`
	// FD28 is the Frechet distance at 28 (56x56 outputs area-downsampled)
	// against the 10,000 real test images, with the shipped classifier.
	FD28 *score `json:"fd28"`
	// KID28 is the KID of the same features.
	KID28 *score `json:"kid28"`
	// FDr14 is the Frechet distance of outputs and real images pooled to
	// 14x14, with the 14x14 classifier.
	FDr14 *score `json:"fdr14"`
	// CropFD is the Frechet distance of random 14x14 crops of the 28x28
	// outputs against crops of the real images, with the crop network.
	CropFD    *score  `json:"crop_fd"`
	SecPerImg float64 `json:"sec_per_image"`
	// Calls counts model evaluations per image by input size ("28x28": 50).
	Calls map[string]float64 `json:"calls_per_image,omitempty"`
}

// hiresSpec says how a row's images are made: by sampling (set), by
// resizing the native 14x14 samples (fromNative), or by resizing the real
// test images area-downsampled to 14x14 (fromReal).
type hiresSpec struct {
	name       string
	size       int
	set        *fashion.Setting
	fromNative bool
	fromReal   bool
	filter     resize.Strategy
}

type hiresConfig struct {
	model, cls28, cls14, crop14 string
	dataDir, out                string
	n2x, n4x                    int
	steps, batch, workers       int
	seed                        uint64
	resamples, crops            int
	only                        string
	opts                        []onnx.Option
}

// counter counts model evaluations (batch rows) per input size.
type counter struct {
	ugo.Denoiser
	mu    sync.Mutex
	calls map[string]*atomic.Int64
}

func (c *counter) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	s := x.Shape()
	key := fmt.Sprintf("%dx%d", s[len(s)-2], s[len(s)-1])
	c.mu.Lock()
	n, ok := c.calls[key]
	if !ok {
		n = new(atomic.Int64)
		c.calls[key] = n
	}
	c.mu.Unlock()
	n.Add(int64(s[0]))
	return c.Denoiser.PredictNoise(ctx, dst, x, t)
}

func (c *counter) take(images int) map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]float64{}
	for k, n := range c.calls {
		out[k] = float64(n.Load()) / float64(images)
	}
	c.calls = map[string]*atomic.Int64{}
	return out
}

// hiresEval holds the networks and the real reference statistics.
type hiresEval struct {
	cfg               hiresConfig
	model             *counter
	cls28, cls14, crp *classifier
	ref28, ref14, rc  *metrics.FrechetReference
	kid               *metrics.KIDReference
	real              []float32 // the real test images, 28x28
	nReal             int
}

func runHires(ctx context.Context, cfg hiresConfig) error {
	m, err := onnx.Open(cfg.model, cfg.opts...)
	if err != nil {
		return err
	}
	defer m.Close()
	h := &hiresEval{cfg: cfg, model: &counter{Denoiser: m, calls: map[string]*atomic.Int64{}}}
	for _, c := range []struct {
		path string
		dst  **classifier
		size int
	}{{cfg.cls28, &h.cls28, high}, {cfg.cls14, &h.cls14, low}, {cfg.crop14, &h.crp, low}} {
		cls, err := newClassifier(c.path, cfg.opts...)
		if err != nil {
			return err
		}
		defer cls.Close()
		if cls.size != c.size {
			return fmt.Errorf("%s: input is %dx%d, want %dx%d", c.path, cls.size, cls.size, c.size, c.size)
		}
		*c.dst = cls
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	if err := h.reference(ctx); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "reference statistics of %d real images: %.0f s\n", h.nReal, time.Since(t0).Seconds())

	specs := hiresSpecs()
	if cfg.only != "" {
		keep := map[string]bool{}
		for _, s := range strings.Split(cfg.only, ";") {
			keep[strings.TrimSpace(s)] = true
		}
		var sel []hiresSpec
		for _, s := range specs {
			if keep[s.name] || s.name == "14 native" {
				sel = append(sel, s)
				delete(keep, s.name)
			}
		}
		delete(keep, "14 native")
		if len(keep) > 0 {
			return fmt.Errorf("-only names unknown settings %v", keys(keep))
		}
		specs = sel
	}
	resultsPath := filepath.Join(cfg.out, "results.jsonl")
	done, err := loadHires(resultsPath)
	if err != nil {
		return err
	}
	nNative := max(cfg.n2x, cfg.n4x)
	var native []float32
	var nativeRow hiresResult
	var rows []hiresResult
	for _, sp := range specs {
		n := cfg.n2x
		if sp.size > high {
			n = cfg.n4x
		}
		if sp.name == "14 native" {
			n = nNative
		}
		if r, ok := done[key(sp.name, n)]; ok && sp.name != "14 native" {
			fmt.Fprintf(os.Stderr, "%-28s done before\n", sp.name)
			rows = append(rows, r)
			continue
		}
		var imgs []float32
		var secs float64
		var calls map[string]float64
		switch {
		case sp.set != nil:
			nativePath := filepath.Join(cfg.out, "native14.f32")
			if sp.name == "14 native" {
				if r, ok := done[key(sp.name, n)]; ok {
					if imgs, err = readFloats(nativePath, n*low*low); err == nil {
						secs, calls = r.SecPerImg, r.Calls
						break
					}
				}
			}
			if imgs, secs, calls, err = h.sample(ctx, *sp.set, n); err != nil {
				return err
			}
			if sp.name == "14 native" {
				if err := writeFloats(nativePath, imgs); err != nil {
					return err
				}
			}
		case sp.fromNative:
			t := time.Now()
			if imgs, err = resizeImages(sp.filter, native[:n*low*low], n, low, sp.size); err != nil {
				return err
			}
			secs = nativeRow.SecPerImg + time.Since(t).Seconds()/float64(n)
			calls = nativeRow.Calls
		case sp.fromReal:
			small := make([]float32, n*low*low)
			fashion.AreaDownsample(small, h.real[:n*high*high], n, high, high, high/low)
			t := time.Now()
			if imgs, err = resizeImages(sp.filter, small, n, low, sp.size); err != nil {
				return err
			}
			secs = time.Since(t).Seconds() / float64(n)
		}
		if err := writeGrid(cfg.out, sp.name, imgs, sp.size); err != nil {
			return err
		}
		r, err := h.score(ctx, imgs, n, sp.size)
		if err != nil {
			return fmt.Errorf("%s: %w", sp.name, err)
		}
		r.Name, r.SecPerImg, r.Calls = sp.name, secs, calls
		if sp.set != nil {
			r.Steps = cfg.steps
			if sp.set.Steps > 0 {
				r.Steps = sp.set.Steps
			}
		}
		if sp.name == "14 native" {
			native, nativeRow = imgs, r
		}
		fmt.Fprintf(os.Stderr, "%-28s N=%d FD28 %s FDr14 %s crop FD %s KID %s, %.3f s/image\n", r.Name, n,
			fmtScore(r.FD28), fmtScore(r.FDr14), fmtScore(r.CropFD), fmtScore(r.KID28), r.SecPerImg)
		if err := appendJSON(resultsPath, r); err != nil {
			return err
		}
		rows = append(rows, r)
	}
	table := hiresMarkdown(rows, cfg)
	fmt.Print(table)
	return os.WriteFile(filepath.Join(cfg.out, "table.md"), []byte(table), 0o644)
}

// demoFusionStages returns the stages of DemoFusion's progressive
// upscaling from the native size to size, doubling at each stage, with
// Upsample Guidance ug (nil: none) on the local path.
func demoFusionStages(size int, ug *guidance.UpsampleOptions) []upscale.Stage {
	stages := []upscale.Stage{upscale.Generate{Height: low, Width: low}}
	for s := 2 * low; s <= size; s *= 2 {
		st := upscale.DefaultDemoFusion(s, s)
		st.Upsample = ug
		stages = append(stages, st)
	}
	return stages
}

// hiresSpecs lists the rows of the 14x14 protocol.
func hiresSpecs() []hiresSpec {
	ug := func(theta float64) *guidance.UpsampleOptions { o := fashion.Guided(theta); return &o }
	ugAt := fashion.Guided(1)
	ugAt.Factors = nil // derived from the training size at each stage
	const r = 0.3      // SDEdit strength of the refinements
	set := func(s fashion.Setting) *fashion.Setting { return &s }
	specs := []hiresSpec{{name: "14 native", size: low, set: set(fashion.Setting{Name: "14 native", Size: low})}}
	for _, size := range []int{28, 56} {
		if size == 56 {
			// The real reference rows come before the costly 4x rows.
			for _, f := range []struct {
				name string
				s    resize.Strategy
			}{{"bilinear", resize.AntialiasBilinear}, {"bicubic", resize.Bicubic}, {"Lanczos", resize.Lanczos3}} {
				specs = append(specs, hiresSpec{name: "28 real 14→28, " + f.name, size: high, fromReal: true, filter: f.s})
			}
		}
		p := fmt.Sprint(size) + " "
		specs = append(specs,
			hiresSpec{name: p + "plain", size: size, set: set(fashion.Setting{Name: p + "plain", Size: size})},
			hiresSpec{name: p + "UG θ=1", size: size, set: set(fashion.Setting{Name: p + "UG θ=1", Size: size, Guide: ug(1)})},
			hiresSpec{name: p + "UG θ=1.5", size: size, set: set(fashion.Setting{Name: p + "UG θ=1.5", Size: size, Guide: ug(1.5)})},
		)
		if size == 56 {
			specs = append(specs, hiresSpec{name: p + "two-stage UG", size: size, set: set(fashion.Setting{Name: p + "two-stage UG", Size: size, Stages: []upscale.Stage{
				upscale.Generate{Height: 28, Width: 28, Upsample: &ugAt},
				upscale.Refine{Height: size, Width: size, Strength: r, Upsample: &ugAt}}})})
		}
		specs = append(specs,
			hiresSpec{name: p + "bicubic + SDEdit", size: size, set: set(fashion.Setting{Name: p + "bicubic + SDEdit", Size: size, Stages: []upscale.Stage{
				upscale.Generate{Height: low, Width: low},
				upscale.Refine{Height: size, Width: size, Strength: r}}})},
			hiresSpec{name: p + "SDEdit + LFM + SG", size: size, set: set(fashion.Setting{Name: p + "SDEdit + LFM + SG", Size: size, Stages: []upscale.Stage{
				upscale.Generate{Height: low, Width: low},
				upscale.Refine{Height: size, Width: size, Strength: r, Mix: &upscale.MixOptions{}, Structure: &guidance.StructureOptions{}}}})},
			hiresSpec{name: p + "UG θ=1, DPM++ 2M 20", size: size, set: set(fashion.Setting{Name: p + "UG θ=1, DPM++ 2M 20", Size: size, Guide: ug(1), Solver: "dpm++2m", Steps: 20})},
			// Tiles of the training size (14x14, overlap 3, linear blending).
			hiresSpec{name: p + "tiled", size: size, set: set(fashion.Setting{Name: p + "tiled", Size: size, Stages: []upscale.Stage{
				upscale.Generate{Height: size, Width: size, Tile: &tiling.Options{}}}})},
			hiresSpec{name: p + "tiled + UG θ=1", size: size, set: set(fashion.Setting{Name: p + "tiled + UG θ=1", Size: size, Stages: []upscale.Stage{
				upscale.Generate{Height: size, Width: size, Upsample: &ugAt, Tile: &tiling.Options{}}}})},
			hiresSpec{name: p + "tiled SDEdit + UG + LFM + SG", size: size, set: set(fashion.Setting{Name: p + "tiled SDEdit + UG + LFM + SG", Size: size, Stages: []upscale.Stage{
				upscale.Generate{Height: low, Width: low},
				upscale.Refine{Height: size, Width: size, Strength: r, Upsample: &ugAt, Mix: &upscale.MixOptions{}, Structure: &guidance.StructureOptions{}, Tile: &tiling.Options{}}}})},
			// DemoFusion's progressive upscaling from the native sample:
			// 14 -> 28 (-> 56), skip residual and dilated sampling at
			// the paper's weights, with or without UG on the whole canvas.
			hiresSpec{name: p + "DemoFusion", size: size, set: set(fashion.Setting{Name: p + "DemoFusion", Size: size, Stages: demoFusionStages(size, nil)})},
			hiresSpec{name: p + "DemoFusion + UG θ=1", size: size, set: set(fashion.Setting{Name: p + "DemoFusion + UG θ=1", Size: size, Stages: demoFusionStages(size, &ugAt)})},
			hiresSpec{name: p + "native, bicubic", size: size, fromNative: true, filter: resize.Bicubic},
			hiresSpec{name: p + "native, Lanczos", size: size, fromNative: true, filter: resize.Lanczos3},
		)
	}
	return specs
}

// reference computes the real test set's statistics: features at 28, at
// 14 (pooled) and of crops.
func (h *hiresEval) reference(ctx context.Context) error {
	real, n, ih, iw, err := fashion.ReadIDXImages(filepath.Join(h.cfg.dataDir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		return fmt.Errorf("%w (apt-get install dataset-fashion-mnist, or pass -data)", err)
	}
	if ih != high || iw != high {
		return fmt.Errorf("test images are %dx%d, want %dx%d", ih, iw, high, high)
	}
	if n < max(h.cfg.n2x, h.cfg.n4x) {
		return fmt.Errorf("%d test images, fewer than the %d per setting", n, max(h.cfg.n2x, h.cfg.n4x))
	}
	h.real, h.nReal = real, n
	f28, _, err := h.cls28.features(ctx, real, n)
	if err != nil {
		return err
	}
	if h.ref28, err = fitReference(f28, h.cls28.dim); err != nil {
		return err
	}
	if h.kid, err = metrics.NewKIDReference(f28, h.cls28.dim, metrics.KIDOptions{Subsets: 10, SubsetSize: 1000, Seed: 1}); err != nil {
		return err
	}
	small := make([]float32, n*low*low)
	fashion.AreaDownsample(small, real, n, high, high, high/low)
	f14, _, err := h.cls14.features(ctx, small, n)
	if err != nil {
		return err
	}
	if h.ref14, err = fitReference(f14, h.cls14.dim); err != nil {
		return err
	}
	fc, _, err := h.crp.features(ctx, crops(real, n, h.cfg.crops, h.cfg.seed+1<<40), n*h.cfg.crops)
	if err != nil {
		return err
	}
	h.rc, err = fitReference(fc, h.crp.dim)
	return err
}

func fitReference(f []float32, dim int) (*metrics.FrechetReference, error) {
	g, err := metrics.FitGaussian(f, dim)
	if err != nil {
		return nil, err
	}
	return metrics.NewFrechetReference(g)
}

// crops returns k random 14x14 crops of each of n 28x28 images; image i's
// crop offsets come from seed+i, so every row crops the same places.
func crops(imgs []float32, n, k int, seed uint64) []float32 {
	out := make([]float32, 0, n*k*low*low)
	for i := 0; i < n; i++ {
		rng := rand.New(rand.NewPCG(seed+uint64(i), 0x63726f70))
		img := imgs[i*high*high : (i+1)*high*high]
		for c := 0; c < k; c++ {
			oy, ox := rng.IntN(high-low+1), rng.IntN(high-low+1)
			for y := 0; y < low; y++ {
				out = append(out, img[(oy+y)*high+ox:(oy+y)*high+ox+low]...)
			}
		}
	}
	return out
}

// sample draws n images of set with cfg.workers concurrent batches and
// returns them with the wall-clock seconds and model calls per image.
func (h *hiresEval) sample(ctx context.Context, set fashion.Setting, n int) ([]float32, float64, map[string]float64, error) {
	per := set.Size * set.Size
	imgs := make([]float32, n*per)
	var finished atomic.Int64
	h.model.take(1) // reset
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(h.cfg.workers)
	for start := 0; start < n; start += h.cfg.batch {
		nb := min(h.cfg.batch, n-start)
		g.Go(func() error {
			smp := &fashion.Sampler{Model: h.model, Steps: h.cfg.steps, Trained: low}
			x, err := smp.Sample(gctx, set, fashion.Seeds(h.cfg.seed+uint64(start), nb), start)
			if err != nil {
				return err
			}
			copy(imgs[start*per:(start+nb)*per], x.Float32s())
			fmt.Fprintf(os.Stderr, "\r%-28s %4d/%d images", set.Name, finished.Add(int64(nb)), n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, nil, err
	}
	fmt.Fprintln(os.Stderr)
	return imgs, time.Since(t0).Seconds() / float64(n), h.model.take(n), nil
}

// score computes a row's scores with bootstrap intervals over its images.
func (h *hiresEval) score(ctx context.Context, imgs []float32, n, size int) (hiresResult, error) {
	r := hiresResult{Size: size, N: n}
	bo := metrics.BootstrapOptions{Resamples: h.cfg.resamples, Seed: 2, Method: metrics.Normal}
	small := make([]float32, n*low*low)
	fashion.AreaDownsample(small, imgs, n, size, size, size/low)
	f14, _, err := h.cls14.features(ctx, small, n)
	if err != nil {
		return r, err
	}
	if r.FDr14, err = fdScore(f14, h.cls14.dim, n, 1, h.ref14, bo); err != nil {
		return r, err
	}
	if size < high {
		return r, nil
	}
	at28 := imgs
	if size > high {
		at28 = make([]float32, n*high*high)
		fashion.AreaDownsample(at28, imgs, n, size, size, size/high)
	}
	f28, _, err := h.cls28.features(ctx, at28, n)
	if err != nil {
		return r, err
	}
	if r.FD28, err = fdScore(f28, h.cls28.dim, n, 1, h.ref28, bo); err != nil {
		return r, err
	}
	ks, err := h.kid.Prepare(f28)
	if err != nil {
		return r, err
	}
	iv, err := metrics.Bootstrap(n, bo, func(w []float64) (float64, error) { v, _, err := ks.KID(w); return v, err })
	if err != nil {
		return r, err
	}
	r.KID28 = &score{iv.Estimate, iv.Lo, iv.Hi}
	k := h.cfg.crops
	fc, _, err := h.crp.features(ctx, crops(at28, n, k, h.cfg.seed+1<<40), n*k)
	if err != nil {
		return r, err
	}
	r.CropFD, err = fdScore(fc, h.crp.dim, n, k, h.rc, bo)
	return r, err
}

// fdScore returns the Frechet distance of n*k feature vectors (k per image)
// against ref, with a bootstrap interval over the n images.
func fdScore(f []float32, dim, n, k int, ref *metrics.FrechetReference, bo metrics.BootstrapOptions) (*score, error) {
	wk := make([]float64, n*k)
	fd := func(w []float64) (float64, error) {
		for i, c := range w {
			for j := 0; j < k; j++ {
				wk[i*k+j] = c
			}
		}
		g, err := metrics.FitGaussianWeighted(f, dim, wk)
		if err != nil {
			return 0, err
		}
		return ref.Distance(g)
	}
	iv, err := metrics.Bootstrap(n, bo, fd)
	if err != nil {
		return nil, err
	}
	return &score{iv.Estimate, iv.Lo, iv.Hi}, nil
}

func resizeImages(s resize.Strategy, src []float32, n, from, to int) ([]float32, error) {
	p, err := s.Plan(to, to, from, from)
	if err != nil {
		return nil, err
	}
	dst := make([]float32, n*to*to)
	p.Scale(dst, src)
	return dst, nil
}

func writeGrid(out, name string, imgs []float32, size int) error {
	n := min(16, len(imgs)/(size*size))
	x := tensor.New(tensor.WithShape(n, 1, size, size), tensor.WithBacking(imgs[:n*size*size]))
	return picture.WriteGrid(filepath.Join(out, fileName(name)+".png"), x, 8, 2)
}

func fileName(name string) string {
	return strings.NewReplacer(" ", "_", "=", "", ",", "", ".", "", "θ", "theta", "+", "", "→", "to", "__", "_").Replace(name)
}

func writeFloats(path string, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return os.WriteFile(path, b, 0o644)
}

func readFloats(path string, n int) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d", path, len(b), 4*n)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

func loadHires(path string) (map[string]hiresResult, error) {
	done := map[string]hiresResult{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r hiresResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		done[key(r.Name, r.N)] = r
	}
	return done, nil
}

func appendJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func fmtScore(s *score) string {
	if s == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f [%.1f, %.1f]", s.Value, s.Lo, s.Hi)
}

func fmtCalls(c map[string]float64) string {
	if len(c) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range []string{"56x56", "28x28", "14x14"} {
		if v, ok := c[k]; ok {
			parts = append(parts, fmt.Sprintf("%.0f @%s", v, strings.SplitN(k, "x", 2)[0]))
		}
	}
	return strings.Join(parts, " + ")
}

func hiresMarkdown(rows []hiresResult, cfg hiresConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| setting | N | FD at 28 | KID at 28 | FD_r at 14 | crop FD | model calls / image | s / image |\n")
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %.3f |\n", r.Name, r.N, fmtScore(r.FD28), fmtScore(r.KID28),
			fmtScore(r.FDr14), fmtScore(r.CropFD), fmtCalls(r.Calls), r.SecPerImg)
	}
	fmt.Fprintf(&b, "\nModel trained at 14x14; DDIM %d steps unless the row names another sampler (eta 0, x0 clipped, UG with the block-wise clamp), SDEdit strength 0.3 (bicubic reference); image i of every row starts from seed %d+i. N = %d at 14 and 28, %d at 56. Scores against the 10,000 real 28x28 test images (the real rows resample the first N of them, so they are part of the reference); [lo, hi] are 95%% intervals, the estimate -+ 1.96 bootstrap standard errors over the N images (%d resamples); KID averages 10 subsets of 1,000 real images; %d random 14x14 crops per image for crop FD.\n",
		cfg.steps, cfg.seed, cfg.n2x, cfg.n4x, cfg.resamples, cfg.crops)
	return b.String()
}
