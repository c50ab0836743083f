package schedule

import (
	"fmt"
	"math"
)

// Spacing names one of diffusers' timestep_spacing rules for choosing the
// inference timesteps among the training steps.
type Spacing string

const (
	// Leading takes every (T/n)-th step counting up from 0 (integer
	// division), then adds steps_offset: with T = 1000, n = 5 and offset 1
	// it gives [801 601 401 201 1]. The default of DDPM/DDIM/PNDM.
	Leading Spacing = "leading"
	// Trailing counts down from T in real-valued strides T/n, rounds half
	// to even and subtracts 1, so that it always starts at T-1: with
	// T = 1000 and n = 3 it gives [999 666 332]. steps_offset is ignored.
	Trailing Spacing = "trailing"
	// Linspace rounds (half to even) n evenly spaced points of [0, T-1]:
	// with T = 1000 and n = 5 it gives [999 749 500 250 0]. steps_offset is
	// ignored.
	Linspace Spacing = "linspace"
)

// Valid reports whether sp is one of Leading, Trailing and Linspace.
func (sp Spacing) Valid() bool {
	switch sp {
	case Leading, Trailing, Linspace:
		return true
	}
	return false
}

// Timesteps returns the n inference timesteps, in descending order, that
// diffusers' DDPMScheduler/DDIMScheduler.set_timesteps chooses for T
// training steps with the given spacing and steps_offset, reproducing its
// NumPy float64 arithmetic and round-half-to-even. offset only affects
// Leading, as in diffusers.
//
// Unlike diffusers, Trailing always returns exactly n timesteps: for some
// n NumPy's arange appends a spurious -1, which is dropped here.
//
// It returns an error when T < 1, n < 1, n > T (diffusers raises too), the
// spacing is unknown, offset is negative, or the offset pushes a timestep
// past T-1 (diffusers would index out of range).
func Timesteps(T, n int, spacing Spacing, offset int) ([]int, error) {
	switch {
	case T < 1:
		return nil, fmt.Errorf("schedule: Timesteps: T = %d, want >= 1", T)
	case n < 1 || n > T:
		return nil, fmt.Errorf("schedule: Timesteps: n = %d inference steps, want 1..T (T = %d)", n, T)
	case offset < 0:
		return nil, fmt.Errorf("schedule: Timesteps: steps_offset = %d, want >= 0", offset)
	}
	out := make([]int, n)
	switch spacing {
	case Leading:
		ratio := T / n
		for i := range out {
			out[i] = (n-1-i)*ratio + offset
		}
		if out[0] > T-1 {
			return nil, fmt.Errorf("schedule: Timesteps: steps_offset = %d takes timestep %d past T-1 = %d", offset, out[0], T-1)
		}
	case Trailing:
		// np.round(np.arange(T, 0, -T/n)) - 1: np.arange yields
		// start + i*delta with delta recomputed as (start + step) - start.
		// It takes ceil(T/(T/n)) elements, which for some n (T = 1000,
		// n = 13 say) is n+1, the extra one being -1; diffusers then
		// silently indexes alphas_cumprod[-1]. Only the first n are kept.
		ratio := float64(T) / float64(n)
		delta := (float64(T) - ratio) - float64(T)
		for i := range out {
			v := float64(T) + float64(i)*delta
			switch i {
			case 0:
				v = float64(T)
			case 1:
				v = float64(T) - ratio
			}
			out[i] = int(math.RoundToEven(v)) - 1
		}
	case Linspace:
		// np.linspace(0, T-1, n).round()[::-1]: i*step, last point exact.
		if n == 1 { // np.linspace(0, T-1, 1) is [0]
			out[0] = 0
			break
		}
		step := float64(T-1) / float64(n-1)
		for i := range n {
			v := float64(T - 1)
			if i < n-1 {
				v = float64(i) * step
			}
			out[n-1-i] = int(math.RoundToEven(v))
		}
	default:
		return nil, fmt.Errorf("schedule: Timesteps: unknown spacing %q (want leading, trailing or linspace)", string(spacing))
	}
	return out, nil
}
