package main

import (
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

var hostileArgs = []string{
	"-threads\x00-1", "-inter\x00-1", "-threads\x00100000", "-n\x000", "-n\x00-4", "-n\x0010000000", "-steps\x000",
	"-runs\x000", "-alloc-steps\x00-1", "-sizes\x0014", "-sizes\x0057", "-sizes\x00-56", "-sizes\x00x", "-sizes\x0099999988",
	"stray", "-n\x002\x00stray", "-device\x00gpu", "-nope", "-shapes\x00yes", "-shapes\x00",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parseFlags, hostileArgs, "")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parseFlags, hostileArgs, []string{""}, func(c *config) string {
		if c.n <= 0 || c.steps <= 0 || c.runs <= 0 || c.threads < 0 || c.inter < 0 || c.allocSteps < 0 || len(c.sizes) == 0 {
			return "a count out of range"
		}
		if c.shapes != "off" && c.shapes != "on" && c.shapes != "both" {
			return "an unknown -shapes setting"
		}
		return ""
	})
}
