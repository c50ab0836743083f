package sampler

import (
	"context"
	"errors"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/schedule"
)

// A run interrupted in one process and resumed in another, from the saved
// sample, the saved solver history and the saved state of the noise source
// (restored into a source seeded otherwise), ends bit for bit where the
// uninterrupted run does, for every solver, stochastic ones included.
func TestResumeFromSavedNoiseState(t *testing.T) {
	for name, s := range schedulers(t) {
		t.Run(name, func(t *testing.T) {
			const steps, stop = 10, 4
			model := analyticModel(s.(interface{ sched() *schedule.Schedule }).sched(), -0.2)
			full := dummyDeter(false)
			if err := Sample(context.Background(), model, s, full, Options{Steps: steps, Noise: noise.NewTorchCPU(3)}); err != nil {
				t.Fatal(err)
			}

			var saved, savedX0 *tensor.Dense
			var state []byte
			src := noise.NewTorchCPU(3)
			errStop := errors.New("stop")
			err := Sample(context.Background(), model, s, dummyDeter(false), Options{Steps: steps, Noise: src,
				Progress: func(p ProgressInfo) error {
					if p.Step == stop {
						saved, savedX0 = clone(p.Sample), clone(p.X0)
						var err error
						if state, err = src.MarshalBinary(); err != nil {
							return err
						}
						return errStop
					}
					return nil
				}})
			var se *StepError
			if !errors.As(err, &se) || !errors.Is(err, errStop) {
				t.Fatalf("interrupted run: err = %v", err)
			}

			other := noise.NewTorchCPU(99) // "another process"
			if err := other.UnmarshalBinary(state); err != nil {
				t.Fatal(err)
			}
			if err := Sample(context.Background(), model, s, saved, Options{Steps: steps, Noise: other, StartStep: se.Resume, PrevX0: savedX0}); err != nil {
				t.Fatal(err)
			}
			equalBits(t, "resumed run", saved.Float32s(), full.Float32s())
		})
	}
}
