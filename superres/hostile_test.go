package superres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// TestNilModel: a nil *Model (a failed Open) returns errors, not panics.
func TestNilModel(t *testing.T) {
	var m *Model
	x := tensor.New(tensor.WithShape(1, 3, 4, 4), tensor.WithBacking(make([]float32, 48)))
	_, err := m.Upscale(context.Background(), x)
	require.ErrorIs(t, err, ugo.ErrNilDenoiser, "Upscale")
	dst := tensor.New(tensor.WithShape(1, 3, 8, 8), tensor.WithBacking(make([]float32, 192)))
	require.ErrorIs(t, m.UpscaleTo(context.Background(), dst, x), ugo.ErrNilDenoiser, "UpscaleTo")
	require.Zero(t, m.Scale())
	require.Equal(t, Options{}, m.Options())
	require.NoError(t, m.Close())
}
