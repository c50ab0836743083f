package schedule

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Schedule is a discrete variance-preserving noise schedule over T training
// steps t = 0..T-1, defined by its betas. It holds the betas and their
// cumulative products abar_t = prod_{s<=t} (1 - beta_s) in float32, computed
// exactly as diffusers computes them, together with float64 log SNRs for
// the continuous-time queries.
//
// A Schedule is immutable and safe for concurrent use.
type Schedule struct {
	betas []float32
	abar  []float32
	lsnr  []float64 // log SNR at each step, non-increasing; -Inf where abar is 0
	snr   []float64 // SNR at each step, non-increasing
}

// MaxTrainTimesteps bounds the number of training steps a Schedule (and a
// Config) may have. It guards against absurd allocations from untrusted
// configuration files; real models use 1000 to 4000 steps.
const MaxTrainTimesteps = 1 << 20

// FromBetas returns the schedule with the given betas (T = len(betas)). The
// slice is copied. It rejects an empty slice, more than MaxTrainTimesteps
// betas, NaN and betas outside (0, 1], a first beta so small that 1 - beta
// rounds to 1 in float32 (which would make SNR(0) infinite), and a first
// beta of 1 (which would leave no signal at all).
// A beta of exactly 1 gives abar = 0 (zero SNR) from that step on.
//
// This is diffusers' trained_betas path: torch.tensor(betas, float32)
// followed by alphas_cumprod = torch.cumprod(1 - betas).
func FromBetas(betas []float32) (*Schedule, error) {
	if len(betas) == 0 {
		return nil, errors.New("schedule: no betas")
	}
	if len(betas) > MaxTrainTimesteps {
		return nil, fmt.Errorf("schedule: %d betas, more than MaxTrainTimesteps (%d)", len(betas), MaxTrainTimesteps)
	}
	for i, b := range betas {
		if !(b > 0 && b <= 1) { // also catches NaN
			return nil, fmt.Errorf("schedule: beta[%d] = %v is outside (0, 1]", i, b)
		}
	}
	return build(append([]float32(nil), betas...))
}

// build computes the derived tables of a schedule from betas it takes
// ownership of. Betas must lie in [0, 1]; the first alpha must be below 1.
func build(betas []float32) (*Schedule, error) {
	alphas := make([]float32, len(betas))
	for i, b := range betas {
		if !(b >= 0 && b <= 1) {
			return nil, fmt.Errorf("schedule: beta[%d] = %v is outside (0, 1]", i, b)
		}
		alphas[i] = 1 - b
	}
	abar := cumprod32(alphas)
	if abar[0] >= 1 {
		return nil, fmt.Errorf("schedule: beta[0] = %v is too small: 1 - beta rounds to 1 in float32 and SNR(0) would be infinite", betas[0])
	}
	if abar[0] <= 0 {
		return nil, fmt.Errorf("schedule: beta[0] = %v leaves no signal at t = 0", betas[0])
	}
	s := &Schedule{
		betas: betas,
		abar:  abar,
		lsnr:  make([]float64, len(betas)),
		snr:   make([]float64, len(betas)),
	}
	for i, a32 := range abar {
		a := float64(a32)
		l := math.Log(a) - math.Log1p(-a) // -Inf for a == 0
		r := a / (1 - a)
		if i > 0 { // guard monotonicity against last-bit wobbles
			l = math.Min(l, s.lsnr[i-1])
			r = math.Min(r, s.snr[i-1])
		}
		s.lsnr[i], s.snr[i] = l, r
	}
	return s, nil
}

// mustBuild is build for the named constructors, whose arguments are
// programmer-supplied constants.
func mustBuild(name string, betas []float32) *Schedule {
	s, err := build(betas)
	if err != nil {
		panic(name + ": " + err.Error())
	}
	return s
}

func checkT(name string, T int) {
	if T < 1 || T > MaxTrainTimesteps {
		panic(fmt.Sprintf("schedule.%s: T = %d outside [1, MaxTrainTimesteps]", name, T))
	}
}

func checkBetaRange(name string, betaStart, betaEnd float32) {
	if !(betaStart > 0 && betaStart <= 1 && betaEnd > 0 && betaEnd <= 1) {
		panic(fmt.Sprintf("schedule.%s: beta range [%v, %v] not inside (0, 1]", name, betaStart, betaEnd))
	}
}

// Linear returns diffusers' "linear" schedule: betas =
// torch.linspace(betaStart, betaEnd, T, dtype=float32), reproduced to the
// bit. It panics if T is outside [1, MaxTrainTimesteps], a beta bound is
// outside (0, 1], or the first beta is so small that 1 - beta rounds to 1;
// use Config.Schedule or FromBetas for untrusted input.
func Linear(T int, betaStart, betaEnd float32) *Schedule {
	checkT("Linear", T)
	checkBetaRange("Linear", betaStart, betaEnd)
	return mustBuild("schedule.Linear", linspace32(betaStart, betaEnd, T))
}

// ScaledLinear returns diffusers' "scaled_linear" schedule, the one of
// Stable Diffusion: betas = torch.linspace(sqrt(betaStart), sqrt(betaEnd),
// T, dtype=float32) ** 2. The square roots are taken in float64 as Python
// does, of the float64 nearest to the shortest decimal form of each bound
// (see decimal64), so that ScaledLinear(1000, 0.00085, 0.012) gives Stable
// Diffusion's betas to the bit. It panics like Linear.
func ScaledLinear(T int, betaStart, betaEnd float32) *Schedule {
	checkT("ScaledLinear", T)
	checkBetaRange("ScaledLinear", betaStart, betaEnd)
	return mustBuild("schedule.ScaledLinear", scaledBetas(T, decimal64(betaStart), decimal64(betaEnd)))
}

func scaledBetas(T int, betaStart, betaEnd float64) []float32 {
	b := linspace32(float32(math.Sqrt(betaStart)), float32(math.Sqrt(betaEnd)), T)
	for i, v := range b {
		b[i] = v * v
	}
	return b
}

// SquaredCosCapV2 returns diffusers' "squaredcos_cap_v2" schedule, the
// cosine schedule of Nichol and Dhariwal: beta_i = min(1 -
// abar(i+1/T)/abar(i/T), 0.999) with abar(u) = cos((u+0.008)/1.008*pi/2)^2,
// computed in float64 and rounded to float32. It panics if T is outside
// [1, MaxTrainTimesteps].
func SquaredCosCapV2(T int) *Schedule {
	checkT("SquaredCosCapV2", T)
	return mustBuild("schedule.SquaredCosCapV2", squaredCosBetas(T))
}

func squaredCosBetas(T int) []float32 {
	f := func(u float64) float64 {
		c := math.Cos((u + 0.008) / 1.008 * math.Pi / 2)
		return c * c
	}
	b := make([]float32, T)
	for i := range b {
		t1 := float64(i) / float64(T)
		t2 := float64(i+1) / float64(T)
		b[i] = float32(math.Min(1-f(t2)/f(t1), 0.999))
	}
	return b
}

// Sigmoid returns diffusers' "sigmoid" schedule (DDPMScheduler only):
// betas = sigmoid(torch.linspace(-6, 6, T)) * (betaEnd - betaStart) +
// betaStart, each step in float32 as PyTorch does it and with the bounds
// widened as in ScaledLinear. PyTorch's vectorised exp is not correctly
// rounded, so a few betas differ from diffusers' by an ulp or two. It
// panics like Linear.
func Sigmoid(T int, betaStart, betaEnd float32) *Schedule {
	checkT("Sigmoid", T)
	checkBetaRange("Sigmoid", betaStart, betaEnd)
	return mustBuild("schedule.Sigmoid", sigmoidBetas(T, decimal64(betaStart), decimal64(betaEnd)))
}

func sigmoidBetas(T int, betaStart, betaEnd float64) []float32 {
	x := linspace32(-6, 6, T)
	scale := float32(betaEnd - betaStart)
	start := float32(betaStart)
	for i, v := range x {
		// PyTorch: reciprocal(1 + exp(-x)), each step in float32.
		e := float32(math.Exp(-float64(v)))
		sg := 1 / (1 + e)
		x[i] = float32(sg*scale) + start
	}
	return x
}

// decimal64 widens a float32 to the float64 nearest to its shortest
// decimal representation: float32(0.00085) becomes float64(0.00085), the
// value a Python literal 0.00085 has, rather than 0.000850000011...
// diffusers computes with Python floats in float64, so this recovers its
// inputs from float32 parameters that were written as short decimals.
func decimal64(x float32) float64 {
	f, err := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	if err != nil {
		return float64(x)
	}
	return f
}

// RescaleZeroTerminalSNR returns a new schedule rescaled to zero terminal
// SNR as in Lin et al., "Common Diffusion Noise Schedules and Sample Steps
// are Flawed" (diffusers' rescale_betas_zero_snr), in float32 exactly as
// diffusers does: sqrt(abar) is shifted so that its last value is 0 and
// scaled so that its first value is unchanged, and new betas are derived
// from the ratios of consecutive squares (diffusers' 0/0 after a flat stretch
// of zeros is taken as beta = 1). The last beta becomes 1, abar at
// T-1 becomes 0 and LogSNR(T-1) is -Inf (see the package documentation for
// how fractional times near the end are handled).
//
// A schedule with T = 1, already at zero terminal SNR, or whose abar is
// constant has nothing to rescale and is returned as is.
func (s *Schedule) RescaleZeroTerminalSNR() *Schedule {
	T := len(s.abar)
	sq := make([]float32, T)
	for i, a := range s.abar {
		sq[i] = float32(math.Sqrt(float64(a))) // correctly rounded float32 sqrt
	}
	s0, sT := sq[0], sq[T-1]
	if T == 1 || sT == 0 || s0 == sT {
		return s
	}
	scale := s0 / (s0 - sT)
	for i := range sq {
		sq[i] = (sq[i] - sT) * scale
	}
	ab := make([]float32, T)
	for i, v := range sq {
		ab[i] = v * v
	}
	betas := make([]float32, T)
	betas[0] = 1 - ab[0]
	for i := 1; i < T; i++ {
		if ab[i-1] == 0 { // diffusers would divide 0 by 0 here
			betas[i] = 1
			continue
		}
		betas[i] = 1 - ab[i]/ab[i-1]
	}
	out, err := build(betas)
	if err != nil {
		// Cannot happen: sq is non-increasing, so every ratio lies in
		// [0, 1] and the first abar is below 1.
		panic("schedule: RescaleZeroTerminalSNR: " + err.Error())
	}
	return out
}

// Len returns T, the number of training steps.
func (s *Schedule) Len() int { return len(s.betas) }

// Betas returns a copy of the betas.
func (s *Schedule) Betas() []float32 { return append([]float32(nil), s.betas...) }

// AlphasCumprod returns a copy of abar_t = prod_{s<=t} (1 - beta_s) for
// t = 0..T-1, in float32 exactly as torch.cumprod(1 - betas) computes it
// (a float64 running product rounded to float32 at every step).
func (s *Schedule) AlphasCumprod() []float32 { return append([]float32(nil), s.abar...) }
