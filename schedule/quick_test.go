package schedule

import "testing"

func TestQuickSmoke(t *testing.T) {
	s := ScaledLinear(1000, 0.00085, 0.012)
	ts, err := Timesteps(1000, 5, Leading, 1)
	if err != nil || ts[0] != 801 || ts[4] != 1 {
		t.Fatalf("timesteps %v %v", ts, err)
	}
	tau := s.MatchedTime(801, 4, Continuous)
	a, at := s.AlphaBar(tau), s.AlphaBar(801)
	want := 4 * at / (1 + 3*at)
	if d := a/want - 1; d > 1e-12 || d < -1e-12 {
		t.Fatalf("tau %v abar %v want %v", tau, a, want)
	}
	z := s.RescaleZeroTerminalSNR()
	if z.AlphaBar(999) != 0 || z.MatchedTime(998.5, 4, Continuous) > 998.5 {
		t.Fatal("zsnr")
	}
}
