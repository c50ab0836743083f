// Command latenteval measures the paper's latent-model claims on the
// text-to-image latent models trained by tools/latent (Fashion-MNIST,
// testdata/models/fashion_ldm_eps and fashion_ldm_v): for each model and
// sampling setting it generates N images, one tenth per class, each from
// that class's prompt ("a photo of a sneaker", ...), and reports
//
//   - the Frechet distance of the project's classifier features against the
//     held-out Fashion-MNIST test set (10,000 images), with a 95% bootstrap
//     interval over the generated images (normal method: resampling repeats
//     images, which biases the percentiles upward);
//   - prompt accuracy: the share of images the classifier assigns to the
//     prompted class, with a 95% percentile bootstrap interval;
//   - seconds per image and UNet evaluations per image.
//
// Images are scored on the centre 28x28 of the 32x32 training frame, after
// area downsampling to 32x32 at 2x and 4x. Settings: the training size
// (32x32), 2x (64x64) and 4x (128x128); plain sampling and Upsample Guidance
// with theta 1 and 1.2 and eta 0.3, 0.6 and 1.0; CFG scale 1, 3 and 7.5.
//
//	go run ./examples/latenteval -out out/latenteval                 # every row
//	go run ./examples/latenteval -n 100 -n4 50 -only "32 plain cfg 3"
//
// Finished rows are appended to results.jsonl in the output folder; a rerun
// skips them, so an interrupted run resumes where it stopped. table.md is
// rewritten after every row.
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/binary"
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
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/metrics"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/picture"
	"github.com/ugo-diffusion/ugo/pipeline"
	"github.com/ugo-diffusion/ugo/resize"
)

// Prompts are the evaluation prompts, one per Fashion-MNIST class in label
// order (tools/latent/prompts.py canonical).
var Prompts = []string{
	"a photo of a t-shirt", "a photo of a pair of trousers", "a photo of a pullover", "a photo of a dress",
	"a photo of a coat", "a photo of a sandal", "a photo of a shirt", "a photo of a sneaker",
	"a photo of a bag", "a photo of an ankle boot",
}

// setting is one row of the table for one model.
type setting struct {
	Factor int     // 1, 2 or 4 times the 32x32 training size
	CFG    float64 // classifier-free guidance scale
	Theta  float64 // Upsample Guidance weight; 0: plain
	Eta    float64 // guidance window: t >= (1-Eta)*T
}

func (s setting) name() string {
	g := "plain"
	if s.Theta > 0 {
		g = fmt.Sprintf("UG θ=%g η=%g", s.Theta, s.Eta)
	}
	return fmt.Sprintf("%d %s cfg %g", 32*s.Factor, g, s.CFG)
}

// settings lists the rows, most telling first (a run cut short still
// answers the main questions): at CFG scale cfg, the training size, 2x plain
// and 2x with the Upsample Guidance defaults (theta 1.2, eta 0.6), the rest
// of the 2x guidance grid (theta 1 and 1.2 x eta 0.3, 0.6 and 1); the other
// CFG scales (1, 3, 7.5) at the training size, 2x plain and 2x guided with
// the defaults; then 4x plain and the 4x guidance grid; last, for each of
// the extra thetas, 2x and 4x guided with eta 1.
func settings(cfg float64, extra []float64) []setting {
	out := []setting{{Factor: 1, CFG: cfg}, {Factor: 2, CFG: cfg}, {Factor: 2, CFG: cfg, Theta: 1.2, Eta: 0.6}}
	grid := func(f int) {
		for _, theta := range []float64{1, 1.2} {
			for _, eta := range []float64{0.3, 0.6, 1} {
				if theta == 1.2 && eta == 0.6 { // listed first
					continue
				}
				out = append(out, setting{Factor: f, CFG: cfg, Theta: theta, Eta: eta})
			}
		}
	}
	grid(2)
	for _, c := range []float64{1, 3, 7.5} {
		if c != cfg {
			out = append(out, setting{Factor: 1, CFG: c}, setting{Factor: 2, CFG: c}, setting{Factor: 2, CFG: c, Theta: 1.2, Eta: 0.6})
		}
	}
	out = append(out, setting{Factor: 4, CFG: cfg}, setting{Factor: 4, CFG: cfg, Theta: 1.2, Eta: 0.6})
	grid(4)
	for _, theta := range extra {
		out = append(out, setting{Factor: 2, CFG: cfg, Theta: theta, Eta: 1}, setting{Factor: 4, CFG: cfg, Theta: theta, Eta: 1})
	}
	return out
}

// result is one finished row.
type result struct {
	Model    string  `json:"model"`
	Name     string  `json:"name"`
	Size     int     `json:"size"`
	CFG      float64 `json:"cfg"`
	Theta    float64 `json:"theta"`
	Eta      float64 `json:"eta"`
	N        int     `json:"n"`
	Steps    int     `json:"steps"`
	FD       float64 `json:"fd"`
	FDLo     float64 `json:"fd_lo"`
	FDHi     float64 `json:"fd_hi"`
	Acc      float64 `json:"accuracy"`
	AccLo    float64 `json:"accuracy_lo"`
	AccHi    float64 `json:"accuracy_hi"`
	SecPer   float64 `json:"sec_per_image"`
	Calls    float64 `json:"unet_calls_per_image"`
	LowCalls float64 `json:"low_res_calls_per_image"`
	// PoolRatio and PoolLatent are the VAE's pooling consistency at 2x
	// (pipeline.PoolingConsistency: Ratio and Latent), on the reconstruction
	// row only.
	PoolRatio  float64 `json:"pool_ratio,omitempty"`
	PoolLatent float64 `json:"pool_latent,omitempty"`
	// Pooled scores a 2x or 4x row's latents average-pooled to the training
	// size and decoded there (-pooled): what the sampler made of the low
	// frequencies, without the decoder's reading of the high ones.
	Pooled *result `json:"pooled,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "latenteval:", err)
		os.Exit(1)
	}
}

func run() error {
	models := flag.String("models", "testdata/models/fashion_ldm_eps,testdata/models/fashion_ldm_v", "comma-separated model folders")
	clsPath := flag.String("classifier", "testdata/models/fashion_classifier.onnx", "ONNX classifier with outputs logits [N,10] and features [N,dim], input x [N,1,28,28]")
	dataDir := flag.String("data", "/usr/share/datasets/fashion-mnist", "folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
	out := flag.String("out", "out/latenteval", "output folder: results.jsonl, table.md, sample grids")
	n := flag.Int("n", 500, "images per row at 32x32 and 64x64 (a multiple of 10)")
	n4 := flag.Int("n4", 100, "images per row at 128x128 (a multiple of 10)")
	steps := flag.Int("steps", 50, "DDIM steps")
	cfg := flag.Float64("cfg", 7.5, "CFG scale of the Upsample Guidance grid")
	batch := flag.Int("batch", 25, "images per Generate call")
	seed := flag.Uint64("seed", 1000, "base seed: class c, chunk k uses seed + 1000*c + k in every row")
	threads := flag.Int("threads", 1, "ONNX Runtime intra-op threads")
	only := flag.String("only", "", "semicolon-separated row names (or prefixes) to run (default: all)")
	boot := flag.Int("bootstrap", 200, "bootstrap resamples")
	thetas := flag.String("thetas", "", "comma-separated extra Upsample Guidance weights, each run at 2x and 4x with eta 1 after the grid (e.g. 1.5,2)")
	pooled := flag.Bool("pooled", false, "also score each 2x and 4x row's latents average-pooled to 8x8 and decoded at 32x32")
	flag.Parse()
	if *n%10 != 0 || *n4%10 != 0 || *n <= 0 || *n4 <= 0 {
		return errors.New("-n and -n4 must be positive multiples of 10")
	}
	var extra []float64
	if *thetas != "" {
		for _, f := range strings.Split(*thetas, ",") {
			t, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || !(t > 0 && t <= 10) {
				return fmt.Errorf("-thetas: %q is not a weight in (0, 10]", f)
			}
			extra = append(extra, t)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	ortOpts := []onnx.Option{onnx.WithThreads(*threads, 1)}

	cls, err := openClassifier(*clsPath, ortOpts)
	if err != nil {
		return err
	}
	defer cls.sess.Close()
	real, nReal, _, _, err := fashion.ReadIDXImages(filepath.Join(*dataDir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		return err
	}
	realFeat, _, err := cls.run(ctx, real, nReal)
	if err != nil {
		return err
	}
	realG, err := metrics.FitGaussian(realFeat, cls.dim)
	if err != nil {
		return err
	}
	ref, err := metrics.NewFrechetReference(realG)
	if err != nil {
		return err
	}

	done := map[string]result{}
	var results []result
	resPath := filepath.Join(*out, "results.jsonl")
	if f, err := os.Open(resPath); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r result
			if json.Unmarshal(sc.Bytes(), &r) == nil {
				done[r.Model+"|"+r.Name] = r
				results = append(results, r)
			}
		}
		f.Close()
	}
	var filters []string
	if *only != "" {
		filters = strings.Split(*only, ";")
	}
	wanted := func(name string) bool {
		if filters == nil {
			return true
		}
		for _, f := range filters {
			if strings.HasPrefix(name, strings.TrimSpace(f)) {
				return true
			}
		}
		return false
	}

	for _, dir := range strings.Split(*models, ",") {
		m, err := pipeline.Load(dir, pipeline.WithONNXOptions(ortOpts...))
		if err != nil {
			return err
		}
		model := filepath.Base(dir)
		if name := "32 VAE reconstruction"; wanted(name) && done[model+"|"+name].N == 0 {
			r, err := reconstruct(ctx, m, cls, ref, real, *dataDir, *n, *boot)
			if err != nil {
				m.Close()
				return fmt.Errorf("%s %s: %w", model, name, err)
			}
			r.Model, r.Name = model, name
			fmt.Printf("%-16s %-28s N=%d FD %.2f [%.2f, %.2f] accuracy %.3f [%.3f, %.3f]\n",
				model, r.Name, r.N, r.FD, r.FDLo, r.FDHi, r.Acc, r.AccLo, r.AccHi)
			results = append(results, r)
			if err := appendJSON(resPath, r); err != nil {
				return err
			}
		}
		for _, s := range settings(*cfg, extra) {
			if !wanted(s.name()) {
				continue
			}
			if _, ok := done[model+"|"+s.name()]; ok {
				continue
			}
			count := *n
			if s.Factor == 4 {
				count = *n4
			}
			r, err := evaluate(ctx, m, cls, ref, s, count, *steps, *batch, *seed, *boot, *out, model, *pooled)
			if err != nil {
				m.Close()
				return fmt.Errorf("%s %s: %w", model, s.name(), err)
			}
			fmt.Printf("%-16s %-28s N=%d FD %.2f [%.2f, %.2f] accuracy %.3f [%.3f, %.3f] %.3f s/image, %.0f+%.0f UNet calls/image\n",
				model, r.Name, r.N, r.FD, r.FDLo, r.FDHi, r.Acc, r.AccLo, r.AccHi, r.SecPer, r.Calls, r.LowCalls)
			if p := r.Pooled; p != nil {
				fmt.Printf("%-16s %-28s pooled latents decoded at 32: FD %.2f [%.2f, %.2f] accuracy %.3f [%.3f, %.3f]\n",
					model, r.Name, p.FD, p.FDLo, p.FDHi, p.Acc, p.AccLo, p.AccHi)
			}
			results = append(results, r)
			if err := appendJSON(resPath, r); err != nil {
				return err
			}
			if err := writeTable(filepath.Join(*out, "table.md"), results); err != nil {
				return err
			}
		}
		m.Close()
	}
	return writeTable(filepath.Join(*out, "table.md"), results)
}

func evaluate(ctx context.Context, m *pipeline.Model, cls *classifier, ref *metrics.FrechetReference, s setting,
	count, steps, batch int, seed uint64, boot int, out, model string, pooled bool) (result, error) {
	size := 32 * s.Factor
	per := count / 10
	crops := make([]float32, 0, count*784)
	pooled = pooled && s.Factor > 1
	var pcrops []float32
	labels := make([]int, 0, count)
	var grid []float32 // the first image of each class, two per class
	var calls, low float64
	start := time.Now()
	for c, prompt := range Prompts {
		for k := 0; k*batch < per; k++ {
			nb := min(batch, per-k*batch)
			up := &guidance.UpsampleOptions{}
			if s.Theta > 0 {
				up = &guidance.UpsampleOptions{Factors: []int{s.Factor, s.Factor}, Theta: s.Theta, Eta: s.Eta}
			}
			res, err := m.Generate(ctx, pipeline.Request{Prompt: prompt, Width: size, Height: size, Steps: steps,
				GuidanceScale: new(s.CFG), Seed: seed + uint64(1000*c+k), Images: nb, Upsample: up})
			if err != nil {
				return result{}, err
			}
			p := res.Settings
			branches := 1.0
			if p.CFG {
				branches = 2
			}
			calls = float64(p.Steps) * branches
			if p.Upsample != nil {
				low = float64(p.GuidedSteps) * branches
			}
			px := res.Pixels.Float32s()
			crops = append(crops, centreCrop(px, nb, size, s.Factor)...)
			if pooled {
				ls := res.Latents.Shape()
				small, err := resize.To(resize.Area, res.Latents, ls[2]/s.Factor, ls[3]/s.Factor)
				if err != nil {
					return result{}, err
				}
				dec, err := m.Decode(ctx, small, pipeline.DecodeOptions{})
				if err != nil {
					return result{}, err
				}
				pcrops = append(pcrops, centreCrop(dec.Float32s(), nb, 32, 1)...)
			}
			for range nb {
				labels = append(labels, c)
			}
			if k == 0 {
				one := 3 * size * size
				grid = append(grid, px[:min(2, nb)*one]...)
			}
		}
	}
	secs := time.Since(start).Seconds() / float64(count)
	r, err := cls.score(ctx, crops, labels, ref, boot)
	if err != nil {
		return result{}, err
	}
	nGrid := len(grid) / (3 * size * size)
	name := strings.NewReplacer(" ", "_", "=", "", "θ", "theta", "η", "eta").Replace(s.name())
	if err := picture.WriteGrid(filepath.Join(out, model+"_"+name+".png"),
		tensor.New(tensor.WithShape(nGrid, 3, size, size), tensor.WithBacking(grid)), 10, 2); err != nil {
		return result{}, err
	}
	r.Model, r.Name, r.Size, r.CFG, r.Theta, r.Eta, r.Steps = model, s.name(), size, s.CFG, s.Theta, s.Eta, steps
	r.SecPer, r.Calls, r.LowCalls = secs, calls, low
	if pooled {
		p, err := cls.score(ctx, pcrops, labels, ref, boot)
		if err != nil {
			return result{}, err
		}
		r.Pooled = &p
	}
	return r, nil
}

// score computes a row's Frechet distance and prompt accuracy with their
// bootstrap intervals.
func score(feat, logits []float32, labels []int, dim int, ref *metrics.FrechetReference, boot int) (result, error) {
	count := len(labels)
	correct := make([]float64, count)
	for i := range count {
		if argmax(logits[i*10:(i+1)*10]) == labels[i] {
			correct[i] = 1
		}
	}
	g, err := metrics.FitGaussian(feat, dim)
	if err != nil {
		return result{}, err
	}
	fd, err := ref.Distance(g)
	if err != nil {
		return result{}, err
	}
	// A resample repeats images, which raises the Frechet distance: the
	// normal interval stays centred on the full-sample value.
	fdCI, err := metrics.Bootstrap(count, metrics.BootstrapOptions{Resamples: boot, Seed: 1, Method: metrics.Normal}, func(w []float64) (float64, error) {
		gw, err := metrics.FitGaussianWeighted(feat, dim, w)
		if err != nil {
			return 0, err
		}
		return ref.Distance(gw)
	})
	if err != nil {
		return result{}, err
	}
	accCI, err := metrics.Bootstrap(count, metrics.BootstrapOptions{Resamples: boot, Seed: 1}, func(w []float64) (float64, error) { return mean(correct, w), nil })
	if err != nil {
		return result{}, err
	}
	return result{N: count, FD: fd, FDLo: fdCI.Lo, FDHi: fdCI.Hi, Acc: mean(correct, nil), AccLo: accCI.Lo, AccHi: accCI.Hi}, nil
}

// reconstruct scores the VAE alone: the first n test images, padded to
// 32x32 with the background value, encoded and decoded; accuracy is against
// their true labels. It is the floor of every generated row's distance.
func reconstruct(ctx context.Context, m *pipeline.Model, cls *classifier, ref *metrics.FrechetReference,
	real []float32, dataDir string, n, boot int) (result, error) {
	labels, err := readLabels(filepath.Join(dataDir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		return result{}, err
	}
	n = min(n, len(labels))
	imgs := make([]float32, n*3*32*32)
	for i := range imgs {
		imgs[i] = -1
	}
	for i := range n {
		for c := range 3 {
			for y := range 28 {
				copy(imgs[((i*3+c)*32+y+2)*32+2:], real[(i*28+y)*28:(i*28+y+1)*28])
			}
		}
	}
	v, err := m.OpenVAE(pipeline.DecodeOptions{})
	if err != nil {
		return result{}, err
	}
	defer v.Close()
	images := tensor.New(tensor.WithShape(n, 3, 32, 32), tensor.WithBacking(imgs))
	lat, err := v.Encode(ctx, images)
	if err != nil {
		return result{}, err
	}
	pool, err := v.PoolingConsistency(ctx, images, 2)
	if err != nil {
		return result{}, err
	}
	fmt.Println(pool)
	px, err := v.Decode(ctx, lat)
	if err != nil {
		return result{}, err
	}
	r, err := cls.score(ctx, centreCrop(px.Float32s(), n, 32, 1), labels[:n], ref, boot)
	r.Size = 32
	r.PoolRatio, r.PoolLatent = pool.Ratio(), pool.Latent
	return r, err
}

// readLabels reads a gzipped IDX1 file of uint8 labels.
func readLabels(path string) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := io.ReadAll(gz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) < 8 || binary.BigEndian.Uint32(data) != 0x801 || int(binary.BigEndian.Uint32(data[4:])) != len(data)-8 {
		return nil, fmt.Errorf("%s: not an IDX1 file of uint8 labels", path)
	}
	out := make([]int, len(data)-8)
	for i, b := range data[8:] {
		out[i] = int(b)
	}
	return out, nil
}

// centreCrop area-downsamples n images [3, size, size] by f to 32x32,
// averages the channels and returns the centre 28x28 (the Fashion-MNIST
// frame inside the 2-pixel padding), clipped to [-1, 1].
func centreCrop(px []float32, n, size, f int) []float32 {
	out := make([]float32, n*784)
	inv := 1 / float32(3*f*f)
	for i := range n {
		for y := range 28 {
			for x := range 28 {
				var acc float32
				for c := range 3 {
					for dy := range f {
						row := px[((i*3+c)*size+(y+2)*f+dy)*size+(x+2)*f:]
						for dx := range f {
							acc += row[dx]
						}
					}
				}
				out[(i*28+y)*28+x] = max(-1, min(1, acc*inv))
			}
		}
	}
	return out
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// mean returns the (weighted) mean of v.
func mean(v, w []float64) float64 {
	var s, sw float64
	for i, x := range v {
		wi := 1.0
		if w != nil {
			wi = w[i]
		}
		s += wi * x
		sw += wi
	}
	return s / sw
}

func appendJSON(path string, r result) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(r)
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeTable writes the rows as a Markdown table, with each row's distance
// relative to its model's first native row of the same CFG scale.
func writeTable(path string, rs []result) error {
	var b strings.Builder
	b.WriteString("| model | setting | N | FD (95% CI) | FD vs native | prompt accuracy (95% CI) | s / image | UNet calls / image |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rs {
		rel := "—"
		for _, nat := range rs {
			if nat.Model == r.Model && nat.Size == 32 && nat.CFG > 0 && nat.CFG == r.CFG {
				rel = fmt.Sprintf("%.2fx", r.FD/nat.FD)
				break
			}
		}
		callStr := fmt.Sprintf("%.0f", r.Calls)
		if r.LowCalls > 0 {
			callStr += fmt.Sprintf(" + %.0f at 1/%d size", r.LowCalls, (r.Size/32)*(r.Size/32))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f (%.1f–%.1f) | %s | %.3f (%.3f–%.3f) | %.3f | %s |\n",
			r.Model, r.Name, r.N, r.FD, r.FDLo, r.FDHi, rel, r.Acc, r.AccLo, r.AccHi, r.SecPer, callStr)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// classifier runs the Fashion-MNIST classifier (x [N,1,28,28] in [-1, 1]
// -> logits [N,10], features [N,dim]).
type classifier struct {
	sess *onnx.Graph
	dim  int
}

func openClassifier(path string, opts []onnx.Option) (*classifier, error) {
	sess, err := onnx.OpenGraph(path, opts...)
	if err != nil {
		return nil, err
	}
	for _, o := range sess.Info().Outputs {
		if o.Name == "features" && len(o.Dims) == 2 && o.Dims[1] > 0 {
			return &classifier{sess: sess, dim: int(o.Dims[1])}, nil
		}
	}
	sess.Close()
	return nil, fmt.Errorf("%s: no output features [N, dim]", path)
}

// score classifies the len(labels) images and scores them against their
// labels and ref (see score).
func (c *classifier) score(ctx context.Context, images []float32, labels []int, ref *metrics.FrechetReference, boot int) (result, error) {
	feat, logits, err := c.run(ctx, images, len(labels))
	if err != nil {
		return result{}, err
	}
	return score(feat, logits, labels, c.dim, ref, boot)
}

func (c *classifier) run(ctx context.Context, images []float32, n int) (feat, logits []float32, err error) {
	const batch = 500
	feat = make([]float32, n*c.dim)
	logits = make([]float32, n*10)
	for s := 0; s < n; s += batch {
		nb := min(batch, n-s)
		x := tensor.New(tensor.WithShape(nb, 1, 28, 28), tensor.WithBacking(images[s*784:(s+nb)*784]))
		l := tensor.New(tensor.WithShape(nb, 10), tensor.WithBacking(logits[s*10:(s+nb)*10]))
		f := tensor.New(tensor.WithShape(nb, c.dim), tensor.WithBacking(feat[s*c.dim:(s+nb)*c.dim]))
		if err := c.sess.Run(ctx, map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"logits": l, "features": f}); err != nil {
			return nil, nil, err
		}
	}
	if math.IsNaN(float64(feat[0])) {
		return nil, nil, errors.New("classifier features are NaN")
	}
	return feat, logits, nil
}
