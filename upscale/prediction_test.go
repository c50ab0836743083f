package upscale

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ugo-diffusion/ugo/guidance"
	"github.com/ugo-diffusion/ugo/noise"
	"github.com/ugo-diffusion/ugo/resize"
	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// vDDIM is ddim() reading the model output as a velocity.
func vDDIM() *sampler.DDIM {
	d := ddim()
	d.PredictionType = schedule.PredictV
	return d
}

// A velocity-predicting Sampling guides with Prediction v: Refine with
// Upsample Guidance and Structure Guidance is the same run on
// guidance.Upsample(Prediction v) wrapped in guidance.StructureGuidance(Prediction
// v).
func TestRefinePassesThePredictionType(t *testing.T) {
	model := pointwise{0.4, 0.3}
	x := randTensor(rand.New(rand.NewPCG(9, 10)), 3, 1, 8, 8)
	s := testSampling(model)
	s.Solver, s.Prediction = vDDIM(), schedule.PredictV
	st := Refine{Height: 16, Width: 16, Strength: 0.5, Upsample: ugOptions(), Structure: &guidance.StructureOptions{Cutoff: 0.5}}
	got, err := st.Run(context.Background(), &s, x)
	require.NoError(t, err)

	run := func(pred schedule.PredictionType) []float32 {
		ref, err := resize.To(resize.Bicubic, x, 16, 16)
		require.NoError(t, err)
		o := guidance.DefaultUpsampleOptions()
		o.Factors, o.Prediction = []int{2, 2}, pred
		m, err := guidance.Upsample(model, testSchedule, o)
		require.NoError(t, err)
		plan, err := vDDIM().Trajectory(10)
		require.NoError(t, err)
		g, err := guidance.StructureGuidance(m, testSchedule, ref, guidance.StructureOptions{Cutoff: 0.5, From: plan.Timesteps[5], To: plan.Timesteps[9], Prediction: schedule.PredictV})
		require.NoError(t, err)
		want := clone(ref)
		require.NoError(t, sampler.Sample(context.Background(), g, vDDIM(), want, sampler.Options{Steps: 10, Strength: 0.5, Noise: noise.PerImage(noise.TorchSeeds(seeds...)...)}))
		return want.Float32s()
	}
	require.Equal(t, run(schedule.PredictV), got.Float32s())
	require.NotEqual(t, run(schedule.PredictEpsilon), got.Float32s(), "guiding velocities as noise is another run")
}

func TestStageOptionsNamingAnotherPrediction(t *testing.T) {
	s := testSampling(pointwise{0.4, 0.3})
	s.Solver, s.Prediction = vDDIM(), schedule.PredictV
	ug := ugOptions()
	ug.Prediction = schedule.PredictSample
	_, err := Generate{Height: 16, Width: 16, Upsample: ug}.Run(context.Background(), &s, nil)
	require.ErrorContains(t, err, `UpsampleOptions.Prediction "sample", but Sampling.Prediction is "v_prediction"`)
	x := randTensor(rand.New(rand.NewPCG(1, 2)), 3, 1, 8, 8)
	_, err = Refine{Height: 16, Width: 16, Strength: 0.5, Structure: &guidance.StructureOptions{Prediction: schedule.PredictEpsilon}}.Run(context.Background(), &s, x)
	require.ErrorContains(t, err, `StructureOptions.Prediction "epsilon", but Sampling.Prediction is "v_prediction"`)
	ug.Prediction = schedule.PredictV // the same type is fine
	_, err = Generate{Height: 16, Width: 16, Upsample: ug}.Run(context.Background(), &s, nil)
	require.NoError(t, err)
}
