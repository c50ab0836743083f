package modelcall

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func dense(shape ...int) *tensor.Dense {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, n)))
}

func TestCallReturnsErrorAndReRaisesPanic(t *testing.T) {
	boom := errors.New("boom")
	var c Call
	c.Ctx, c.Model, c.Dst, c.X, c.T = context.Background(), ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error {
		return boom
	}), dense(1, 1, 2, 2), dense(1, 1, 2, 2), []float32{1}
	c.Start()
	require.ErrorIs(t, c.Wait(), boom)
	require.Nil(t, c.Ctx, "Wait clears the references the call held")
	require.Nil(t, c.X)

	c.Ctx, c.Model, c.Dst, c.X, c.T = context.Background(), ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error {
		panic("model panic")
	}), dense(1, 1, 2, 2), dense(1, 1, 2, 2), []float32{1}
	c.Start()
	require.PanicsWithValue(t, "model panic", func() { _ = c.Wait() })

	// The Call is reusable after a panic, and a successful call returns nil.
	c.Ctx, c.Model, c.Dst, c.X, c.T = context.Background(), ugo.DenoiserFunc(func(_ context.Context, dst, _ *tensor.Dense, _ []float32) error {
		dst.Float32s()[0] = 7
		return nil
	}), dense(1, 1, 2, 2), dense(1, 1, 2, 2), []float32{1}
	dst := c.Dst
	c.Start()
	require.NoError(t, c.Wait())
	require.Equal(t, float32(7), dst.Float32s()[0])
}

func TestFreeListKeysByShape(t *testing.T) {
	var f FreeList[*int]
	_, ok := f.Get([]int{1, 2, 3, 4})
	require.False(t, ok)
	a, b := new(int), new(int)
	f.Put([]int{1, 2, 3, 4}, a)
	f.Put([]int{1, 2, 4, 3}, b)
	_, ok = f.Get([]int{1, 2, 3, 4, 1})
	require.False(t, ok, "rank is part of the key")
	got, ok := f.Get([]int{1, 2, 3, 4})
	require.True(t, ok)
	require.Same(t, a, got)
	_, ok = f.Get([]int{1, 2, 3, 4})
	require.False(t, ok, "a workspace is handed out once")
	got, ok = f.Get([]int{1, 2, 4, 3})
	require.True(t, ok)
	require.Same(t, b, got)
}

func TestCheck(t *testing.T) {
	x, dst := dense(2, 1, 4, 4), dense(2, 1, 4, 4)
	shape, err := Check("test", dst, x, []float32{1, 2})
	require.NoError(t, err)
	require.Equal(t, []int{2, 1, 4, 4}, shape)
	allocs := testing.AllocsPerRun(100, func() { _, _ = Check("test", dst, x, []float32{1}) })
	require.Zero(t, allocs, "the fast path allocates nothing")

	for name, c := range map[string]struct {
		dst, x *tensor.Dense
		t      []float32
	}{
		"nil x":          {dst, nil, []float32{1}},
		"shape mismatch": {dense(2, 1, 4, 2), x, []float32{1}},
		"rank 3":         {dense(1, 4, 4), dense(1, 4, 4), []float32{1}},
		"timesteps":      {dst, x, []float32{1, 2, 3}},
		"aliased":        {x, x, []float32{1}},
	} {
		_, err := Check("test", c.dst, c.x, c.t)
		require.Error(t, err, name)
	}
}
