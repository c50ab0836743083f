package schedule_test

import (
	"fmt"
	"log"

	"github.com/ugo-diffusion/ugo/schedule"
)

// Stable Diffusion's schedule, and the time a 2x-downsampled (k = 4)
// sample is matched to.
func ExampleSchedule_MatchedTime() {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012)
	t := 801.0
	tau := s.MatchedTime(t, 4, schedule.Continuous)
	fmt.Printf("abar(%v) = %.5f, SNR %.4f\n", t, s.AlphaBar(t), s.SNR(t))
	fmt.Printf("tau = %.3f, SNR(tau) = %.4f = 4 x %.4f\n", tau, s.SNR(tau), s.SNR(t))
	fmt.Printf("nearest step: %v\n", s.MatchedTime(t, 4, schedule.Nearest))
	fmt.Printf("P_t = %.5f\n", s.PowerFactor(t, 4))
	// Output:
	// abar(801) = 0.03655, SNR 0.0379
	// tau = 632.007, SNR(tau) = 0.1517 = 4 x 0.0379
	// nearest step: 632
	// P_t = 0.27741
}

func ExampleTimesteps() {
	for _, sp := range []schedule.Spacing{schedule.Leading, schedule.Trailing, schedule.Linspace} {
		ts, err := schedule.Timesteps(1000, 5, sp, 1)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(sp, ts)
	}
	// Output:
	// leading [801 601 401 201 1]
	// trailing [999 799 599 399 199]
	// linspace [999 749 500 250 0]
}

func ExampleParseConfig() {
	cfg, err := schedule.ParseConfig([]byte(`{
		"_class_name": "PNDMScheduler",
		"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
		"num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true,
		"steps_offset": 1, "trained_betas": null, "clip_sample": false
	}`))
	if err != nil {
		log.Fatal(err)
	}
	s, err := cfg.Schedule()
	if err != nil {
		log.Fatal(err)
	}
	ts, err := schedule.Timesteps(cfg.NumTrainTimesteps, 4, cfg.TimestepSpacing, cfg.StepsOffset)
	if err != nil {
		log.Fatal(err)
	}
	ac := s.AlphasCumprod()
	fmt.Println(cfg.BetaSchedule, cfg.PredictionType, ts)
	fmt.Printf("abar_0 = %v, abar_999 = %v\n", ac[0], ac[999])

	_, err = schedule.ParseConfig([]byte(`{"beta_schedule": "cosine"}`))
	fmt.Println(err)
	// Output:
	// scaled_linear epsilon [751 501 251 1]
	// abar_0 = 0.99915, abar_999 = 0.004660096
	// schedule: config field "beta_schedule": "cosine" is not one of linear, scaled_linear, squaredcos_cap_v2, sigmoid
}

// After rescaling to zero terminal SNR the last step carries no signal;
// the segment before it is interpolated linearly in abar.
func ExampleSchedule_RescaleZeroTerminalSNR() {
	s := schedule.ScaledLinear(1000, 0.00085, 0.012).RescaleZeroTerminalSNR()
	fmt.Println(s.AlphaBar(999), s.SNR(999), s.LogSNR(999))
	fmt.Printf("%.3e %.3e\n", s.AlphaBar(998), s.AlphaBar(998.5))
	fmt.Println(s.InverseSNR(0), s.MatchedTime(999, 4, schedule.Continuous))
	// Output:
	// 0 0 -Inf
	// 1.968e-07 9.839e-08
	// 999 999
}

func ExampleSchedule_InverseSNR() {
	s := schedule.Linear(1000, 0.0001, 0.02)
	t := s.InverseSNR(1) // abar = 1/2
	fmt.Printf("t = %.3f, abar = %.6f\n", t, s.AlphaBar(t))
	fmt.Println(s.NearestTimestep(1))
	// Output:
	// t = 258.093, abar = 0.500000
	// 258
}
