// Command eval measures sample quality on Fashion-MNIST, in two protocols.
//
// -protocol 14 (the default, make eval) has a real high-resolution
// reference: a model trained on the images area-downsampled to 14x14
// (testdata/models/fashion14_unet.onnx) is sampled at 14 (native), 28 (2x)
// and 56 (4x) with every method (plain, Upsample Guidance, two-stage UG,
// SDEdit refinement with and without LFM and Structure Guidance, a fast
// sampler, and the native samples resized by bicubic and Lanczos), and
// scored against the 10,000 real 28x28 test images: Frechet distance and
// KID at 28, FD_r at 14 (structure) and crop FD of 14x14 crops (detail),
// each with a bootstrap 95% interval, plus seconds and model calls per image.
//
// -protocol 28 is the structural table of the shipped 28x28 model: for each
// setting it draws N images with DDIM from fixed seeds, downsamples them to
// the trained 28x28 and reports the Frechet distance of classifier features
// against the real test set, the mean top-class confidence and seconds per
// image. Above 28 there is no real reference for that model.
//
// -protocol 28 -flow MODEL replaces that table by the comparison of the
// rectified-flow model (testdata/models/fashion_flow_unet.onnx, sampled
// with FlowMatchEuler) with the eps model at the same number of model
// calls (-steps of each sampler), native, plain and guided at 2x and 4x,
// with bootstrap intervals on the Frechet distances.
//
//	go run ./examples/eval -out out/eval                  # the 14x14 protocol (make eval)
//	go run ./examples/eval -protocol 28 -out out/eval28   # the 28x28 model (make eval28)
//	go run ./examples/eval -protocol 28 -n56 100 -n112 50 -only "28 native;56 UG θ=1"
//	go run ./examples/eval -protocol 28 -flow testdata/models/fashion_flow_unet.onnx -steps 25 -out out/evalflow
//
// Finished settings are appended to results.jsonl in the output folder, and a
// rerun skips them, so an interrupted run resumes where it stopped.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/metrics"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/superres"
	"github.com/ugo-diffusion/ugo/upscale"
)

// result is one row of the table.
type result struct {
	Name       string  `json:"name"`
	Size       int     `json:"size"`
	N          int     `json:"n"`
	FD         float64 `json:"fd"`
	Confidence float64 `json:"confidence"`
	SecPerImg  float64 `json:"sec_per_image"`
	// FDNative is the Frechet distance of the first N native 28x28 samples
	// (same seeds), the reference this row is compared with.
	FDNative float64 `json:"fd_native"`
	// Steps is the number of sampling steps (0 in results written before
	// it was recorded: the -steps of that run).
	Steps int `json:"steps,omitempty"`
	// FDLo and FDHi bound the 95% bootstrap interval of FD (-flow rows;
	// 0 where not computed).
	FDLo float64 `json:"fd_lo,omitempty"`
	FDHi float64 `json:"fd_hi,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
}

// evalFlags are the program's settings.
type evalFlags struct {
	protocol                   int
	model, cls, sr, data, out  string
	cls14, crop14              string
	n56, n112, steps, batch    int
	n2x, n4x, resamples, crops int
	seed                       uint64
	threads, workers           int
	only, sweep, samplers      string
	flow                       string
}

// parseFlags reads and checks the flags before any model is loaded: a
// -sweep or -samplers value that sweepSettings would refuse after minutes of
// reference statistics is refused here.
func parseFlags(args []string, stderr io.Writer) (*evalFlags, error) {
	f := &evalFlags{}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.protocol, "protocol", 14, "14: the 14x14 model against the real 28x28 images; 28: the shipped 28x28 model's structural table")
	fs.StringVar(&f.model, "model", "", "ONNX eps-prediction model (default: testdata/models/fashion14_unet.onnx, or fashion_unet.onnx with -protocol 28)")
	fs.StringVar(&f.cls, "classifier", "", "ONNX 28x28 classifier with outputs logits and features (default: testdata/models/fashion_classifier.onnx)")
	fs.StringVar(&f.cls14, "classifier14", "", "-protocol 14: ONNX 14x14 classifier of pooled images, for FD_r (default: testdata/models/fashion14_classifier.onnx)")
	fs.StringVar(&f.crop14, "crop14", "", "-protocol 14: ONNX network of 14x14 crops, for crop FD (default: testdata/models/fashion_crop14.onnx)")
	fs.IntVar(&f.n2x, "n2x", 300, "-protocol 14: images per setting at 14x14 and 28x28")
	fs.IntVar(&f.n4x, "n4x", 100, "-protocol 14: images per setting at 56x56")
	fs.IntVar(&f.resamples, "resamples", 200, "-protocol 14: bootstrap resamples per score")
	fs.IntVar(&f.crops, "crops", 2, "-protocol 14: random 14x14 crops per image for crop FD")
	fs.StringVar(&f.sr, "esrgan", "", "-protocol 28: ONNX 4x super-resolution model of the ESRGAN settings, NHWC RGB in [0, 255] (default: testdata/models/esrgan_slim_x4.onnx)")
	fs.StringVar(&f.data, "data", "/usr/share/datasets/fashion-mnist", "folder with t10k-images-idx3-ubyte.gz (Debian package dataset-fashion-mnist)")
	fs.StringVar(&f.out, "out", "out/eval", "output folder: results.jsonl, table.md, sample grids")
	fs.IntVar(&f.n56, "n56", 500, "-protocol 28: images per setting at 28x28 and 56x56")
	fs.IntVar(&f.n112, "n112", 200, "-protocol 28: images per setting at 112x112")
	fs.IntVar(&f.steps, "steps", 50, "DDIM steps")
	fs.IntVar(&f.batch, "batch", 50, "images per model batch")
	fs.Uint64Var(&f.seed, "seed", 100000, "seed of image 0; image i uses seed+i in every setting")
	fs.IntVar(&f.threads, "threads", 1, "ONNX Runtime intra-op threads per call (0: runtime default)")
	fs.IntVar(&f.workers, "workers", 2, "batches sampled concurrently (one per core with -threads 1 is fastest on CPU)")
	fs.StringVar(&f.only, "only", "", "semicolon-separated setting names to run (default: all; names contain commas)")
	fs.StringVar(&f.sweep, "sweep", "", "-protocol 28: comma-separated step counts: instead of the quality table, measure 56x56 UG θ=1 with each of -samplers at each count (FD vs steps)")
	fs.StringVar(&f.flow, "flow", "", "-protocol 28: ONNX rectified-flow model (velocity prediction, timestep 1000 s): instead of the quality table, compare it with the eps model at the same model calls")
	fs.StringVar(&f.samplers, "samplers", strings.Join(fashion.Solvers, ","), "samplers of -sweep: "+strings.Join(fashion.Solvers, ", "))
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if f.protocol != 14 && f.protocol != 28 {
		return nil, fmt.Errorf("-protocol %d: want 14 or 28", f.protocol)
	}
	if f.n56 < 2 || f.n112 < 2 || f.steps <= 0 || f.batch <= 0 || f.workers <= 0 {
		return nil, errors.New("-n56 and -n112 must be at least 2; -steps, -batch and -workers positive")
	}
	if err := cli.First(cli.Between("n2x", f.n2x, 2, 10000), cli.Between("n4x", f.n4x, 2, 10000),
		cli.Between("resamples", f.resamples, 1, 100000), cli.Between("crops", f.crops, 1, 64)); err != nil {
		return nil, err
	}
	if err := cli.First(cli.Threads("threads", f.threads), cli.Between("workers", f.workers, 1, 1024),
		cli.Between("steps", f.steps, 1, 100000),
		// Every image of a setting is kept for its statistics; a batch of
		// 112x112 samples is in flight per worker.
		cli.Memory(fmt.Sprintf("-n56 %d, -n112 %d images", f.n56, f.n112), 4, f.n56+f.n112, 1, 112, 112),
		cli.Memory(fmt.Sprintf("-batch %d times -workers %d", f.batch, f.workers), 12, f.batch, f.workers, 112, 112)); err != nil {
		return nil, err
	}
	if f.sweep != "" && f.protocol != 28 {
		return nil, errors.New("-sweep measures the 28x28 model: it needs -protocol 28")
	}
	if f.flow != "" && (f.protocol != 28 || f.sweep != "") {
		return nil, errors.New("-flow compares 28x28 models: it needs -protocol 28 and no -sweep")
	}
	if f.sweep != "" {
		if _, err := sweepSettings(fashion.Setting{}, fashion.Setting{}, f.sweep, f.samplers, f.steps); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func run() error {
	f, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		return err
	}
	if err := f.findModels(); err != nil {
		return err
	}
	var opts []onnx.Option
	if f.threads > 0 {
		opts = append(opts, onnx.WithThreads(f.threads, 1))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if f.protocol == 14 {
		return runHires(ctx, hiresConfig{model: f.model, cls28: f.cls, cls14: f.cls14, crop14: f.crop14,
			dataDir: f.data, out: f.out, n2x: f.n2x, n4x: f.n4x, steps: f.steps, batch: f.batch, workers: f.workers,
			seed: f.seed, resamples: f.resamples, crops: f.crops, only: f.only, opts: opts})
	}
	return run28(ctx, f, opts)
}

// findModels fills the model paths the flags left empty with the
// repository's files for the chosen protocol.
func (f *evalFlags) findModels() error {
	defModel := "testdata/models/fashion_unet.onnx"
	if f.protocol == 14 {
		defModel = "testdata/models/fashion14_unet.onnx"
	}
	paths := map[string]*string{defModel: &f.model, "testdata/models/fashion_classifier.onnx": &f.cls}
	if f.protocol == 14 {
		paths["testdata/models/fashion14_classifier.onnx"] = &f.cls14
		paths["testdata/models/fashion_crop14.onnx"] = &f.crop14
	} else {
		paths["testdata/models/esrgan_slim_x4.onnx"] = &f.sr
	}
	for def, p := range paths {
		if *p == "" {
			found, err := fashion.FindFile(def)
			if err != nil {
				return err
			}
			*p = found
		}
	}
	return nil
}

// settings28 lists the settings of the 28x28 model's table, native first.
func settings28(esrgan *superres.Model) []fashion.Setting {
	ug := func(theta float64, mod func(*guidance.UpsampleOptions)) *guidance.UpsampleOptions {
		o := fashion.Guided(theta)
		if mod != nil {
			mod(&o)
		}
		return &o
	}
	noTime := func(o *guidance.UpsampleOptions) { o.NoTimeAdjustment = true }
	noPower := func(o *guidance.UpsampleOptions) { o.NoPowerAdjustment = true }
	settings := []fashion.Setting{
		{Name: "28 native", Size: 28},
		{Name: "56 plain", Size: 56},
		{Name: "56 UG θ=1", Size: 56, Guide: ug(1, nil)},
		{Name: "112 plain", Size: 112},
		{Name: "112 UG θ=1", Size: 112, Guide: ug(1, nil)},
		{Name: "56 UG θ=0.5", Size: 56, Guide: ug(0.5, nil)},
		{Name: "56 UG θ=1, no time adj.", Size: 56, Guide: ug(1, noTime)},
		{Name: "56 UG θ=1, no power adj.", Size: 56, Guide: ug(1, noPower)},
		{Name: "56 UG θ=1, element-wise clip", Size: 56, Guide: ug(1, nil), NoBlockClamp: true, DiffusersDDIM: true},
	}
	ugAt := fashion.Guided(1)
	ugAt.Factors = nil // derived from the training size at each stage
	const r = 0.3      // SDEdit strength of the refinements
	settings = append(settings,
		fashion.Setting{Name: "112 two-stage UG", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 56, Width: 56, Upsample: &ugAt},
			upscale.Refine{Height: 112, Width: 112, Strength: r, Upsample: &ugAt}}},
		fashion.Setting{Name: "112 refine", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 28, Width: 28},
			upscale.Refine{Height: 112, Width: 112, Strength: r}}},
		fashion.Setting{Name: "112 refine+LFM+SG", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 28, Width: 28},
			upscale.Refine{Height: 112, Width: 112, Strength: r, Mix: &upscale.MixOptions{}, Structure: &guidance.StructureOptions{}}}},
		fashion.Setting{Name: "56 UG θ=1.5", Size: 56, Guide: ug(1.5, nil)},
		fashion.Setting{Name: "28 native, diffusers DDIM", Size: 28, DiffusersDDIM: true},
	)
	// A pretrained super-resolution network on the native samples, alone
	// and followed by the same refinement.
	settings = append(settings,
		fashion.Setting{Name: "112 ESRGAN", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 28, Width: 28},
			superres.Stage{Model: esrgan}}},
		fashion.Setting{Name: "112 ESRGAN+refine", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 28, Width: 28},
			superres.Stage{Model: esrgan},
			upscale.Refine{Height: 112, Width: 112, Strength: r}}},
		fashion.Setting{Name: "112 ESRGAN+refine+SG", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 28, Width: 28},
			superres.Stage{Model: esrgan},
			upscale.Refine{Height: 112, Width: 112, Strength: r, Structure: &guidance.StructureOptions{}}}},
		fashion.Setting{Name: "112 ESRGAN+refine+UG", Size: 112, Stages: []upscale.Stage{
			upscale.Generate{Height: 28, Width: 28},
			superres.Stage{Model: esrgan},
			upscale.Refine{Height: 112, Width: 112, Strength: r, Upsample: &ugAt}}},
	)
	return settings
}

// selectOnly keeps the settings named in only (separated by ";"), with the
// native setting settings[0] first; an unknown name is an error.
func selectOnly(settings []fashion.Setting, only string) ([]fashion.Setting, error) {
	keep := map[string]bool{}
	for _, s := range strings.Split(only, ";") {
		keep[strings.TrimSpace(s)] = true
	}
	var sel []fashion.Setting
	for _, s := range settings {
		if keep[s.Name] {
			sel = append(sel, s)
			delete(keep, s.Name)
		}
	}
	if len(keep) > 0 {
		return nil, fmt.Errorf("-only names unknown settings %v", keys(keep))
	}
	return append([]fashion.Setting{settings[0]}, without(sel, settings[0].Name)...), nil
}

// run28 is the 28x28 model's structural table (-protocol 28).
func run28(ctx context.Context, f *evalFlags, opts []onnx.Option) error {
	model, err := onnx.Open(f.model, opts...)
	if err != nil {
		return err
	}
	defer model.Close()
	cls, err := newClassifier(f.cls, opts...)
	if err != nil {
		return err
	}
	defer cls.Close()
	esrgan, err := superres.Open(f.sr, superres.Options{Scale: 4}, opts...)
	if err != nil {
		return err
	}
	defer esrgan.Close()
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}

	settings := settings28(esrgan)
	var flowModel *onnx.Model
	if f.flow != "" {
		if flowModel, err = onnx.Open(f.flow, opts...); err != nil {
			return err
		}
		defer flowModel.Close()
		settings = flowSettings()
	}
	if f.sweep != "" {
		if settings, err = sweepSettings(settings[0], settings[2], f.sweep, f.samplers, f.steps); err != nil {
			return err
		}
	}
	if f.only != "" {
		if settings, err = selectOnly(settings, f.only); err != nil {
			return err
		}
	}

	// Reference statistics (minutes on a CPU), once -sweep and -only are
	// known to be valid: the 10,000 real test images.
	real, n, h, w, err := fashion.ReadIDXImages(filepath.Join(f.data, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		return fmt.Errorf("%w (apt-get install dataset-fashion-mnist, or pass -data)", err)
	}
	if h != fashion.TrainedSize || w != fashion.TrainedSize {
		return fmt.Errorf("test images are %dx%d, want 28x28", h, w)
	}
	realFeat, _, err := cls.features(ctx, real, n)
	if err != nil {
		return err
	}
	ref, err := metrics.FitGaussian(realFeat, cls.dim)
	if err != nil {
		return err
	}

	resultsPath := filepath.Join(f.out, "results.jsonl")
	done, err := loadResults(resultsPath)
	if err != nil {
		return err
	}
	// The native 28x28 features, kept to compute the native FD at every N.
	var nativeFeat []float32
	var rows []result
	for _, set := range settings {
		count := f.n56
		if set.Size > 56 {
			count = f.n112
		}
		if set.Name == "28 native" {
			count = max(f.n56, f.n112)
		}
		if r, ok := done[key(set.Name, count)]; ok && set.Name != "28 native" {
			fmt.Fprintf(os.Stderr, "%-26s done before: FD %.3f\n", set.Name, r.FD)
			rows = append(rows, r)
			continue
		}
		m := model
		if set.Flow {
			m = flowModel
		}
		feat, conf, secs, err := evaluate(ctx, m, f.steps, f.workers, cls, set, count, f.batch, f.seed, f.out)
		if err != nil {
			return err
		}
		if set.Name == "28 native" {
			nativeFeat = feat
		}
		r, err := summarize(set, count, feat, conf, secs, nativeFeat, cls.dim, ref)
		if err != nil {
			return err
		}
		r.Steps = f.steps
		if set.Steps > 0 {
			r.Steps = set.Steps
		}
		if f.flow != "" {
			if r.FDLo, r.FDHi, err = fdInterval(feat, count, cls.dim, ref); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "%-26s N=%d FD %.3f (native %.3f) confidence %.3f, %.3f s/image\n", set.Name, count, r.FD, r.FDNative, r.Confidence, r.SecPerImg)
		if err := appendResult(resultsPath, r); err != nil {
			return err
		}
		rows = append(rows, r)
	}
	table := markdown(rows, f.steps, f.n56, f.n112)
	if f.sweep != "" {
		table = sweepMarkdown(rows, f.steps)
	}
	if f.flow != "" {
		table = flowMarkdown(rows, f.steps, f.n56, f.n112)
	}
	fmt.Print(table)
	return os.WriteFile(filepath.Join(f.out, "table.md"), []byte(table), 0o644)
}

// evaluate samples count images of set with workers concurrent batches,
// downsamples them to 28x28 and returns their classifier features, mean
// top-class confidence and wall-clock seconds of sampling per image.
func evaluate(ctx context.Context, model ugo.Denoiser, steps, workers int, cls *classifier, set fashion.Setting, count, batch int, seed uint64, out string) ([]float32, float64, float64, error) {
	f, err := set.Factor()
	if err != nil {
		return nil, 0, 0, err
	}
	small := make([]float32, count*fashion.TrainedSize*fashion.TrainedSize)
	var mu sync.Mutex
	finished := 0
	progress := func(step, steps int) {
		mu.Lock()
		fmt.Fprintf(os.Stderr, "\r%-26s %4d/%d images, step %2d/%d", set.Name, finished, count, step, steps)
		mu.Unlock()
	}
	per := fashion.TrainedSize * fashion.TrainedSize
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for start := 0; start < count; start += batch {
		nb := min(batch, count-start)
		g.Go(func() error {
			smp := &fashion.Sampler{Model: model, Steps: steps, Progress: func(_, step, steps int) { progress(step, steps) }}
			x, err := smp.Sample(gctx, set, fashion.Seeds(seed+uint64(start), nb), start)
			if err != nil {
				return err
			}
			if start == 0 {
				name := strings.NewReplacer(" ", "_", "=", "", ",", "", ".", "", "θ", "theta").Replace(set.Name)
				if err := picture.WriteGrid(filepath.Join(out, name+".png"), firstN(x, 16), 8, 2); err != nil {
					return err
				}
			}
			fashion.AreaDownsample(small[start*per:(start+nb)*per], x.Float32s(), nb, set.Size, set.Size, f)
			mu.Lock()
			finished += nb
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, 0, err
	}
	secs := time.Since(t0).Seconds()
	fmt.Fprintln(os.Stderr)
	feat, conf, err := cls.features(ctx, small, count)
	if err != nil {
		return nil, 0, 0, err
	}
	return feat, conf, secs / float64(count), nil
}

func summarize(set fashion.Setting, count int, feat []float32, conf, secs float64, nativeFeat []float32, dim int, ref *metrics.Gaussian) (result, error) {
	g, err := metrics.FitGaussian(feat, dim)
	if err != nil {
		return result{}, err
	}
	fd, err := metrics.FrechetDistance(g, ref)
	if err != nil {
		return result{}, err
	}
	r := result{Name: set.Name, Size: set.Size, N: count, FD: fd, Confidence: conf, SecPerImg: secs, FDNative: math.NaN()}
	if len(nativeFeat) >= count*dim {
		gn, err := metrics.FitGaussian(nativeFeat[:count*dim], dim)
		if err != nil {
			return result{}, err
		}
		if r.FDNative, err = metrics.FrechetDistance(gn, ref); err != nil {
			return result{}, err
		}
	}
	return r, nil
}

func markdown(rows []result, steps, n56, n112 int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| setting | size | N | Frechet distance | vs. native 28x28 (same N) | mean top-class confidence | s / image |\n")
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		rel := "—"
		if !math.IsNaN(r.FDNative) && r.FDNative > 0 {
			rel = fmt.Sprintf("%.2fx (native %.2f)", r.FD/r.FDNative, r.FDNative)
		}
		fmt.Fprintf(&b, "| %s | %dx%d | %d | %.2f | %s | %.3f | %.3f |\n", r.Name, r.Size, r.Size, r.N, r.FD, rel, r.Confidence, r.SecPerImg)
	}
	fmt.Fprintf(&b, "\nDDIM %d steps (eta 0; x0 clipped to [-1, 1] and the noise re-derived from it, except in the rows marked diffusers DDIM; the UG rows clamp x0 block-wise to [-1, 1], guidance.BlockClamp, except the element-wise clip row), fixed seeds (image i of every setting starts from the same seed), samples area-downsampled to 28x28; Frechet distance of the classifier's 128-d penultimate features against the 10,000 real test images. N = %d at 28 and 56, %d at 112; the native row is computed from the first N native samples.\n", steps, n56, n112)
	return b.String()
}

func firstN(x *tensor.Dense, n int) *tensor.Dense {
	s := x.Shape()
	if s[0] <= n {
		return x
	}
	per := s[1] * s[2] * s[3]
	return tensor.New(tensor.WithShape(n, s[1], s[2], s[3]), tensor.WithBacking(x.Float32s()[:n*per]))
}

func key(name string, n int) string { return fmt.Sprintf("%s|%d", name, n) }

func loadResults(path string) (map[string]result, error) {
	done := map[string]result{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		done[key(r.Name, r.N)] = r
	}
	return done, sc.Err()
}

func appendResult(path string, r result) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if math.IsNaN(r.FDNative) {
		r.FDNative = 0
	}
	b, _ := json.Marshal(r)
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func without(s []fashion.Setting, name string) []fashion.Setting {
	var out []fashion.Setting
	for _, x := range s {
		if x.Name != name {
			out = append(out, x)
		}
	}
	return out
}

// sweepSettings returns the settings of an FD-vs-steps measurement: the
// native reference, the guided DDIM reference at refSteps, then guided with
// each sampler at each step count.
func sweepSettings(native, guided fashion.Setting, counts, solvers string, refSteps int) ([]fashion.Setting, error) {
	out := []fashion.Setting{native, guided}
	for _, name := range strings.Split(solvers, ",") {
		name = strings.TrimSpace(name)
		if _, err := fashion.NewSolver(name, false); err != nil {
			return nil, err
		}
		for _, c := range strings.Split(counts, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("-sweep: %q is not a positive step count", c)
			}
			if name == "ddim" && n == refSteps {
				continue // the reference row
			}
			s := guided
			s.Name, s.Solver, s.Steps = fmt.Sprintf("%s · %s %d", guided.Name, name, n), name, n
			out = append(out, s)
		}
	}
	return out, nil
}

// sweepMarkdown formats an FD-vs-steps measurement: each row against the
// native reference and against guided DDIM at refSteps, with its model
// calls and its time relative to that reference.
func sweepMarkdown(rows []result, refSteps int) string {
	var ref *result
	for i := range rows {
		if rows[i].Name == "56 UG θ=1" {
			ref = &rows[i]
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| setting | N | Frechet distance | vs. native (same N) | vs. DDIM %d | model calls / image | s / image | time vs. DDIM %d |\n", refSteps, refSteps)
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		rel, vsRef, tRef := "—", "—", "—"
		if !math.IsNaN(r.FDNative) && r.FDNative > 0 {
			rel = fmt.Sprintf("%.2fx", r.FD/r.FDNative)
		}
		if ref != nil && r.Size == ref.Size {
			vsRef = fmt.Sprintf("%.2fx", r.FD/ref.FD)
			tRef = fmt.Sprintf("%.2f", r.SecPerImg/ref.SecPerImg)
		}
		n := r.Steps
		if n == 0 {
			n = refSteps
		}
		calls := fmt.Sprint(n)
		if r.Size > 28 {
			calls = fmt.Sprintf("%d + %d low-res", n, n)
		}
		fmt.Fprintf(&b, "| %s | %d | %.2f | %s | %s | %s | %.3f | %s |\n", r.Name, r.N, r.FD, rel, vsRef, calls, r.SecPerImg, tRef)
	}
	fmt.Fprintf(&b, "\nUpsample Guidance θ=1 at 56x56 (2x) with each sampler; the reference rows use DDIM %d. Fixed seeds, samples area-downsampled to 28x28; Frechet distance of the classifier's 128-d features against the 10,000 real test images.\n", refSteps)
	return b.String()
}

// flowSettings lists the settings of the -flow table: the eps model (DDIM)
// and the rectified-flow model (FlowMatchEuler, no shift) at 28, and plain
// and guided at 56 and 112, the eps model's native row first.
func flowSettings() []fashion.Setting {
	ug := fashion.Guided(1)
	var out []fashion.Setting
	for _, size := range []int{28, 56, 112} {
		for _, flow := range []bool{false, true} {
			model := "eps"
			if flow {
				model = "flow"
			}
			if size == 28 {
				name := "28 native"
				if flow {
					name = "28 flow native"
				}
				out = append(out, fashion.Setting{Name: name, Size: 28, Flow: flow})
				continue
			}
			out = append(out,
				fashion.Setting{Name: fmt.Sprintf("%d %s plain", size, model), Size: size, Flow: flow},
				fashion.Setting{Name: fmt.Sprintf("%d %s UG θ=1", size, model), Size: size, Flow: flow, Guide: &ug})
		}
	}
	// The flow model's Euler sampler clips nothing: guidance without the
	// block-wise clamp of the implied x0.
	out = append(out, fashion.Setting{Name: "56 flow UG θ=1, no clamp", Size: 56, Flow: true, Guide: &ug, NoBlockClamp: true})
	// SD3's static shift 3, which spends more steps at high noise.
	return append(out,
		fashion.Setting{Name: "56 flow plain, shift 3", Size: 56, Flow: true, FlowShift: 3},
		fashion.Setting{Name: "56 flow UG θ=1, shift 3", Size: 56, Flow: true, FlowShift: 3, Guide: &ug})
}

// fdInterval returns the 95% bootstrap interval (normal, 200 resamples
// over the n images) of the Frechet distance of feat against ref.
func fdInterval(feat []float32, n, dim int, ref *metrics.Gaussian) (lo, hi float64, err error) {
	fr, err := metrics.NewFrechetReference(ref)
	if err != nil {
		return 0, 0, err
	}
	bo := metrics.BootstrapOptions{Resamples: 200, Seed: 2, Method: metrics.Normal}
	iv, err := metrics.Bootstrap(n, bo, func(w []float64) (float64, error) {
		g, err := metrics.FitGaussianWeighted(feat, dim, w)
		if err != nil {
			return 0, err
		}
		return fr.Distance(g)
	})
	if err != nil {
		return 0, 0, err
	}
	return iv.Lo, iv.Hi, nil
}

// flowMarkdown formats the -flow table.
func flowMarkdown(rows []result, steps, n56, n112 int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| setting | N | FD at 28 [95%% interval] | mean top-class confidence | model calls / image | s / image |\n")
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		calls := fmt.Sprintf("%d @%d", r.Steps, r.Size)
		if strings.Contains(r.Name, "UG") {
			calls += fmt.Sprintf(" + %d @28", r.Steps)
		}
		fmt.Fprintf(&b, "| %s | %d | %.1f [%.1f, %.1f] | %.3f | %s | %.3f |\n", r.Name, r.N, r.FD, r.FDLo, r.FDHi, r.Confidence, calls, r.SecPerImg)
	}
	fmt.Fprintf(&b, "\nThe eps model (fashion_unet.onnx) with DDIM %d steps (x0 clipped, UG with the block-wise clamp) and the rectified-flow model (fashion_flow_unet.onnx) with FlowMatchEuler %d steps (no shift unless the row says; UG with Prediction flow_prediction and the same clamp of the implied x0, except in the no-clamp row), so both make the same model calls; image i of every row starts from the same seed. Samples area-downsampled to 28x28; Frechet distance of the classifier's 128-d features against the 10,000 real test images, with 95%% intervals (estimate -+ 1.96 bootstrap standard errors over the N images, 200 resamples). N = %d at 28 and 56, %d at 112: compare rows of equal N.\n", steps, steps, n56, n112)
	return b.String()
}
