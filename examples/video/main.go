// Command video samples the shipped Fashion-MNIST video model
// (testdata/models/fashion_video.onnx, trained on 8-frame 28x28 clips of
// moving garments) natively, at twice the frames (16), at twice the size
// (56x56) and both, plainly and with Upsample Guidance (factors [2,1,1],
// [1,2,2], [2,2,2]), and measures every setting on N clips from fixed seeds:
//
//   - FD: Frechet distance of the classifier features of every frame
//     (area-downsampled to 28x28) against the 10,000 real test images;
//   - label changes: how often the classifier's label changes from one
//     frame to the next, and the fraction of clips that keep one label;
//   - frame differences: the mean absolute difference between consecutive
//     frames, and the 1-Wasserstein distance of their distribution to that
//     of real clips with the same frame count, made the same way as the
//     training clips from the test images;
//   - seconds of sampling per clip;
//
// each with a bootstrap 95% interval over clips. Real 8- and 16-frame clips
// are scored the same way as reference rows. Every setting also writes a PNG
// strip (a clip per row, frames left to right) and an animated GIF of its
// first clips.
//
//	go run ./examples/video -out out/video                 # the full table
//	go run ./examples/video -n 8 -only "16f 28 plain,16f 28 UG [2,1,1]"
//
// Finished rows are appended to results.jsonl in the output folder and a
// rerun skips them.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/examples/internal/cli"
	"github.com/ugo-diffusion/ugo/examples/internal/fashion"
	"github.com/ugo-diffusion/ugo/examples/internal/video"
	"github.com/ugo-diffusion/ugo/metrics"
	"github.com/ugo-diffusion/ugo/onnx"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "video:", err)
		os.Exit(1)
	}
}

// flags are the program's settings.
type flags struct {
	model, cls, data, out string
	n, n56, steps, batch  int
	resamples, show       int
	seed                  uint64
	threads               int
	only                  []string
	tableOnly             bool
}

func parse(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("video", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.model, "model", "", "ONNX video eps-model with an N,1,F,H,W sample (default: testdata/models/fashion_video.onnx)")
	fs.StringVar(&f.cls, "classifier", "", "Fashion-MNIST classifier (default: testdata/models/fashion_classifier.onnx)")
	fs.StringVar(&f.data, "data", "/usr/share/datasets/fashion-mnist", "folder of the Fashion-MNIST idx files")
	fs.StringVar(&f.out, "out", "out/video", "output folder")
	fs.IntVar(&f.n, "n", 64, "clips per 28x28 row")
	fs.IntVar(&f.n56, "n56", 0, "clips per 56x56 row (0: as -n)")
	fs.IntVar(&f.steps, "steps", 20, "DDIM steps")
	fs.IntVar(&f.batch, "batch", 8, "clips per model batch")
	fs.IntVar(&f.resamples, "resamples", 500, "bootstrap resamples")
	fs.IntVar(&f.show, "show", 4, "clips drawn in each strip and GIF")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the first clip; clip i uses seed+i")
	fs.IntVar(&f.threads, "threads", 1, "ONNX Runtime intra-op threads (0: runtime default)")
	fs.BoolVar(&f.tableOnly, "table", false, "only write table.md from the rows in results.jsonl, whatever their N (nothing is sampled)")
	only := fs.String("only", "", "settings to run, separated by ; (default: all)")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	if f.n56 == 0 {
		f.n56 = f.n
	}
	if err := cli.First(
		cli.Between("n", f.n, 2, 100000), cli.Between("n56", f.n56, 2, 100000), cli.Between("steps", f.steps, 1, 1000),
		cli.Between("batch", f.batch, 1, 1024), cli.Between("resamples", f.resamples, 10, 100000),
		cli.Between("show", f.show, 1, 64), cli.Threads("threads", f.threads),
		cli.Memory("a batch of 16-frame 56x56 clips", 8, f.batch, 1, 16, 56, 56),
	); err != nil {
		return nil, err
	}
	names := map[string]bool{"real 8f": true, "real 16f": true}
	for _, s := range video.Settings() {
		names[s.Name] = true
	}
	for _, o := range strings.Split(*only, ";") {
		if o = strings.TrimSpace(o); o != "" {
			if !names[o] {
				return nil, &cli.FlagError{Flag: "only", Value: o, Want: "setting names separated by ';' (real 8f; real 16f; " + settingNames() + ")"}
			}
			f.only = append(f.only, o)
		}
	}
	return f, nil
}

func settingNames() string {
	var s []string
	for _, st := range video.Settings() {
		s = append(s, st.Name)
	}
	return strings.Join(s, "; ")
}

func (f *flags) wants(name string) bool { return len(f.only) == 0 || slices.Contains(f.only, name) }

func run() error {
	f, err := parse(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.tableOnly {
		return writeTable(f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if f.model == "" {
		if f.model, err = fashion.FindFile("testdata/models/fashion_video.onnx"); err != nil {
			return err
		}
	}
	if f.cls == "" {
		if f.cls, err = fashion.FindFile("testdata/models/fashion_classifier.onnx"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	opts := []onnx.Option{onnx.WithThreads(f.threads, 1)}
	model, err := onnx.Open(f.model, opts...)
	if err != nil {
		return err
	}
	defer model.Close()
	cls, err := video.OpenClassifier(f.cls, opts...)
	if err != nil {
		return err
	}
	defer cls.Close()

	test, count, h, w, err := fashion.ReadIDXImages(filepath.Join(f.data, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		return err
	}
	if h != video.TrainedSize || w != video.TrainedSize {
		return fmt.Errorf("test images are %dx%d, want 28x28", h, w)
	}
	_, feat, err := cls.Classify(ctx, test, count)
	if err != nil {
		return err
	}
	g, err := metrics.FitGaussian(feat, cls.Dim)
	if err != nil {
		return err
	}
	ref, err := metrics.NewFrechetReference(g)
	if err != nil {
		return err
	}
	bo := metrics.BootstrapOptions{Resamples: f.resamples, Seed: 3}

	// Real clips from the test images, the reference of the frame
	// differences (and rows of their own).
	nReal := max(f.n, f.n56, 256)
	realDiffs := map[int][]float64{}
	realClips := map[int][]float32{}
	for _, frames := range []int{8, 16} {
		clips, err := video.Clips(test, count, h, w, nReal, frames, 1000+f.seed)
		if err != nil {
			return err
		}
		realClips[frames] = clips
		realDiffs[frames] = video.FrameDiffs(clips, nReal, frames)
	}

	resultsPath := filepath.Join(f.out, "results.jsonl")
	done, err := loadRows(resultsPath)
	if err != nil {
		return err
	}
	var rows []video.Row
	for _, frames := range []int{8, 16} {
		name := fmt.Sprintf("real %df", frames)
		if !f.wants(name) {
			continue
		}
		key := rowKey(name, nReal)
		if r, ok := done[key]; ok {
			rows = append(rows, r)
			continue
		}
		r, err := video.Score(ctx, cls, realClips[frames], nReal, frames, ref, realDiffs[frames], bo)
		if err != nil {
			return err
		}
		r.Name, r.Size = name, video.TrainedSize
		x := tensor.New(tensor.WithShape(nReal, 1, frames, h, w), tensor.WithBacking(realClips[frames]))
		if err := pictures(f.out, name, x, f.show, frames); err != nil {
			return err
		}
		if err := appendRow(resultsPath, r); err != nil {
			return err
		}
		rows = append(rows, r)
	}
	for _, s := range video.Settings() {
		if !f.wants(s.Name) {
			continue
		}
		n := f.n
		if s.Size > video.TrainedSize {
			n = f.n56
		}
		if r, ok := done[rowKey(s.Name, n)]; ok {
			rows = append(rows, r)
			continue
		}
		r, err := sampleRow(ctx, f, model, cls, s, n, ref, realDiffs[s.Frames], bo)
		if err != nil {
			return err
		}
		if err := appendRow(resultsPath, r); err != nil {
			return err
		}
		rows = append(rows, r)
	}
	table := markdown(rows, f, nReal)
	fmt.Print(table)
	return os.WriteFile(filepath.Join(f.out, "table.md"), []byte(table), 0o644)
}

// sampleRow samples n clips of s in batches, writes its pictures and scores it.
func sampleRow(ctx context.Context, f *flags, model *onnx.Model, cls *video.Classifier, s video.Setting, n int,
	ref *metrics.FrechetReference, realDiffs []float64, bo metrics.BootstrapOptions) (video.Row, error) {
	per := s.Frames * video.TrainedSize * video.TrainedSize
	frames := make([]float32, n*per)
	var secs float64
	for start := 0; start < n; start += f.batch {
		nb := min(f.batch, n-start)
		smp := &video.Sampler{Model: model, Steps: f.steps, Progress: func(step, steps int) {
			fmt.Fprintf(os.Stderr, "\r%-20s %4d/%d clips, step %2d/%d", s.Name, start, n, step, steps)
		}}
		t0 := time.Now()
		x, err := smp.Sample(ctx, s, fashion.Seeds(f.seed+uint64(start), nb))
		if err != nil {
			return video.Row{}, err
		}
		secs += time.Since(t0).Seconds()
		if start == 0 {
			if err := pictures(f.out, s.Name, x, f.show, s.Frames); err != nil {
				return video.Row{}, err
			}
		}
		small, err := video.Frames28(x)
		if err != nil {
			return video.Row{}, err
		}
		copy(frames[start*per:], small)
	}
	fmt.Fprintln(os.Stderr)
	r, err := video.Score(ctx, cls, frames, n, s.Frames, ref, realDiffs, bo)
	if err != nil {
		return video.Row{}, err
	}
	r.Name, r.Size, r.SecPerClip = s.Name, s.Size, secs/float64(n)
	return r, nil
}

// pictures writes the strip and the GIF of the first show clips of x; the
// GIF shows every clip in the same 1.28 seconds whatever its frame count.
func pictures(out, name string, x *tensor.Dense, show, frames int) error {
	sh := x.Shape()
	k := min(show, sh[0])
	per := sh[2] * sh[3] * sh[4]
	first := tensor.New(tensor.WithShape(k, 1, sh[2], sh[3], sh[4]), tensor.WithBacking(x.Float32s()[:k*per]))
	base := filepath.Join(out, fileName(name))
	if err := video.WriteStrip(base+".png", first); err != nil {
		return err
	}
	scale := max(1, 56/sh[3])
	return video.WriteGIF(base+".gif", first, scale, max(1, 128/frames))
}

// writeTable writes table.md from results.jsonl: the real rows, then the
// settings in their order, each with every N it was run at.
func writeTable(f *flags) error {
	done, err := loadRows(filepath.Join(f.out, "results.jsonl"))
	if err != nil {
		return err
	}
	order := []string{"real 8f", "real 16f"}
	for _, s := range video.Settings() {
		order = append(order, s.Name)
	}
	var rows []video.Row
	nReal := 0
	for _, name := range order {
		var found []video.Row
		for _, r := range done {
			if r.Name == name {
				found = append(found, r)
			}
		}
		slices.SortFunc(found, func(a, b video.Row) int { return a.N - b.N })
		for _, r := range found {
			if strings.HasPrefix(name, "real") {
				nReal = r.N
			}
		}
		rows = append(rows, found...)
	}
	table := markdown(rows, f, nReal)
	fmt.Print(table)
	return os.WriteFile(filepath.Join(f.out, "table.md"), []byte(table), 0o644)
}

func fileName(name string) string {
	return strings.NewReplacer(" ", "_", "[", "", "]", "", ",", "").Replace(name)
}

func rowKey(name string, n int) string { return fmt.Sprintf("%s|%d", name, n) }

func loadRows(path string) (map[string]video.Row, error) {
	out := map[string]video.Row{}
	file, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var r video.Row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out[rowKey(r.Name, r.N)] = r
	}
	return out, sc.Err()
}

func appendRow(path string, r video.Row) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	file, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := file.Write(append(b, '\n')); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

func iv(v metrics.Interval, format string) string {
	return fmt.Sprintf(format+" ["+format+", "+format+"]", v.Estimate, v.Lo, v.Hi)
}

func markdown(rows []video.Row, f *flags, nReal int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| setting | frames | size | N | per-frame FD | label changes / frame pair | clips with one label | mean frame difference | W1 to real differences | s / clip |\n")
	fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		secs := "—"
		if r.SecPerClip > 0 {
			secs = fmt.Sprintf("%.2f", r.SecPerClip)
		}
		fmt.Fprintf(&b, "| %s | %d | %dx%d | %d | %s | %s | %s | %s | %s | %s |\n", r.Name, r.Frames, r.Size, r.Size, r.N,
			iv(r.FD, "%.1f"), iv(r.LabelChange, "%.3f"), iv(r.OneLabel, "%.2f"), iv(r.Diff, "%.3f"), iv(r.DiffW1, "%.3f"), secs)
	}
	fmt.Fprintf(&b, "\nDDIM %d steps (eta 0, x0 clipped to [-1, 1]; the UG rows theta 1 throughout, x0 clamped block-wise), clip i from seed %d+i. "+
		"Frames area-downsampled to 28x28; FD of the classifier's 128-d features of every frame against the 10,000 real test images; labels are the classifier's; "+
		"frame differences are mean |x_{f+1} - x_f| in [-1, 1] units, W1 against %d real clips of the same frame count from the test images (tools/video/clips.py's motions). "+
		"Bootstrap 95%% intervals over clips (%d resamples; FD normal, the rest percentile).\n", f.steps, f.seed, nReal, f.resamples)
	return b.String()
}
