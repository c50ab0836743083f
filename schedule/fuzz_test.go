package schedule

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseConfig feeds arbitrary bytes to ParseConfig and, when they
// parse, builds the schedule and the timesteps they describe. Nothing may
// panic, every accepted config must validate, and every error about a
// field must be a *FieldError. The seed corpus is in
// testdata/fuzz/FuzzParseConfig plus the shipped config files.
func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"sd15_scheduler_config.json", "sd21_scheduler_config.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"trained_betas":[0.5,1,1],"rescale_betas_zero_snr":true,"timestep_spacing":"trailing"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if c != nil {
				t.Fatalf("config %+v returned with error %v", c, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted an invalid config: %v", err)
		}
		if c.NumTrainTimesteps > 20000 {
			return // keep each input fast; large T is covered by the unit tests
		}
		s, err := c.Schedule()
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Schedule error is not a *FieldError: %v", err)
			}
			return
		}
		if s.Len() != c.NumTrainTimesteps {
			t.Fatalf("Len %d, want %d", s.Len(), c.NumTrainTimesteps)
		}
		last := float64(s.Len() - 1)
		for _, tt := range []float64{0, last / 3, last / 2, last} {
			a := s.AlphaBar(tt)
			tau := s.MatchedTime(tt, 4, Continuous)
			if math.IsNaN(a) || math.IsNaN(tau) || tau > tt || math.IsNaN(s.PowerFactor(tt, 4)) {
				t.Fatalf("t=%v: abar %v tau %v", tt, a, tau)
			}
		}
		n := min(s.Len(), 50)
		if ts, err := Timesteps(s.Len(), n, c.TimestepSpacing, c.StepsOffset); err == nil && len(ts) != n {
			t.Fatalf("Timesteps returned %d values, want %d", len(ts), n)
		}
	})
}
