package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline/clip"
)

// Paths of the parts only Stable Diffusion XL folders have, relative to
// the folder (optimum's ORTStableDiffusionXLPipeline layout).
const (
	TextEncoder2Path = "text_encoder_2/model.onnx"
	Tokenizer2Dir    = "tokenizer_2"
	ModelIndexPath   = "model_index.json"
)

// SDXL's names: text_encoder_2's pooled output and the UNet's added
// conditions.
const (
	xlPooledOutput = "text_embeds"
	xlPooledInput  = "text_embeds"
	xlTimeIDsInput = "time_ids"
	xlTimeIDs      = 6 // original size, crop top-left, target size
	refinerTimeIDs = 5 // original size, crop top-left, aesthetic score
)

// ErrUnsupported is wrapped by an *UnsupportedError.
var ErrUnsupported = errors.New("unsupported model")

// UnsupportedError reports a model folder that Load recognises but does
// not run, such as the SDXL refiner. errors.Is(err, ErrUnsupported) holds
// for it.
type UnsupportedError struct {
	// Dir is the folder; Kind names what it holds; Reason says what gave
	// it away and what the pipeline lacks.
	Dir, Kind, Reason string
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("pipeline: %s holds %s, which this pipeline does not run: %s", e.Dir, e.Kind, e.Reason)
}

// Unwrap returns ErrUnsupported.
func (e *UnsupportedError) Unwrap() error { return ErrUnsupported }

// modelIndex is what Load reads from model_index.json.
type modelIndex struct {
	ClassName                string `json:"_class_name"`
	ForceZerosForEmptyPrompt *bool  `json:"force_zeros_for_empty_prompt"`
	RequiresAestheticsScore  bool   `json:"requires_aesthetics_score"`
}

// xlLayout reads model_index.json (optional) and the folder's files and
// reports whether dir is an SDXL base model folder. An SDXL refiner
// (requires_aesthetics_score, or text_encoder_2 without text_encoder) is
// an *UnsupportedError.
func (m *Model) xlLayout(dir string) (bool, error) {
	var idx modelIndex
	if _, err := readJSON(dir, ModelIndexPath, &idx); err != nil {
		return false, err
	}
	m.info.Pipeline = idx.ClassName
	has := func(rel string) bool {
		st, err := os.Stat(filepath.Join(dir, rel))
		return err == nil && !st.IsDir()
	}
	xl := strings.Contains(idx.ClassName, "StableDiffusionXL") || has(TextEncoder2Path)
	if !xl {
		return false, nil
	}
	switch {
	case idx.RequiresAestheticsScore:
		return false, &UnsupportedError{Dir: dir, Kind: "an SDXL refiner",
			Reason: "model_index.json sets requires_aesthetics_score (time_ids carry an aesthetic score); the refiner refines latents image to image, and only SDXL base models generate from text here"}
	case has(TextEncoder2Path) && !has(TextEncoderPath):
		return false, &UnsupportedError{Dir: dir, Kind: "an SDXL refiner",
			Reason: "it has text_encoder_2 but no text_encoder; only SDXL base models (both text encoders) generate from text here"}
	}
	m.info.ForceZerosForEmptyPrompt = idx.ForceZerosForEmptyPrompt == nil || *idx.ForceZerosForEmptyPrompt
	return true, nil
}

// penultimate returns the name of the second-to-last hidden_states.N output
// of the text encoder at path (diffusers' hidden_states[-2]), which needs
// the encoder exported with its hidden states, as optimum does for SDXL.
func penultimate(path string, opts []onnx.Option) (string, error) {
	gi, err := onnx.Inspect(path, opts...)
	if err != nil {
		return "", err
	}
	last := -1
	for _, o := range gi.Outputs {
		if s, ok := strings.CutPrefix(o.Name, "hidden_states."); ok {
			if n, err := strconv.Atoi(s); err == nil && n > last {
				last = n
			}
		}
	}
	if last < 1 {
		return "", fmt.Errorf("%s has no hidden_states.N outputs (outputs %s); SDXL conditions on the penultimate hidden states: export the text encoders with them (optimum does)",
			path, strings.Join(tensorNames(gi.Outputs), ", "))
	}
	return "hidden_states." + strconv.Itoa(last-1), nil
}

// openXLTextEncoders loads tokenizer_2 and opens both SDXL text encoders
// with the outputs the pipeline reads: the penultimate hidden states of
// each and text_encoder_2's text_embeds.
func (m *Model) openXLTextEncoders(dir string, opts []onnx.Option) (err error) {
	if m.tok2, err = clip.Load(filepath.Join(dir, Tokenizer2Dir)); err != nil {
		return fmt.Errorf("pipeline: %s: %w", Tokenizer2Dir, err)
	}
	if m.tok2.MaxLength() != m.tok.MaxLength() {
		return fmt.Errorf("pipeline: tokenizer pads to %d tokens, tokenizer_2 to %d; SDXL's two encoders read the same length",
			m.tok.MaxLength(), m.tok2.MaxLength())
	}
	p1 := filepath.Join(dir, TextEncoderPath)
	if m.textOut, err = penultimate(p1, opts); err != nil {
		return fmt.Errorf("pipeline: text encoder: %w", err)
	}
	if m.text, err = onnx.OpenGraph(p1, append(slices.Clip(opts), onnx.WithOutputs(m.textOut))...); err != nil {
		return fmt.Errorf("pipeline: text encoder: %w", err)
	}
	p2 := filepath.Join(dir, TextEncoder2Path)
	if m.text2Out, err = penultimate(p2, opts); err != nil {
		return fmt.Errorf("pipeline: text encoder 2: %w", err)
	}
	if m.text2, err = onnx.OpenGraph(p2, append(slices.Clip(opts), onnx.WithOutputs(m.text2Out, xlPooledOutput))...); err != nil {
		return fmt.Errorf("pipeline: text encoder 2: %w", err)
	}
	m.info.TextEncoder2 = m.text2.Info()
	return nil
}

// checkXL checks the SDXL parts against each other: both encoders take
// [batch, sequence] token ids and give rank-3 states whose widths add up
// to the UNet's encoder_hidden_states width, text_embeds is as wide as the
// UNet's, and time_ids holds 6 values (5 is the refiner's). It sets
// HiddenSize and PooledSize.
func (m *Model) checkXL() error {
	info := &m.info
	ui := info.UNet
	byName := map[string]onnx.TensorInfo{}
	for _, e := range ui.Extra {
		byName[e.Name] = e
	}
	ehs, ok1 := byName["encoder_hidden_states"]
	te, ok2 := byName[xlPooledInput]
	ids, ok3 := byName[xlTimeIDsInput]
	if !ok1 || !ok2 || !ok3 || len(ui.Extra) != 3 {
		return fmt.Errorf("pipeline: %s has extra inputs %v besides %s and %s; an SDXL UNet takes encoder_hidden_states, text_embeds and time_ids",
			UNetPath, tensorNames(ui.Extra), ui.Sample.Name, ui.Timestep.Name)
	}
	m.ehs = ehs.Name
	if len(ids.Dims) != 2 || len(te.Dims) != 2 || len(ehs.Dims) != 3 {
		return fmt.Errorf("pipeline: %s inputs %s, %s, %s, want ranks 3, 2 and 2", UNetPath, ehs, te, ids)
	}
	switch ids.Dims[1] {
	case xlTimeIDs:
	case refinerTimeIDs:
		return &UnsupportedError{Dir: info.Dir, Kind: "an SDXL refiner UNet",
			Reason: fmt.Sprintf("%s input %s takes 5 time_ids (original size, crop, aesthetic score); only SDXL base models generate from text here", UNetPath, ids)}
	default:
		return fmt.Errorf("pipeline: %s input %s, want [batch, 6] time_ids (original size, crop top-left, target size)", UNetPath, ids)
	}
	widths := [2]int64{}
	for k, g := range []*onnx.Graph{m.text, m.text2} {
		path := []string{TextEncoderPath, TextEncoder2Path}[k]
		out := []string{m.textOut, m.text2Out}[k]
		gi := g.Info()
		if len(gi.Inputs) != 1 || gi.Inputs[0].Name != "input_ids" || len(gi.Inputs[0].Dims) != 2 ||
			(gi.Inputs[0].DType != onnx.Int32 && gi.Inputs[0].DType != onnx.Int64) {
			return fmt.Errorf("pipeline: %s has inputs %v, want one input input_ids [batch, sequence] of int32 or int64 token ids", path, tensorNames(gi.Inputs))
		}
		if d := gi.Inputs[0].Dims[1]; d > 0 && d != int64(info.SequenceLength) {
			return fmt.Errorf("pipeline: %s input %s does not take [batch, %d] token ids", path, gi.Inputs[0], info.SequenceLength)
		}
		o, _ := g.Output(out)
		if len(o.Dims) != 3 || o.Dims[2] <= 0 {
			return fmt.Errorf("pipeline: %s output %s, want [batch, sequence, hidden] with a fixed hidden width", path, o)
		}
		widths[k] = o.Dims[2]
	}
	pooled, _ := m.text2.Output(xlPooledOutput)
	pw := dim(pooled.Dims, 1)
	if len(pooled.Dims) != 2 {
		return fmt.Errorf("pipeline: %s output %s, want [batch, projection]", TextEncoder2Path, pooled)
	}
	if pw <= 0 { // optimum names axis 1 of text_embeds sequence_length
		pw = te.Dims[1]
	}
	if pw <= 0 || (te.Dims[1] > 0 && te.Dims[1] != pw) {
		return fmt.Errorf("pipeline: %s gives text_embeds %s but %s takes %s: parts of different models?", TextEncoder2Path, pooled, UNetPath, te)
	}
	hidden := widths[0] + widths[1]
	if ehs.Dims[2] > 0 && ehs.Dims[2] != hidden {
		return fmt.Errorf("pipeline: the text encoders give %d + %d wide states but the UNet takes %d-wide ones (%s): parts of different models (SDXL: 768 + 1280 = 2048)?",
			widths[0], widths[1], ehs.Dims[2], ehs)
	}
	info.HiddenSize, info.PooledSize, info.SDXL = int(hidden), int(pw), true
	return nil
}

// Conditioning is the text conditioning of prompts for the UNet.
type Conditioning struct {
	// States are the text encoder states [N, SequenceLength, HiddenSize]:
	// last_hidden_state for SD 1.x and 2.x; for SDXL, the penultimate
	// hidden states of text_encoder and text_encoder_2 concatenated along
	// the last axis (diffusers' hidden_states[-2]).
	States *tensor.Dense
	// Pooled is SDXL's pooled embedding [N, PooledSize], text_encoder_2's
	// text_embeds (the UNet's text_embeds input); nil for SD 1.x and 2.x.
	Pooled *tensor.Dense
}

// row returns the conditioning of prompt i, with a batch of 1; it shares
// c's memory.
func (c Conditioning) row(i int) Conditioning {
	one := func(d *tensor.Dense) *tensor.Dense {
		if d == nil {
			return nil
		}
		s := slices.Clone([]int(d.Shape()))
		per := len(d.Float32s()) / s[0]
		s[0] = 1
		return tensor.New(tensor.WithShape(s...), tensor.WithBacking(d.Float32s()[i*per:(i+1)*per]))
	}
	return Conditioning{States: one(c.States), Pooled: one(c.Pooled)}
}

// Encode tokenizes the prompts and runs the text encoders on all of them
// at once, as EncodePrompts, and returns the conditioning the UNet takes:
// the states and, for SDXL, the pooled embedding.
func (m *Model) Encode(ctx context.Context, prompts ...string) (Conditioning, []bool, error) {
	if err := m.usable(); err != nil {
		return Conditioning{}, nil, err
	}
	if len(prompts) == 0 {
		return Conditioning{}, nil, errors.New("pipeline: Encode: no prompts")
	}
	if !m.info.SDXL {
		s, tr, err := m.encodeOne(ctx, prompts, m.tok, m.text, m.textIn, m.textOut, m.info.HiddenSize)
		return Conditioning{States: s}, tr, err
	}
	out1, _ := m.text.Output(m.textOut)
	out2, _ := m.text2.Output(m.text2Out)
	h1, h2 := int(out1.Dims[2]), int(out2.Dims[2])
	s1, tr1, err := m.encodeOne(ctx, prompts, m.tok, m.text, "input_ids", m.textOut, h1)
	if err != nil {
		return Conditioning{}, nil, err
	}
	n, L := len(prompts), m.info.SequenceLength
	ids2, tr2 := tokenize(m.tok2, prompts)
	s2 := tensor.New(tensor.WithShape(n, L, h2), tensor.Of(tensor.Float32))
	pooled := tensor.New(tensor.WithShape(n, m.info.PooledSize), tensor.Of(tensor.Float32))
	if err := m.text2.Run(ctx, map[string]*tensor.Dense{"input_ids": ids2},
		map[string]*tensor.Dense{m.text2Out: s2, xlPooledOutput: pooled}); err != nil {
		return Conditioning{}, nil, fmt.Errorf("pipeline: text encoder 2: %w", err)
	}
	states := make([]float32, n*L*(h1+h2))
	a, b := s1.Float32s(), s2.Float32s()
	for r := range n * L {
		row := states[r*(h1+h2):]
		copy(row[:h1], a[r*h1:(r+1)*h1])
		copy(row[h1:h1+h2], b[r*h2:(r+1)*h2])
	}
	for i := range tr1 {
		tr1[i] = tr1[i] || tr2[i]
	}
	return Conditioning{States: tensor.New(tensor.WithShape(n, L, h1+h2), tensor.WithBacking(states)), Pooled: pooled}, tr1, nil
}

// tokenize returns the padded ids of the prompts [len(prompts), MaxLength]
// as int32 and which were truncated.
func tokenize(tok interface {
	EncodePadded(string) ([]int, bool)
	MaxLength() int
}, prompts []string) (*tensor.Dense, []bool) {
	L := tok.MaxLength()
	ids := make([]int32, 0, len(prompts)*L)
	truncated := make([]bool, len(prompts))
	for i, p := range prompts {
		toks, tr := tok.EncodePadded(p)
		truncated[i] = tr
		for _, id := range toks {
			ids = append(ids, int32(id))
		}
	}
	return tensor.New(tensor.WithShape(len(prompts), L), tensor.WithBacking(ids)), truncated
}

// zeroConditioning returns conditioning of zeros shaped like c (SDXL's
// unconditional branch for an empty negative prompt with
// force_zeros_for_empty_prompt).
func zeroConditioning(c Conditioning) Conditioning {
	z := Conditioning{States: tensor.New(tensor.WithShape(c.States.Shape()...), tensor.Of(tensor.Float32))}
	if c.Pooled != nil {
		z.Pooled = tensor.New(tensor.WithShape(c.Pooled.Shape()...), tensor.Of(tensor.Float32))
	}
	return z
}

// TimeIDs returns the SDXL time_ids of a UNet call whose context carries
// region r (ugo.RegionOf): original size, crop top-left and target size in
// pixels, [orig_h, orig_w, crop_y, crop_x, target_h, target_w], with
//
//	original size = target size = r.Size / r.Scale * vaeScale
//	crop top-left = r.Offset * vaeScale / r.Scale
//
// A call over the whole sample gets the requested image size and crop
// (0, 0), as diffusers' StableDiffusionXLPipeline does by default; Upsample
// Guidance's low-resolution call gets the size the downsampled sample
// stands for (the training size when the factors are the ratio of the
// sizes), not the target's; a tile gets its offset in the image as the
// crop.
func TimeIDs(r ugo.Region, vaeScale int) [6]float32 {
	sy, sx := max(r.Scale[0], 1), max(r.Scale[1], 1)
	h, w := r.Size[0]/sy*vaeScale, r.Size[1]/sx*vaeScale
	return [6]float32{float32(h), float32(w), float32(r.Offset[0] * vaeScale / sy), float32(r.Offset[1] * vaeScale / sx), float32(h), float32(w)}
}

// maxTimeIDs bounds the bindings an xlUNet keeps (a few hundred bytes
// each: the text conditioning is shared).
const maxTimeIDs = 512

// xlUNet is the SDXL UNet under classifier-free guidance: for each call it
// derives time_ids from the call's Region and runs the UNet bound to them
// (bindings are made once per distinct time_ids and kept).
type xlUNet struct {
	m            *Model
	cond, uncond *onnx.Bound // states and pooled bound; uncond nil without CFG
	scale        float64

	mu    sync.Mutex
	byIDs map[[6]float32]ugo.Denoiser
}

// PredictNoise implements ugo.Denoiser.
func (d *xlUNet) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	// The UNet call below checks all the arguments; x's shape is needed
	// first.
	s, err := ugo.CheckSample("x", x)
	if err != nil {
		return err
	}
	h, w := s[len(s)-2], s[len(s)-1]
	r := ugo.RegionOf(ctx, h, w)
	if err := r.Check(h, w); err != nil {
		return fmt.Errorf("pipeline: SDXL UNet call: %w", err)
	}
	model, err := d.model(TimeIDs(r, d.m.info.VAEScale))
	if err != nil {
		return err
	}
	return model.PredictNoise(ctx, dst, x, t)
}

// FillsCPU implements ugo.CPUFiller with the UNet session's answer, so that
// Upsample Guidance over an SDXL UNet schedules its two calls as it does over
// any other ONNX model.
func (d *xlUNet) FillsCPU() bool { return d.cond.FillsCPU() }

// model returns the UNet bound to ids, under CFG when uncond is set.
func (d *xlUNet) model(ids [6]float32) (ugo.Denoiser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m, ok := d.byIDs[ids]; ok {
		return m, nil
	}
	v := tensor.New(tensor.WithShape(1, xlTimeIDs), tensor.WithBacking(slices.Clone(ids[:])))
	c, err := d.cond.With(xlTimeIDsInput, v)
	if err != nil {
		return nil, fmt.Errorf("pipeline: time_ids: %w", err)
	}
	var model ugo.Denoiser = c
	if d.uncond != nil {
		u, err := d.uncond.With(xlTimeIDsInput, v)
		if err != nil {
			return nil, fmt.Errorf("pipeline: time_ids: %w", err)
		}
		cfg, err := onnx.BatchedCFG(c, u, d.scale)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		model = cfg
		if !cfg.Batched() {
			model = guidance.CFG(c, u, d.scale)
		}
	}
	if d.byIDs == nil || len(d.byIDs) >= maxTimeIDs {
		// Jittered tiles give new crops at every step: keep the map bounded.
		d.byIDs = map[[6]float32]ugo.Denoiser{}
	}
	d.byIDs[ids] = model
	return model, nil
}

// xlDenoiser returns the SDXL UNet conditioned on cond (and uncond under
// CFG), before Upsample Guidance.
func (m *Model) xlDenoiser(p *Settings, cond, uncond Conditioning) (ugo.Denoiser, error) {
	bind := func(what string, c Conditioning) (*onnx.Bound, error) {
		if c.States == nil || c.Pooled == nil {
			return nil, fmt.Errorf("pipeline: %s conditioning: an SDXL model needs States and Pooled (from Encode)", what)
		}
		b, err := m.unet.With(m.ehs, c.States)
		if err != nil {
			return nil, fmt.Errorf("pipeline: %s embeddings: %w", what, err)
		}
		if b, err = b.With(xlPooledInput, c.Pooled); err != nil {
			return nil, fmt.Errorf("pipeline: %s pooled embeddings: %w", what, err)
		}
		return b, nil
	}
	d := &xlUNet{m: m, scale: p.GuidanceScale}
	var err error
	if d.cond, err = bind("conditional", cond); err != nil {
		return nil, err
	}
	if p.CFG {
		if d.uncond, err = bind("unconditional", uncond); err != nil {
			return nil, err
		}
	}
	return d, nil
}
