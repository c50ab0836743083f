package noise

import (
	"slices"
	"testing"
)

// mustPanic reports whether f panics.
func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", name)
		}
	}()
	f()
}

// PerImage draws each image's part from its own source, one call per part,
// so an image's noise does not depend on the batch.
func TestPerImage(t *testing.T) {
	for i, seed := range []uint64{1, 2, 3} {
		want := make([]float32, 40)
		NewTorchCPU(seed).Normal(want)
		fresh := make([]float32, 3*40)
		PerImage(TorchSeeds(1, 2, 3)...).Normal(fresh)
		if !slices.Equal(want, fresh[i*40:(i+1)*40]) {
			t.Errorf("image %d: batch draw differs from its own source", i)
		}
	}
	one := TorchSeeds(7)
	if PerImage(one...) != one[0] {
		t.Error("a single source is not returned as it is")
	}
	mustPanic(t, "no sources", func() { PerImage() })
	mustPanic(t, "nil source", func() { PerImage(nil) })
	mustPanic(t, "uneven split", func() { PerImage(TorchSeeds(1, 2)...).Normal(make([]float32, 5)) })
}

// Successive draws continue each image's stream: the second draw of a
// batch equals the second call on the image's own source.
func TestPerImageContinues(t *testing.T) {
	batch := PerImage(TorchSeeds(4, 5)...)
	first, second := make([]float32, 2*32), make([]float32, 2*32)
	batch.Normal(first)
	batch.Normal(second)
	for i, seed := range []uint64{4, 5} {
		src := NewTorchCPU(seed)
		a, b := make([]float32, 32), make([]float32, 32)
		src.Normal(a)
		src.Normal(b)
		if !slices.Equal(a, first[i*32:(i+1)*32]) || !slices.Equal(b, second[i*32:(i+1)*32]) {
			t.Errorf("image %d: the batch's draws differ from its own source's", i)
		}
	}
}
