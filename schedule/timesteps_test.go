package schedule

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTimestepsTable(t *testing.T) {
	tests := []struct {
		T, n    int
		spacing Spacing
		offset  int
		want    []int
	}{
		{1000, 5, Leading, 1, []int{801, 601, 401, 201, 1}},
		{1000, 5, Leading, 0, []int{800, 600, 400, 200, 0}},
		{1000, 3, Leading, 0, []int{666, 333, 0}},
		{1000, 3, Trailing, 0, []int{999, 666, 332}},
		{1000, 3, Trailing, 7, []int{999, 666, 332}}, // offset ignored
		{1000, 5, Trailing, 0, []int{999, 799, 599, 399, 199}},
		{1000, 5, Linspace, 0, []int{999, 749, 500, 250, 0}},
		{1000, 4, Linspace, 0, []int{999, 666, 333, 0}},
		{1000, 1, Linspace, 0, []int{0}},
		{1000, 1, Leading, 0, []int{0}},
		{1000, 1, Trailing, 0, []int{999}},
		{1000, 13, Trailing, 0, []int{999, 922, 845, 768, 691, 614, 537, 461, 384, 307, 230, 153, 76}},
		// NumPy appends a 14th timestep, -1, here; it is dropped.
		{999, 13, Trailing, 0, []int{998, 921, 844, 767, 691, 614, 537, 460, 383, 306, 230, 153, 76}},
		{10, 10, Leading, 0, []int{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{10, 4, Linspace, 0, []int{9, 6, 3, 0}},
		{1, 1, Trailing, 0, []int{0}},
	}
	for _, tt := range tests {
		got, err := Timesteps(tt.T, tt.n, tt.spacing, tt.offset)
		if err != nil {
			t.Errorf("Timesteps(%d, %d, %s, %d): %v", tt.T, tt.n, tt.spacing, tt.offset, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Timesteps(%d, %d, %s, %d) (-want +got):\n%s", tt.T, tt.n, tt.spacing, tt.offset, diff)
		}
	}
}

func TestTimestepsErrors(t *testing.T) {
	tests := []struct {
		name    string
		T, n    int
		spacing Spacing
		offset  int
	}{
		{"T zero", 0, 1, Leading, 0},
		{"n zero", 1000, 0, Leading, 0},
		{"n negative", 1000, -3, Trailing, 0},
		{"n above T", 10, 11, Linspace, 0},
		{"unknown spacing", 1000, 10, "even", 0},
		{"empty spacing", 1000, 10, "", 0},
		{"negative offset", 1000, 10, Leading, -1},
		{"offset past T-1", 1000, 1000, Leading, 1},
	}
	for _, tt := range tests {
		if got, err := Timesteps(tt.T, tt.n, tt.spacing, tt.offset); err == nil {
			t.Errorf("%s: Timesteps(%d, %d, %q, %d) = %v, want an error", tt.name, tt.T, tt.n, tt.spacing, tt.offset, got)
		}
	}
}

func TestSpacingValid(t *testing.T) {
	for sp, want := range map[Spacing]bool{Leading: true, Trailing: true, Linspace: true, "": false, "Leading": false} {
		if sp.Valid() != want {
			t.Errorf("%q.Valid() = %v", sp, !want)
		}
	}
}
