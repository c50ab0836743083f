package video

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestSettingFactors(t *testing.T) {
	want := map[string][]int{
		"8f 28 native": {1, 1, 1}, "16f 28 plain": {2, 1, 1}, "16f 28 UG [2,1,1]": {2, 1, 1},
		"8f 56 plain": {1, 2, 2}, "8f 56 UG [1,2,2]": {1, 2, 2}, "16f 56 plain": {2, 2, 2}, "16f 56 UG [2,2,2]": {2, 2, 2},
	}
	for _, s := range Settings() {
		f, err := s.Factors()
		require.NoError(t, err)
		require.Equal(t, want[s.Name], f, s.Name)
	}
	for _, s := range []Setting{{Frames: 12, Size: 28}, {Frames: 8, Size: 42}, {Frames: 0, Size: 28}, {Frames: 8, Size: -28}} {
		_, err := s.Factors()
		require.Error(t, err, "%+v", s)
	}
}

func TestFrames28(t *testing.T) {
	x := tensor.New(tensor.WithShape(1, 1, 2, 56, 56), tensor.Of(tensor.Float32))
	d := x.Float32s()
	for i := range d {
		d[i] = float32(i / (56 * 56)) // frame index
	}
	out, err := Frames28(x)
	require.NoError(t, err)
	require.Len(t, out, 2*28*28)
	require.Equal(t, float32(0), out[0])
	require.Equal(t, float32(1), out[28*28+5])
	_, err = Frames28(tensor.New(tensor.WithShape(1, 1, 2, 30, 30), tensor.Of(tensor.Float32)))
	require.Error(t, err)
}
