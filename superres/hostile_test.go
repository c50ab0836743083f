package superres

import (
	"context"
	"errors"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// TestNilModel: a nil *Model (a failed Open) returns errors, not panics.
func TestNilModel(t *testing.T) {
	var m *Model
	x := tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.WithBacking(make([]float32, 48)))
	if _, err := m.Upscale(context.Background(), x); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("Upscale: %v", err)
	}
	dst := tensor.New(tensor.WithShape(1, 3, 8, 8), tensor.WithBacking(make([]float32, 192)))
	if err := m.UpscaleTo(context.Background(), dst, x); !errors.Is(err, ugo.ErrNilDenoiser) {
		t.Fatalf("UpscaleTo: %v", err)
	}
	if m.Scale() != 0 || m.Options() != (Options{}) || m.Close() != nil {
		t.Fatal("nil Model accessors")
	}
}
