package pipeline

import (
	"context"
	"errors"
	"fmt"

	"gorgonia.org/tensor"
)

// EncodePrompts tokenizes the prompts (padded and truncated to the
// tokenizer's length, as diffusers does) and runs the text encoder on all of
// them in one call. It returns last_hidden_state, a float32 tensor
// [len(prompts), SequenceLength, HiddenSize], and for each prompt whether it
// was truncated (CLIP reads at most 75 tokens).
func (m *Model) EncodePrompts(ctx context.Context, prompts ...string) (*tensor.Dense, []bool, error) {
	if err := m.usable(); err != nil {
		return nil, nil, err
	}
	if len(prompts) == 0 {
		return nil, nil, errors.New("pipeline: EncodePrompts: no prompts")
	}
	L := m.info.SequenceLength
	ids := make([]int32, 0, len(prompts)*L)
	truncated := make([]bool, len(prompts))
	for i, p := range prompts {
		toks, tr := m.tok.EncodePadded(p)
		truncated[i] = tr
		for _, id := range toks {
			ids = append(ids, int32(id))
		}
	}
	in := tensor.New(tensor.WithShape(len(prompts), L), tensor.WithBacking(ids))
	out := tensor.New(tensor.WithShape(len(prompts), L, m.info.HiddenSize), tensor.Of(tensor.Float32))
	if err := m.text.Run(ctx, map[string]*tensor.Dense{m.textIn: in}, map[string]*tensor.Dense{m.textOut: out}); err != nil {
		return nil, nil, fmt.Errorf("pipeline: text encoder: %w", err)
	}
	return out, truncated, nil
}
