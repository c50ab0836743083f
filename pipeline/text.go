package pipeline

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/onnx"
	"github.com/ugo-diffusion/ugo/pipeline/clip"
)

// EncodePrompts tokenizes the prompts (padded and truncated to the
// tokenizer's length, as diffusers does) and runs the text encoder on all of
// them in one call. It returns the text states, a float32 tensor
// [len(prompts), SequenceLength, HiddenSize] (last_hidden_state; for SDXL
// both encoders' penultimate hidden states concatenated, see Encode, which
// also returns SDXL's pooled embedding), and for each prompt whether it was
// truncated (CLIP reads at most 75 tokens).
func (m *Model) EncodePrompts(ctx context.Context, prompts ...string) (*tensor.Dense, []bool, error) {
	c, tr, err := m.Encode(ctx, prompts...)
	return c.States, tr, err
}

// encodeOne runs one text encoder on the prompts tokenized by tok and
// returns its output out, [len(prompts), SequenceLength, hidden].
func (m *Model) encodeOne(ctx context.Context, prompts []string, tok *clip.Tokenizer, g *onnx.Graph, in, out string, hidden int) (*tensor.Dense, []bool, error) {
	ids, truncated := tokenize(tok, prompts)
	states := tensor.New(tensor.WithShape(len(prompts), m.info.SequenceLength, hidden), tensor.Of(tensor.Float32))
	if err := g.Run(ctx, map[string]*tensor.Dense{in: ids}, map[string]*tensor.Dense{out: states}); err != nil {
		return nil, nil, fmt.Errorf("pipeline: text encoder: %w", err)
	}
	return states, truncated, nil
}
