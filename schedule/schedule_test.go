package schedule

import (
	"math"
	"testing"
)

func TestFromBetasErrors(t *testing.T) {
	tests := []struct {
		name  string
		betas []float32
	}{
		{"empty", nil},
		{"zero", []float32{0.1, 0}},
		{"negative", []float32{-0.1}},
		{"above one", []float32{0.1, 1.5}},
		{"NaN", []float32{0.1, float32(math.NaN())}},
		{"+Inf", []float32{float32(math.Inf(1))}},
		{"first beta rounds away", []float32{1e-9, 0.1}},
		{"first beta one", []float32{1, 0.5}},
	}
	for _, tt := range tests {
		if s, err := FromBetas(tt.betas); err == nil {
			t.Errorf("%s: FromBetas(%v) accepted, abar %v", tt.name, tt.betas, s.AlphasCumprod())
		}
	}
}

func TestFromBetasCopies(t *testing.T) {
	b := []float32{0.1, 0.2, 0.3}
	s, err := FromBetas(b)
	if err != nil {
		t.Fatal(err)
	}
	b[0] = 0.9
	got := s.Betas()
	got[1] = 0.9
	if s.Betas()[0] != 0.1 || s.Betas()[1] != 0.2 {
		t.Errorf("schedule shares memory with its caller: %v", s.Betas())
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d", s.Len())
	}
	// abar is the float64 product rounded to float32, as torch.cumprod.
	one := float32(1)
	a0, a1, a2 := float64(one-0.1), float64(one-0.2), float64(one-0.3)
	want := []float32{float32(a0), float32(a0 * a1), float32(a0 * a1 * a2)}
	for i, a := range s.AlphasCumprod() {
		if a != want[i] {
			t.Errorf("abar[%d] = %v, want %v", i, a, want[i])
		}
	}
}

func TestConstructorsPanic(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"Linear T=0", func() { Linear(0, 1e-4, 0.02) }},
		{"Linear beta 0", func() { Linear(10, 0, 0.02) }},
		{"ScaledLinear beta > 1", func() { ScaledLinear(10, 1e-4, 2) }},
		{"Sigmoid NaN", func() { Sigmoid(10, float32(math.NaN()), 0.02) }},
		{"SquaredCosCapV2 T<0", func() { SquaredCosCapV2(-1) }},
		{"Linear T too big", func() { Linear(MaxTrainTimesteps+1, 1e-4, 0.02) }},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tt.name)
				}
			}()
			tt.f()
		}()
	}
}

func TestEdgeInputs(t *testing.T) {
	s := ScaledLinear(1000, 0.00085, 0.012)
	z := s.RescaleZeroTerminalSNR()
	nan := math.NaN()
	for _, sc := range []*Schedule{s, z} {
		if !math.IsNaN(sc.AlphaBar(nan)) || !math.IsNaN(sc.SNR(nan)) || !math.IsNaN(sc.LogSNR(nan)) ||
			!math.IsNaN(sc.InverseSNR(nan)) || !math.IsNaN(sc.MatchedTime(nan, 4, Continuous)) {
			t.Error("NaN time or SNR does not give NaN")
		}
		if sc.NearestTimestep(nan) != 0 {
			t.Error("NearestTimestep(NaN) != 0")
		}
		// Clamping.
		if sc.AlphaBar(-5) != sc.AlphaBar(0) || sc.AlphaBar(1e9) != sc.AlphaBar(999) || sc.AlphaBar(math.Inf(1)) != sc.AlphaBar(999) {
			t.Error("times outside [0, T-1] are not clamped")
		}
		if got := sc.MatchedTime(2000, 4, Continuous); got > 999 {
			t.Errorf("MatchedTime(2000) = %v", got)
		}
		if got := sc.InverseSNR(math.Inf(1)); got != 0 {
			t.Errorf("InverseSNR(+Inf) = %v", got)
		}
		if got := sc.InverseSNR(-1); got != 999 {
			t.Errorf("InverseSNR(-1) = %v", got)
		}
		// k <= 1, NaN k and +Inf k.
		for _, k := range []float64{1, 0.5, 0, -2, nan} {
			if got := sc.MatchedTime(500.25, k, Continuous); got != 500.25 {
				t.Errorf("MatchedTime(500.25, %v) = %v, want t", k, got)
			}
		}
		if got := sc.MatchedTime(500, math.Inf(1), Continuous); got != 0 {
			t.Errorf("MatchedTime(500, +Inf) = %v, want 0", got)
		}
		for _, k := range []float64{0, -1, nan} {
			if !math.IsNaN(sc.PowerFactor(10, k)) {
				t.Errorf("PowerFactor(10, %v) is not NaN", k)
			}
		}
	}
}

func TestZeroTerminalSNR(t *testing.T) {
	z := ScaledLinear(1000, 0.00085, 0.012).RescaleZeroTerminalSNR()
	if z.Betas()[999] != 1 || z.AlphaBar(999) != 0 || z.SNR(999) != 0 || !math.IsInf(z.LogSNR(999), -1) {
		t.Fatalf("terminal step: beta %v abar %v SNR %v logSNR %v", z.Betas()[999], z.AlphaBar(999), z.SNR(999), z.LogSNR(999))
	}
	// The last segment is linear in abar: halfway, half of abar(998).
	if got, want := z.AlphaBar(998.5), float64(z.AlphasCumprod()[998])/2; math.Abs(got-want) > 1e-18 {
		t.Errorf("AlphaBar(998.5) = %v, want %v", got, want)
	}
	for _, mode := range []TimeMatching{Continuous, Nearest} {
		if got := z.MatchedTime(999, 4, mode); got != 999 {
			t.Errorf("%v: MatchedTime(999, 4) = %v, want 999 (zero SNR stays zero)", mode, got)
		}
	}
	tau := z.MatchedTime(998.5, 4, Continuous)
	a := z.AlphaBar(998.5)
	if got, want := z.AlphaBar(tau), 4*a/(1+3*a); math.Abs(got-want) > 1e-9*want {
		t.Errorf("abar(tau) = %v, want %v", got, want)
	}
	if got := z.NearestTimestep(0); got != 999 {
		t.Errorf("NearestTimestep(0) = %d", got)
	}
	// Already zero terminal SNR: unchanged.
	if z2 := z.RescaleZeroTerminalSNR(); z2 != z {
		t.Error("rescaling twice rebuilt the schedule")
	}
	one := Linear(1, 0.1, 0.1)
	if one.RescaleZeroTerminalSNR() != one {
		t.Error("T = 1 was rescaled")
	}
}

func TestNearestTimestep(t *testing.T) {
	s := Linear(1000, 1e-4, 0.02)
	for _, i := range []int{0, 1, 17, 500, 998, 999} {
		if got := s.NearestTimestep(s.SNR(float64(i))); got != i {
			t.Errorf("NearestTimestep(SNR(%d)) = %d", i, got)
		}
		// Slightly off the node, still nearest to it.
		if got := s.NearestTimestep(s.SNR(float64(i)) * 1.0001); got != i {
			t.Errorf("NearestTimestep(SNR(%d)*1.0001) = %d", i, got)
		}
	}
	if got := s.NearestTimestep(1e9); got != 0 {
		t.Errorf("above range: %d", got)
	}
	if got := s.NearestTimestep(0); got != 999 {
		t.Errorf("SNR 0: %d", got)
	}
	// Halfway in log SNR between 10 and 11 goes to 10 (ties to the earlier
	// step); a little past it to 11.
	mid := (s.LogSNR(10) + s.LogSNR(11)) / 2
	if got := s.NearestTimestep(math.Exp(mid - 1e-9)); got != 11 {
		t.Errorf("just past the midpoint: %d", got)
	}
	if got := s.NearestTimestep(math.Exp(mid + 1e-9)); got != 10 {
		t.Errorf("just before the midpoint: %d", got)
	}
}

func TestMatchedTimeNearestMatchesContinuous(t *testing.T) {
	s := ScaledLinear(1000, 0.00085, 0.012)
	for _, tt := range []float64{999, 981, 800, 500, 200, 21, 1} {
		for _, k := range []float64{4, 9, 16} {
			c := s.MatchedTime(tt, k, Continuous)
			n := s.MatchedTime(tt, k, Nearest)
			if math.Abs(n-c) > 1 || n != math.Round(n) {
				t.Errorf("t=%v k=%v: nearest %v far from continuous %v", tt, k, n, c)
			}
		}
	}
}

func TestTimeMatchingString(t *testing.T) {
	for m, want := range map[TimeMatching]string{Continuous: "Continuous", Nearest: "Nearest", 7: "TimeMatching(7)"} {
		if m.String() != want {
			t.Errorf("%d.String() = %q", int(m), m.String())
		}
	}
}

func TestLinspace32Small(t *testing.T) {
	// Lane-by-lane (below 16 elements) every value is a fused
	// start + i*step or end - (n-1-i)*step: the ends are exact.
	for n := 2; n < 40; n++ {
		x := linspace32(0.1, 0.7, n)
		if x[0] != 0.1 || x[n-1] != 0.7 {
			t.Errorf("n=%d: ends %v %v", n, x[0], x[n-1])
		}
		for i := 1; i < n; i++ {
			if !(x[i] > x[i-1]) {
				t.Errorf("n=%d: not increasing at %d", n, i)
			}
		}
	}
	if x := linspace32(0.3, 0.9, 1); len(x) != 1 || x[0] != 0.3 {
		t.Errorf("n=1: %v", x)
	}
}

func TestFMA32(t *testing.T) {
	// 1 + 2^-24 is a tie in float32; a fused multiply-add that adds a
	// tiny product must see it and round up, two roundings would not.
	a := float32(1 + 1.0/(1<<23))
	b := float32(1 + 1.0/(1<<23))
	c := float32(-1)
	want := float32(2.0/(1<<23) + 1.0/(1<<46)) // exact a*b - 1 rounded once
	if got := fma32(a, b, c); got != want {
		t.Errorf("fma32 = %v, want %v", got, want)
	}
}
