package schedule

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// genSchedule draws schedules of every kind the package builds: the named
// beta schedules with random sizes and ranges, optionally rescaled to zero
// terminal SNR, and arbitrary trained betas, whose abar may underflow to 0
// or stay flat over several steps.
func genSchedule() *rapid.Generator[*Schedule] {
	return rapid.Custom(func(t *rapid.T) *Schedule {
		T := rapid.IntRange(2, 1200).Draw(t, "T")
		lo := rapid.Float32Range(1e-5, 0.01).Draw(t, "betaStart")
		hi := rapid.Float32Range(lo, 0.05).Draw(t, "betaEnd")
		var s *Schedule
		switch rapid.IntRange(0, 4).Draw(t, "kind") {
		case 0:
			s = Linear(T, lo, hi)
		case 1:
			s = ScaledLinear(T, lo, hi)
		case 2:
			s = SquaredCosCapV2(T)
		case 3:
			s = Sigmoid(T, lo, hi)
		default:
			betas := rapid.SliceOfN(rapid.Float32Range(1e-6, 1), 2, 300).Draw(t, "betas")
			betas[0] = min(betas[0], 0.5)
			if rapid.Bool().Draw(t, "lastIsOne") {
				betas[len(betas)-1] = 1
			}
			var err error
			if s, err = FromBetas(betas); err != nil {
				t.Fatalf("FromBetas: %v", err)
			}
		}
		if rapid.Bool().Draw(t, "rescale") {
			s = s.RescaleZeroTerminalSNR()
		}
		return s
	})
}

// genTime draws a time in [0, T-1], favouring integers and their
// neighbourhoods.
func genTime(t *rapid.T, s *Schedule, label string) float64 {
	last := float64(s.Len() - 1)
	switch rapid.IntRange(0, 3).Draw(t, label+"Kind") {
	case 0:
		return float64(rapid.IntRange(0, s.Len()-1).Draw(t, label+"Step"))
	case 1:
		i := float64(rapid.IntRange(0, s.Len()-1).Draw(t, label+"Step"))
		return clamp(i+rapid.Float64Range(-1e-9, 1e-9).Draw(t, label+"Eps"), 0, last)
	default:
		return rapid.Float64Range(0, last).Draw(t, label)
	}
}

// abarClose compares abar values at time tau: relatively to 1e-9, except
// on a segment that ends at zero SNR, where abar falls linearly to 0 and
// the float64 resolution of tau itself (about 1e-13 for T < 2048) limits
// the precision to an absolute 1e-12 of the segment's drop.
func abarClose(s *Schedule, tau, got, want float64) bool {
	tol := 1e-9 * math.Max(got, want)
	for i := int(tau) - 1; i <= int(tau); i++ { // tau may have rounded up to an integer
		if i >= 0 && i < s.Len()-1 && s.terminal(i) {
			tol += 1e-12 * float64(s.abar[i])
		}
	}
	return math.Abs(got-want) <= tol
}

func relClose(got, want, tol float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Max(math.Abs(got), math.Abs(want))
}

func TestPropMonotone(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSchedule().Draw(t, "s")
		t1, t2 := genTime(t, s, "t1"), genTime(t, s, "t2")
		if t1 > t2 {
			t1, t2 = t2, t1
		}
		if a1, a2 := s.AlphaBar(t1), s.AlphaBar(t2); !(a1 >= a2) {
			t.Fatalf("AlphaBar(%v) = %v < AlphaBar(%v) = %v", t1, a1, t2, a2)
		}
		if l1, l2 := s.LogSNR(t1), s.LogSNR(t2); !(l1 >= l2) {
			t.Fatalf("LogSNR(%v) = %v < LogSNR(%v) = %v", t1, l1, t2, l2)
		}
		if r1, r2 := s.SNR(t1), s.SNR(t2); !(r1 >= r2) {
			t.Fatalf("SNR(%v) = %v < SNR(%v) = %v", t1, r1, t2, r2)
		}
	})
}

func TestPropConsistent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSchedule().Draw(t, "s")
		tt := genTime(t, s, "t")
		a, l, r := s.AlphaBar(tt), s.LogSNR(tt), s.SNR(tt)
		if math.IsNaN(a) || math.IsNaN(l) || math.IsNaN(r) || a < 0 || a >= 1 {
			t.Fatalf("t=%v: abar %v, log SNR %v, SNR %v", tt, a, l, r)
		}
		if !relClose(r, math.Exp(l), 1e-12) || !relClose(sigmoid(l), a, 1e-12) {
			t.Fatalf("t=%v: abar %v, SNR %v, log SNR %v disagree", tt, a, r, l)
		}
		if tt == math.Trunc(tt) {
			if want := float64(s.abar[int(tt)]); a != want {
				t.Fatalf("AlphaBar(%v) = %v, want the float32 abar %v", tt, a, want)
			}
		}
	})
}

func TestPropInverseSNR(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSchedule().Draw(t, "s")
		hi := s.LogSNR(0)
		lo := math.Max(s.LogSNR(float64(s.Len()-1)), hi-60)
		l := rapid.Float64Range(lo, hi).Draw(t, "logSNR")
		tau := s.InverseSNR(math.Exp(l))
		if !(tau >= 0 && tau <= float64(s.Len()-1)) {
			t.Fatalf("InverseSNR(exp(%v)) = %v outside [0, T-1]", l, tau)
		}
		if got := s.AlphaBar(tau); !abarClose(s, tau, got, sigmoid(l)) {
			t.Fatalf("AlphaBar(InverseSNR(exp(%v))) = AlphaBar(%v) = %v, want %v", l, tau, got, sigmoid(l))
		}
		// Outside the range it clamps.
		if got := s.InverseSNR(math.Exp(hi) * 2); got != 0 {
			t.Fatalf("InverseSNR above SNR(0) = %v, want 0", got)
		}
		if got := s.InverseSNR(0); got != float64(s.Len()-1) {
			t.Fatalf("InverseSNR(0) = %v, want T-1", got)
		}
	})
}

func TestPropMatchedTime(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSchedule().Draw(t, "s")
		tt := genTime(t, s, "t")
		k := rapid.Float64Range(1, 64).Draw(t, "k")
		if rapid.Bool().Draw(t, "square") {
			k = float64(rapid.IntRange(1, 4).Draw(t, "m"))
			k *= k
		}
		for _, mode := range []TimeMatching{Continuous, Nearest} {
			tau := s.MatchedTime(tt, k, mode)
			if !(tau >= 0 && tau <= tt) {
				t.Fatalf("%v: MatchedTime(%v, %v) = %v, want in [0, t]", mode, tt, k, tau)
			}
			if got := s.MatchedTime(tt, 1, mode); got != tt {
				t.Fatalf("%v: MatchedTime(%v, 1) = %v, want t", mode, tt, got)
			}
		}
		tau := s.MatchedTime(tt, k, Continuous)
		at := s.AlphaBar(tt)
		want := k * at / (1 + (k-1)*at)
		if k*s.SNR(tt) > s.SNR(0) {
			if tau != 0 {
				t.Fatalf("target above SNR(0) but tau = %v", tau)
			}
		} else if got := s.AlphaBar(tau); !abarClose(s, tau, got, want) {
			t.Fatalf("abar(tau=%v) = %v, want k*abar/(1+(k-1)*abar) = %v (t=%v k=%v)", tau, got, want, tt, k)
		}

		// Nearest: an integer no later than floor(t) whose log SNR is at
		// least as close to the target as its neighbours'.
		n := s.MatchedTime(tt, k, Nearest)
		if k == 1 {
			return
		}
		if n != math.Trunc(n) || n > math.Floor(tt) {
			t.Fatalf("Nearest: tau = %v, want an integer <= floor(%v)", n, tt)
		}
		target := s.LogSNR(tt) + math.Log(k)
		dist := func(j int) float64 { return math.Abs(s.lsnr[j] - target) }
		i := int(n)
		for _, j := range []int{i - 1, i + 1} {
			if j >= 0 && float64(j) <= math.Floor(tt) && dist(j) < dist(i) {
				t.Fatalf("Nearest: tau = %d, but step %d is closer (t=%v k=%v)", i, j, tt, k)
			}
		}
	})
}

func TestPropPowerFactor(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSchedule().Draw(t, "s")
		tt := genTime(t, s, "t")
		k := rapid.Float64Range(1, 64).Draw(t, "k")
		a, p := s.AlphaBar(tt), s.PowerFactor(tt, k)
		if !(p > a && p <= 1) {
			t.Fatalf("P(%v, %v) = %v, want in (abar=%v, 1]", tt, k, p, a)
		}
		// x~ = D(x_t)/sqrt(P) has signal abar_tau and unit variance.
		tau := s.MatchedTime(tt, k, Continuous)
		if k*s.SNR(tt) <= s.SNR(0) {
			if got := a / p; !abarClose(s, tau, s.AlphaBar(tau), got) {
				t.Fatalf("abar/P = %v, abar(tau) = %v", got, s.AlphaBar(tau))
			}
		}
	})
}

func TestPropTimesteps(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		T := rapid.IntRange(1, 5000).Draw(t, "T")
		n := rapid.IntRange(1, T).Draw(t, "n")
		sp := rapid.SampledFrom([]Spacing{Leading, Trailing, Linspace}).Draw(t, "spacing")
		off := rapid.IntRange(0, 3).Draw(t, "offset")
		ts, err := Timesteps(T, n, sp, off)
		if sp == Leading && (T/n)*(n-1)+off > T-1 {
			if err == nil {
				t.Fatalf("offset %d past T-1 accepted: %v", off, ts)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != n {
			t.Fatalf("len %d, want %d", len(ts), n)
		}
		for i, v := range ts {
			if v < 0 || v > T-1 || (i > 0 && v >= ts[i-1]) {
				t.Fatalf("Timesteps(%d, %d, %s, %d) = %v: not strictly descending in [0, T-1]", T, n, sp, off, ts)
			}
		}
		if sp == Trailing && ts[0] != T-1 {
			t.Fatalf("trailing starts at %d, want T-1", ts[0])
		}
	})
}
