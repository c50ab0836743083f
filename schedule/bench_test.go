package schedule

import (
	"os"
	"path/filepath"
	"testing"
)

var sink float64

func BenchmarkScaledLinear1000(b *testing.B) {
	for b.Loop() {
		ScaledLinear(1000, 0.00085, 0.012)
	}
}

func BenchmarkSquaredCosCapV2_1000(b *testing.B) {
	for b.Loop() {
		SquaredCosCapV2(1000)
	}
}

func BenchmarkAlphaBar(b *testing.B) {
	s := ScaledLinear(1000, 0.00085, 0.012)
	t := 0.0
	for b.Loop() {
		sink += s.AlphaBar(t)
		t += 0.37
		if t > 999 {
			t = 0
		}
	}
}

func BenchmarkMatchedTime(b *testing.B) {
	s := ScaledLinear(1000, 0.00085, 0.012)
	for _, mode := range []TimeMatching{Continuous, Nearest} {
		b.Run(mode.String(), func(b *testing.B) {
			t := 0.0
			for b.Loop() {
				sink += s.MatchedTime(t, 4, mode)
				t += 0.37
				if t > 999 {
					t = 0
				}
			}
		})
	}
}

func BenchmarkInverseSNR(b *testing.B) {
	s := ScaledLinear(1000, 0.00085, 0.012)
	x := 1e-3
	for b.Loop() {
		sink += s.InverseSNR(x)
		x *= 1.01
		if x > 1e3 {
			x = 1e-3
		}
	}
}

func BenchmarkTimesteps50(b *testing.B) {
	for b.Loop() {
		if _, err := Timesteps(1000, 50, Trailing, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseConfig(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "sd15_scheduler_config.json"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ParseConfig(data); err != nil {
			b.Fatal(err)
		}
	}
}
