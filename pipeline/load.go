package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ugo-diffusion/ugo"
	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline/clip"
	"github.com/ugo-diffusion/ugo/schedule"
)

// Stable Diffusion 1.x defaults, used when the folder has no config saying
// otherwise.
const (
	// DefaultScalingFactor is the VAE latent scaling factor of SD 1.x and
	// 2.x (vae/config.json "scaling_factor").
	DefaultScalingFactor = 0.18215
	// DefaultSampleSize is SD 1.x's training resolution in pixels.
	DefaultSampleSize = 512
	// DefaultVAEScale is how many pixels one latent pixel decodes to.
	DefaultVAEScale = 8
	// DefaultLatentChannels is the number of latent channels.
	DefaultLatentChannels = 4
)

// Paths of the parts of a model folder, relative to it: the layout of
// diffusers' OnnxStableDiffusionPipeline.save_pretrained and of optimum's
// ONNX export.
const (
	SchedulerConfigPath = "scheduler/scheduler_config.json"
	TokenizerDir        = "tokenizer"
	TextEncoderPath     = "text_encoder/model.onnx"
	UNetPath            = "unet/model.onnx"
	VAEDecoderPath      = "vae_decoder/model.onnx"
)

// The outputs used: diffusers' and optimum's names.
const (
	textOutput = "last_hidden_state"
	vaeOutput  = "sample"
)

// Option configures Load.
type Option func(*loadConfig)

type loadConfig struct {
	onnx       []onnx.Option
	scaling    float64
	sampleSize int
	logger     *slog.Logger
	unetWrap   func(ugo.Denoiser) ugo.Denoiser
}

// WithONNXOptions passes options (threads, execution providers, fallback
// policy, library path) to every ONNX Runtime session the model opens.
func WithONNXOptions(opts ...onnx.Option) Option {
	return func(c *loadConfig) { c.onnx = append(c.onnx, opts...) }
}

// WithScalingFactor overrides the VAE latent scaling factor read from the
// folder (or DefaultScalingFactor).
func WithScalingFactor(f float64) Option {
	return func(c *loadConfig) { c.scaling = f }
}

// WithSampleSize overrides the resolution, in pixels, the model was trained
// at (see Load for where it comes from otherwise). Upsample Guidance's
// automatic factors are the requested size divided by it, and a request
// without a size samples at it.
func WithSampleSize(pixels int) Option {
	return func(c *loadConfig) { c.sampleSize = pixels }
}

// WithLogger sets where Load's warnings go (the default is slog.Default()):
// for now the one that the training size was not found in the folder and
// DefaultSampleSize is assumed.
func WithLogger(l *slog.Logger) Option {
	return func(c *loadConfig) { c.logger = l }
}

// WithUNetMiddleware wraps the UNet of every run in wrap, between
// classifier-free guidance and Upsample Guidance: wrap receives the
// denoiser that runs the UNet on both prompts and combines them, and what
// it returns is what Upsample Guidance calls, at the full and at the low
// resolution. It serves instrumentation (timing or counting UNet calls) and
// denoiser middleware of one's own. A wrapper should implement
// ugo.CPUFiller with the wrapped denoiser's answer, so that Upsample
// Guidance keeps choosing how to schedule its two calls. nil removes a
// wrapper set earlier.
func WithUNetMiddleware(wrap func(ugo.Denoiser) ugo.Denoiser) Option {
	return func(c *loadConfig) { c.unetWrap = wrap }
}

// Info describes a loaded model.
type Info struct {
	// Dir is the model folder.
	Dir string
	// TextEncoder and VAEDecoder describe those graphs; UNet the denoiser.
	TextEncoder, VAEDecoder onnx.GraphInfo
	UNet                    onnx.ModelInfo
	// Scheduler is the parsed scheduler/scheduler_config.json.
	Scheduler schedule.Config
	// ScalingFactor is the VAE latent scaling factor in use, and
	// ScalingFactorSource where it came from (a file, "default" or "option").
	ScalingFactor       float64
	ScalingFactorSource string
	// SampleSize is the training resolution in pixels, and
	// SampleSizeSource where it came from: a config file
	// ("unet/config.json", "vae_decoder/config.json", "vae/config.json"),
	// the UNet graph's fixed sample size ("unet/model.onnx"), an inference
	// ("inferred: ..."), "option" (WithSampleSize) or "default"
	// (DefaultSampleSize, with a warning).
	SampleSize       int
	SampleSizeSource string
	// VAEScale is the number of pixels per latent pixel along each axis.
	VAEScale int
	// LatentChannels is the number of latent channels.
	LatentChannels int
	// LatentMultiple is the number the latent height and width must be
	// multiples of for the UNet: 2^(len(block_out_channels)-1) from
	// unet/config.json (8 for SD 1.x and 2.x), or 1 when the file does not
	// say. Resolve refuses other sizes.
	LatentMultiple int
	// HiddenSize is the width of the text encoder's states (768 for SD 1.x,
	// 1024 for SD 2.x, 768 + 1280 = 2048 for SDXL's two encoders), and
	// SequenceLength the tokenizer's padded length.
	HiddenSize, SequenceLength int
	// Pipeline is model_index.json's _class_name ("" without the file).
	Pipeline string
	// SDXL reports a Stable Diffusion XL base model: two text encoders
	// and a UNet that also takes text_embeds and time_ids. TextEncoder2
	// describes text_encoder_2 and PooledSize is the width of its
	// text_embeds (1280); ForceZerosForEmptyPrompt is model_index.json's
	// force_zeros_for_empty_prompt (true when absent, diffusers' default).
	SDXL                     bool
	TextEncoder2             onnx.GraphInfo
	PooledSize               int
	ForceZerosForEmptyPrompt bool
}

// Model is a Stable Diffusion-style latent text-to-image model loaded from
// an ONNX folder. It is safe for concurrent use; Close releases it.
type Model struct {
	info  Info
	tok   *clip.Tokenizer
	tok2  *clip.Tokenizer // SDXL's tokenizer_2
	text  *onnx.Graph
	text2 *onnx.Graph // SDXL's text_encoder_2
	unet  *onnx.Model
	vae   *onnx.Graph
	sched *schedule.Schedule

	textIn, textOut string // text encoder input and output names
	text2Out        string // text_encoder_2's penultimate hidden states
	vaeIn, vaeOut   string // VAE decoder input and output names
	ehs             string // the UNet's text-state input

	// hook, when set (WithUNetMiddleware, tests), wraps the
	// classifier-free-guided UNet before Upsample Guidance.
	hook func(ugo.Denoiser) ugo.Denoiser
}

// Limits on what a model folder's configuration may declare. Real models
// are far inside them; they keep a corrupted or hostile file from turning
// into a division by zero, an overflow or an absurd allocation.
const (
	// MaxSampleSize bounds the training size, and Request.Width and
	// Height, in pixels.
	MaxSampleSize = 1 << 16
	// MaxLatentChannels bounds the latent channels of vae/config.json.
	MaxLatentChannels = 1024
	// MaxScalingFactor bounds the VAE scaling factor.
	MaxScalingFactor = 1e6
)

// ConfigError reports a value in a model folder's configuration files (or
// a Load option) that the pipeline cannot use: a size that is not a positive
// multiple of the VAE scale, a count beyond the limits above, a malformed
// file.
type ConfigError struct {
	// File is the file, relative to the folder, or "option" for a Load
	// option; Field the key; Value the offending value.
	File, Field string
	Value       any
	// Want describes what is accepted.
	Want string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("pipeline: %s: %s = %v, want %s", e.File, e.Field, e.Value, e.Want)
}

// MissingError reports the files a model folder lacks.
type MissingError struct {
	// Dir is the folder; Missing lists what is missing, relative to it.
	Dir     string
	Missing []string
}

// Error implements error.
func (e *MissingError) Error() string {
	return fmt.Sprintf("pipeline: %s is not a complete Stable Diffusion ONNX folder: missing %s",
		e.Dir, strings.Join(e.Missing, ", "))
}

// Load opens the model folder dir, in the layout of diffusers'
// OnnxStableDiffusionPipeline and optimum's ONNX export:
//
//	scheduler/scheduler_config.json
//	tokenizer/vocab.json + tokenizer/merges.txt (or tokenizer/tokenizer.json)
//	text_encoder/model.onnx   input_ids -> last_hidden_state
//	unet/model.onnx           sample, timestep, encoder_hidden_states -> out_sample
//	vae_decoder/model.onnx    latent_sample -> sample
//
// vae_encoder/, safety_checker/, feature_extractor/ and model_index.json are
// not needed. Weights stored as external data (unet/weights.pb,
// model.onnx_data) are read from beside each model. Optional config.json
// files give the VAE scaling factor (vae_decoder/config.json or
// vae/config.json "scaling_factor") and the VAE scale
// (2^(len(block_out_channels)-1)); without them SD 1.x values are used.
//
// The training size (Info.SampleSize) is, in order: WithSampleSize;
// unet/config.json "sample_size" times the VAE scale; the VAE config's
// "sample_size"; the UNet graph's fixed height and width; 768 for a
// 1024-wide text encoder with prediction_type v_prediction (Stable
// Diffusion 2.x 768-v, whose folders from diffusers' conversion script
// carry no config.json); else DefaultSampleSize, with a warning through
// WithLogger's logger. Info.SampleSizeSource says which.
//
// SDXL folders (text_encoder_2/model.onnx, or a StableDiffusionXL class
// in model_index.json) also need tokenizer_2/ and text_encoder_2/ and a
// UNet taking text_embeds and time_ids; see the package documentation. The
// SDXL refiner is refused with an *UnsupportedError.
//
// A folder lacking files is a *MissingError listing all of them. Models
// whose inputs, outputs or sizes do not fit together (a 1024-wide SD 2 text
// encoder with a 768-wide SD 1 UNet, an inpainting UNet, a UNet with extra
// inputs other than SDXL's) are rejected with an error naming the parts.
func Load(dir string, opts ...Option) (_ *Model, err error) {
	cfg := &loadConfig{}
	for _, o := range opts {
		o(cfg)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: model folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("pipeline: model folder %s is not a directory", dir)
	}
	m := &Model{info: Info{Dir: dir}, hook: cfg.unetWrap}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	xl, err := m.xlLayout(dir)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(dir, xl); err != nil {
		return nil, err
	}
	sc, err := schedule.LoadConfig(filepath.Join(dir, SchedulerConfigPath))
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", SchedulerConfigPath, err)
	}
	if m.sched, err = sc.Schedule(); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", SchedulerConfigPath, err)
	}
	m.info.Scheduler = *sc
	if m.tok, err = clip.Load(filepath.Join(dir, TokenizerDir)); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	m.info.SequenceLength = m.tok.MaxLength()
	if err := m.readConfigs(dir, cfg); err != nil {
		return nil, err
	}

	if xl {
		if err := m.openXLTextEncoders(dir, cfg.onnx); err != nil {
			return nil, err
		}
	} else if m.text, err = onnx.OpenGraph(filepath.Join(dir, TextEncoderPath), append(slices.Clip(cfg.onnx), onnx.WithOutputs(textOutput))...); err != nil {
		return nil, fmt.Errorf("pipeline: text encoder: %w", err)
	}
	unetOpts := cfg.onnx
	if k := m.info.LatentMultiple; k > 1 {
		unetOpts = append(slices.Clip(unetOpts), onnx.WithSpatialMultiple(k))
	}
	if m.unet, err = onnx.Open(filepath.Join(dir, UNetPath), unetOpts...); err != nil {
		return nil, fmt.Errorf("pipeline: unet: %w", err)
	}
	if m.vae, err = onnx.OpenGraph(filepath.Join(dir, VAEDecoderPath), append(slices.Clip(cfg.onnx), onnx.WithOutputs(vaeOutput))...); err != nil {
		return nil, fmt.Errorf("pipeline: vae decoder: %w", err)
	}
	m.info.TextEncoder, m.info.UNet, m.info.VAEDecoder = m.text.Info(), m.unet.Info(), m.vae.Info()
	if err := m.checkGraphs(dir, xl); err != nil {
		return nil, err
	}
	m.inferSampleSize(cfg)
	return m, nil
}

// inferSampleSize sets the training size where no config file or option
// gave it: from the UNet graph's fixed height and width, else from the
// model family (a 1024-wide text encoder with v-prediction is SD 2.x 768-v,
// trained at 768), else DefaultSampleSize with a warning.
func (m *Model) inferSampleSize(cfg *loadConfig) {
	info := &m.info
	if info.SampleSizeSource != "" {
		return
	}
	if d := info.UNet.Sample.Dims; len(d) == 4 && d[2] > 0 && d[2] == d[3] && d[2] <= int64(MaxSampleSize/info.VAEScale) {
		info.SampleSize, info.SampleSizeSource = int(d[2])*info.VAEScale, UNetPath
		return
	}
	if info.HiddenSize == 1024 && info.Scheduler.PredictionType == schedule.PredictV {
		info.SampleSize = 768
		info.SampleSizeSource = "inferred: a 1024-wide text encoder with v_prediction is Stable Diffusion 2.x 768-v"
		return
	}
	info.SampleSize, info.SampleSizeSource = DefaultSampleSize, "default"
	logger := cfg.logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.Warn("pipeline: the model folder does not say the training size (no unet/config.json sample_size, "+
		"no vae config sample_size, a dynamic UNet graph); assuming 512 px, set it with WithSampleSize or -sample-size",
		"dir", info.Dir, "text_encoder_width", info.HiddenSize, "prediction_type", info.Scheduler.PredictionType)
}

// checkFiles lists every required file that is missing (with SDXL's
// text_encoder_2 and tokenizer_2 when xl).
func checkFiles(dir string, xl bool) error {
	var missing []string
	exists := func(rel string) bool {
		st, err := os.Stat(filepath.Join(dir, rel))
		return err == nil && !st.IsDir()
	}
	files := []string{SchedulerConfigPath, TextEncoderPath, UNetPath, VAEDecoderPath}
	toks := []string{TokenizerDir}
	if xl {
		files = append(files, TextEncoder2Path)
		toks = append(toks, Tokenizer2Dir)
	}
	for _, rel := range files {
		if !exists(rel) {
			missing = append(missing, rel)
		}
	}
	for _, tok := range toks {
		tokJSON := exists(tok + "/tokenizer.json")
		for _, rel := range []string{tok + "/vocab.json", tok + "/merges.txt"} {
			if !exists(rel) && !tokJSON {
				missing = append(missing, rel+" (or "+tok+"/tokenizer.json)")
			}
		}
	}
	if len(missing) > 0 {
		return &MissingError{Dir: dir, Missing: missing}
	}
	return nil
}

// readJSON reads dir/rel into v; it reports false when the file is absent.
func readJSON(dir, rel string, v any) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pipeline: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("pipeline: %s: %w", rel, err)
	}
	return true, nil
}

// readConfigs sets the scaling factor, VAE scale, latent channels and
// sample size from the optional config.json files and the options.
func (m *Model) readConfigs(dir string, cfg *loadConfig) error {
	var vae struct {
		ScalingFactor    *float64 `json:"scaling_factor"`
		BlockOutChannels []int    `json:"block_out_channels"`
		LatentChannels   int      `json:"latent_channels"`
		SampleSize       int      `json:"sample_size"`
	}
	vaeFile := ""
	for _, rel := range []string{"vae_decoder/config.json", "vae/config.json"} {
		ok, err := readJSON(dir, rel, &vae)
		if err != nil {
			return err
		}
		if ok {
			vaeFile = rel
			break
		}
	}
	var unet struct {
		SampleSize       json.RawMessage `json:"sample_size"`
		InChannels       int             `json:"in_channels"`
		BlockOutChannels []int           `json:"block_out_channels"`
	}
	if _, err := readJSON(dir, "unet/config.json", &unet); err != nil {
		return err
	}
	info := &m.info
	info.ScalingFactor, info.ScalingFactorSource = DefaultScalingFactor, "default"
	if vae.ScalingFactor != nil {
		info.ScalingFactor, info.ScalingFactorSource = *vae.ScalingFactor, vaeFile
	}
	if cfg.scaling != 0 {
		info.ScalingFactor, info.ScalingFactorSource = cfg.scaling, "option"
	}
	if f := info.ScalingFactor; !(f > 0 && f <= MaxScalingFactor) {
		return &ConfigError{File: info.ScalingFactorSource, Field: "scaling_factor", Value: f,
			Want: fmt.Sprintf("a positive number up to %g (SD 1.x and 2.x use 0.18215)", float64(MaxScalingFactor))}
	}
	info.VAEScale = DefaultVAEScale
	if n := len(vae.BlockOutChannels); n > 0 && n < 8 {
		info.VAEScale = 1 << (n - 1)
	} else if n >= 8 {
		return &ConfigError{File: vaeFile, Field: "block_out_channels", Value: vae.BlockOutChannels, Want: "1 to 7 entries"}
	}
	info.LatentChannels = DefaultLatentChannels
	if vae.LatentChannels != 0 {
		if vae.LatentChannels < 0 || vae.LatentChannels > MaxLatentChannels {
			return &ConfigError{File: vaeFile, Field: "latent_channels", Value: vae.LatentChannels, Want: fmt.Sprintf("1 to %d", MaxLatentChannels)}
		}
		info.LatentChannels = vae.LatentChannels
	}
	info.LatentMultiple = 1
	if n := len(unet.BlockOutChannels); n > 0 && n <= 8 {
		info.LatentMultiple = 1 << (n - 1)
	} else if n > 8 {
		return &ConfigError{File: "unet/config.json", Field: "block_out_channels", Value: unet.BlockOutChannels, Want: "1 to 8 entries"}
	}
	if unet.InChannels > 0 && unet.InChannels != info.LatentChannels {
		return fmt.Errorf("pipeline: unet/config.json in_channels %d != %d latent channels: an inpainting or other non-text-to-image UNet?",
			unet.InChannels, info.LatentChannels)
	}
	// Without a config or the option, the size stays DefaultSampleSize
	// with no source until inferSampleSize has seen the graphs.
	info.SampleSize, info.SampleSizeSource = DefaultSampleSize, ""
	var ss int
	if len(unet.SampleSize) > 0 && string(unet.SampleSize) != "null" {
		if err := json.Unmarshal(unet.SampleSize, &ss); err != nil || ss <= 0 || ss > MaxSampleSize/info.VAEScale {
			return &ConfigError{File: "unet/config.json", Field: "sample_size", Value: string(unet.SampleSize),
				Want: fmt.Sprintf("a latent size from 1 to %d", MaxSampleSize/info.VAEScale)}
		}
		info.SampleSize, info.SampleSizeSource = ss*info.VAEScale, "unet/config.json"
	} else if vae.SampleSize != 0 {
		info.SampleSize, info.SampleSizeSource = vae.SampleSize, vaeFile
	}
	if cfg.sampleSize != 0 {
		info.SampleSize, info.SampleSizeSource = cfg.sampleSize, "option"
	}
	if s := info.SampleSize; info.SampleSizeSource != "" && (s < info.VAEScale || s%info.VAEScale != 0 || s > MaxSampleSize) {
		return &ConfigError{File: info.SampleSizeSource, Field: "sample_size", Value: s,
			Want: fmt.Sprintf("a positive multiple of the VAE scale %d up to %d pixels", info.VAEScale, MaxSampleSize)}
	}
	return nil
}

// checkGraphs verifies names, types and the sizes the parts share (SDXL's
// when xl).
func (m *Model) checkGraphs(dir string, xl bool) error {
	info := &m.info
	// Text encoder: input_ids -> last_hidden_state.
	ti := info.TextEncoder
	pick := func(ts []onnx.TensorInfo, want string) string {
		for _, t := range ts {
			if t.Name == want {
				return t.Name
			}
		}
		if len(ts) == 1 {
			return ts[0].Name
		}
		return ""
	}
	if m.textIn = pick(ti.Inputs, "input_ids"); m.textIn == "" || len(ti.Inputs) != 1 {
		return fmt.Errorf("pipeline: %s has inputs %v, want one input input_ids [batch, sequence]", TextEncoderPath, tensorNames(ti.Inputs))
	}
	if !xl {
		m.textOut = textOutput
	}
	in, _ := m.text.Input(m.textIn)
	if in.DType != onnx.Int32 && in.DType != onnx.Int64 {
		return fmt.Errorf("pipeline: %s input %s, want int32 or int64 token ids", TextEncoderPath, in)
	}
	if len(in.Dims) != 2 || (in.Dims[1] > 0 && in.Dims[1] != int64(info.SequenceLength)) {
		return fmt.Errorf("pipeline: %s input %s does not take [batch, %d] token ids (the tokenizer's model_max_length)",
			TextEncoderPath, in, info.SequenceLength)
	}
	out, _ := m.text.Output(m.textOut)
	if len(out.Dims) != 3 {
		return fmt.Errorf("pipeline: %s output %s, want rank 3 [batch, sequence, hidden]", TextEncoderPath, out)
	}
	if out.DType != onnx.Float32 && out.DType != onnx.Float16 {
		return fmt.Errorf("pipeline: %s output %s, want float32 or float16", TextEncoderPath, out)
	}

	// UNet: sample, timestep, encoder_hidden_states -> out_sample.
	ui := info.UNet
	if len(ui.Sample.Dims) != 4 {
		return fmt.Errorf("pipeline: %s sample input %s, want rank 4 [batch, channels, height, width]", UNetPath, ui.Sample)
	}
	if xl {
		if err := m.checkXL(); err != nil {
			return err
		}
	} else if err := m.checkTextWidth(dir, out); err != nil {
		return err
	}
	return m.checkVAE()
}

// checkTextWidth checks the UNet's one extra input, encoder_hidden_states,
// against the text encoder's output out, and sets HiddenSize.
func (m *Model) checkTextWidth(dir string, out onnx.TensorInfo) error {
	info := &m.info
	ui := info.UNet
	if len(ui.Extra) != 1 {
		return fmt.Errorf("pipeline: %s has extra inputs %v besides %s and %s; want exactly encoder_hidden_states "+
			"(SDXL and other UNets with added conditions are not supported)", UNetPath, tensorNames(ui.Extra), ui.Sample.Name, ui.Timestep.Name)
	}
	e := ui.Extra[0]
	m.ehs = e.Name
	if len(e.Dims) != 3 {
		return fmt.Errorf("pipeline: %s input %s, want rank 3 [batch, sequence, hidden]", UNetPath, e)
	}

	// Hidden size: the text encoder's, else the UNet's, else text_encoder/config.json.
	hidden := out.Dims[2]
	if hidden > 0 && e.Dims[2] > 0 && hidden != e.Dims[2] {
		return fmt.Errorf("pipeline: the text encoder gives %d-wide states (%s) but the UNet takes %d-wide ones (%s): "+
			"parts of different models (SD 1.x is 768, SD 2.x 1024)?", hidden, out, e.Dims[2], e)
	}
	if hidden <= 0 {
		hidden = e.Dims[2]
	}
	if hidden <= 0 {
		var tc struct {
			HiddenSize int `json:"hidden_size"`
		}
		if _, err := readJSON(dir, "text_encoder/config.json", &tc); err != nil {
			return err
		}
		hidden = int64(tc.HiddenSize)
	}
	if hidden <= 0 {
		return fmt.Errorf("pipeline: cannot tell the text encoder's hidden size: %s and %s leave it dynamic and there is no text_encoder/config.json hidden_size", out, e)
	}
	info.HiddenSize = int(hidden)
	return nil
}

// checkVAE checks the VAE decoder's input and output and the latent
// channels the UNet, the VAE and the configs share.
func (m *Model) checkVAE() error {
	info := &m.info
	ui := info.UNet
	pick := func(ts []onnx.TensorInfo, want string) string {
		for _, t := range ts {
			if t.Name == want {
				return t.Name
			}
		}
		if len(ts) == 1 {
			return ts[0].Name
		}
		return ""
	}
	vi := info.VAEDecoder
	if m.vaeIn = pick(vi.Inputs, "latent_sample"); m.vaeIn == "" || len(vi.Inputs) != 1 {
		return fmt.Errorf("pipeline: %s has inputs %v, want one input latent_sample", VAEDecoderPath, tensorNames(vi.Inputs))
	}
	m.vaeOut = vaeOutput
	vin, _ := m.vae.Input(m.vaeIn)
	vout, _ := m.vae.Output(m.vaeOut)
	if len(vin.Dims) != 4 || (vin.DType != onnx.Float32 && vin.DType != onnx.Float16) {
		return fmt.Errorf("pipeline: %s input %s, want float [batch, channels, height, width]", VAEDecoderPath, vin)
	}
	if vout.DType != onnx.Float32 && vout.DType != onnx.Float16 {
		return fmt.Errorf("pipeline: %s output %s, want float32 or float16", VAEDecoderPath, vout)
	}
	if len(vout.Dims) == 4 && vout.Dims[1] > 0 && vout.Dims[1] != 3 {
		return fmt.Errorf("pipeline: %s output %s has %d channels, want 3 (RGB)", VAEDecoderPath, vout, vout.Dims[1])
	}
	for _, c := range []struct {
		what string
		d    int64
	}{{UNetPath + " " + ui.Sample.String(), ui.Sample.Dims[1]}, {UNetPath + " " + ui.Output.String(), dim(ui.Output.Dims, 1)}, {VAEDecoderPath + " " + vin.String(), vin.Dims[1]}} {
		if c.d > 0 && c.d != int64(info.LatentChannels) {
			return fmt.Errorf("pipeline: %s has %d latent channels, want %d (the VAE's): an inpainting or other non-text-to-image model?",
				c.what, c.d, info.LatentChannels)
		}
	}
	return nil
}

func dim(d []int64, i int) int64 {
	if i < len(d) {
		return d[i]
	}
	return -1
}

func tensorNames(ts []onnx.TensorInfo) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

// errNilModel is returned by the methods of a nil *Model (what a failed
// Load returns).
var errNilModel = fmt.Errorf("pipeline: nil Model (a failed Load?): %w", ugo.ErrNilDenoiser)

// usable reports a nil or unloaded model.
func (m *Model) usable() error {
	if m == nil || m.unet == nil || m.text == nil || m.vae == nil || m.tok == nil || m.sched == nil {
		return errNilModel
	}
	return nil
}

// Info describes the loaded model.
func (m *Model) Info() Info {
	if m == nil {
		return Info{}
	}
	i := m.info
	i.Scheduler.TrainedBetas = slices.Clone(i.Scheduler.TrainedBetas)
	return i
}

// Tokenizer returns the model's CLIP tokenizer.
func (m *Model) Tokenizer() *clip.Tokenizer {
	if m == nil {
		return nil
	}
	return m.tok
}

// Schedule returns the training noise schedule of scheduler_config.json.
func (m *Model) Schedule() *schedule.Schedule {
	if m == nil {
		return nil
	}
	return m.sched
}

// Close releases the model's ONNX Runtime sessions.
func (m *Model) Close() error {
	if m == nil {
		return nil
	}
	var errs []error
	if m.text != nil {
		errs = append(errs, m.text.Close())
	}
	if m.text2 != nil {
		errs = append(errs, m.text2.Close())
	}
	if m.unet != nil {
		errs = append(errs, m.unet.Close())
	}
	if m.vae != nil {
		errs = append(errs, m.vae.Close())
	}
	return errors.Join(errs...)
}
