package sampler_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/ugo-diffusion/ugo/sampler"
	"github.com/ugo-diffusion/ugo/schedule"
)

// Stable Diffusion 1.5's scheduler_config.json names PNDMScheduler with
// skip_prk_steps: FromConfig builds PLMS, which calls the model n+1 times.
// New builds any other sampler from the same file, with that sampler's own
// defaults for the keys the file does not give (Euler: linspace spacing).
// A value that a sampler reads but does not implement is refused by key.
func ExampleFromConfig() {
	cfg, err := schedule.ParseConfig([]byte(`{
		"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
		"beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
		"set_alpha_to_one": false, "skip_prk_steps": true, "steps_offset": 1}`))
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range []string{cfg.ClassName, "euler"} {
		s, err := sampler.New(name, *cfg)
		if err != nil {
			log.Fatal(err)
		}
		p, err := s.Trajectory(5)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %v\n", name, p.Timesteps)
	}

	cfg.ClassName, cfg.UseExponentialSigmas = "DPMSolverMultistepScheduler", true
	_, err = sampler.FromConfig(*cfg)
	var fe *schedule.FieldError
	fmt.Println(errors.As(err, &fe), fe.Field)
	// Output:
	// PNDMScheduler: [801 601 601 401 201 1]
	// euler: [999 749.25 499.5 249.75 0]
	// true use_exponential_sigmas
}
