package schedule

import (
	"slices"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// TestScheduleRemembered checks that Config.Schedule returns the schedule
// it built for an equal configuration (the same pointer), that what it
// returns always equals a fresh build, also after more distinct
// configurations than it remembers, and that TrainedBetas are not
// remembered.
func TestScheduleRemembered(t *testing.T) {
	c := DefaultConfig()
	c.BetaSchedule, c.BetaStart, c.BetaEnd = BetaScaledLinear, 0.00085, 0.012
	a, err := c.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	d := c // a copy, as a pipeline passes it
	b, err := d.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("an equal configuration built its schedule again")
	}
	d.RescaleBetasZeroSNR = true
	z, err := d.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if z == a || z.AlphasCumprod()[999] != 0 {
		t.Error("the zero-terminal-SNR configuration got the plain schedule")
	}
	tb := DefaultConfig()
	tb.TrainedBetas, tb.NumTrainTimesteps = []float32{0.1, 0.2, 0.3}, 3
	t1, err := tb.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	tb.TrainedBetas[0] = 0.2
	t2, err := tb.Schedule()
	if err != nil {
		t.Fatal(err)
	}
	if t2.Betas()[0] != 0.2 || t1.Betas()[0] != 0.1 {
		t.Errorf("trained betas: got %v then %v", t1.Betas(), t2.Betas())
	}
}

func TestPropertyScheduleRemembered(t *testing.T) {
	kinds := []string{BetaLinear, BetaScaledLinear, BetaSquaredCos}
	rapid.Check(t, func(t *rapid.T) {
		// A small space of configurations, so that keys repeat, are
		// evicted and come back.
		c := DefaultConfig()
		c.BetaSchedule = rapid.SampledFrom(kinds).Draw(t, "kind")
		c.NumTrainTimesteps = rapid.IntRange(10, 14).Draw(t, "T")
		c.BetaStart = rapid.SampledFrom([]float32{0.0001, 0.00085, 0.001}).Draw(t, "start")
		c.BetaEnd = rapid.SampledFrom([]float32{0.012, 0.02}).Draw(t, "end")
		c.RescaleBetasZeroSNR = rapid.Bool().Draw(t, "rescale")
		got, err := c.Schedule()
		if err != nil {
			t.Fatal(err)
		}
		start, end := decimal64(c.BetaStart), decimal64(c.BetaEnd)
		want, err := c.build(start, end)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Betas(), want.Betas()) || !slices.Equal(got.AlphasCumprod(), want.AlphasCumprod()) {
			t.Fatalf("remembered schedule differs from a fresh build for %+v", c)
		}
	})
}

func TestScheduleRememberedConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				c := DefaultConfig()
				c.NumTrainTimesteps = 20 + (g+i)%12
				s, err := c.Schedule()
				if err != nil {
					t.Error(err)
					return
				}
				if s.Len() != c.NumTrainTimesteps {
					t.Errorf("T = %d, schedule of %d", c.NumTrainTimesteps, s.Len())
					return
				}
			}
		})
	}
	wg.Wait()
}
