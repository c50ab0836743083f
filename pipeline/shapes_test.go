package pipeline

import (
	"context"
	"math"
	"testing"

	"github.com/ugo-diffusion/ugo/onnx"
)

// TestShapeSessionsGenerate loads the trained latent model with and without
// shape-specialised sessions for its three models (onnx.WithShapeSessions
// through WithONNXOptions) and generates at 2x with Upsample Guidance and
// batched classifier-free guidance: the same image within 1e-4 (1.1e-5
// measured), every call shape having a session of its own.
func TestShapeSessionsGenerate(t *testing.T) {
	req := Request{Prompt: "a photo of a sneaker", Width: 64, Height: 64, Steps: 4, Seed: 3}
	var pixels [][]float32
	var models []*Model
	for _, spec := range []bool{false, true} {
		var opts []Option
		if spec {
			opts = append(opts, WithONNXOptions(onnx.WithShapeSessions(4)))
		}
		m := load(t, ldmDir("fashion_ldm_eps"), opts...)
		res, err := m.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		pixels = append(pixels, res.Pixels.Float32s())
		models = append(models, m)
	}
	worst := 0.0
	for i := range pixels[0] {
		worst = max(worst, math.Abs(float64(pixels[0][i])-float64(pixels[1][i])))
	}
	if worst > 1e-4 {
		t.Errorf("images with and without shape sessions differ by %g", worst)
	}
	t.Logf("largest pixel difference %g", worst)
	if n := len(models[0].unet.ShapeSessions()) + len(models[0].text.ShapeSessions()) + len(models[0].vae.ShapeSessions()); n != 0 {
		t.Errorf("%d shape sessions without the option", n)
	}
	for name, g := range map[string]*onnx.Graph{"text encoder": models[1].text, "VAE decoder": models[1].vae} {
		if ss := g.ShapeSessions(); len(ss) != 1 || ss[0].Err != nil {
			t.Errorf("%s shape sessions %+v, want one that works", name, ss)
		}
	}
	// The UNet runs at the full (2 x 4 x 16 x 16, the CFG batch) and the low
	// (2 x 4 x 8 x 8) resolution.
	ss := models[1].unet.ShapeSessions()
	if len(ss) != 2 {
		t.Fatalf("UNet shape sessions %+v, want 2", ss)
	}
	for _, s := range ss {
		if s.Err != nil || s.Inputs[0].Dims[0] != 2 {
			t.Errorf("UNet shape session %v: %v", s.Inputs, s.Err)
		}
	}
}
