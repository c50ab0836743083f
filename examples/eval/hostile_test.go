package main

import (
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

var hostileArgs = []string{
	"-threads\x00-1", "-workers\x000", "-workers\x00-2", "-n56\x001", "-n112\x00-5", "-steps\x000", "-batch\x000",
	"-protocol\x0028\x00-sweep\x0010,0", "-protocol\x0028\x00-sweep\x00x", "-protocol\x0028\x00-sweep\x00-5", "-protocol\x0028\x00-samplers\x00bogus\x00-sweep\x0010", "-n56\x001000000000",
	"-batch\x0010000000\x00-workers\x00100", "stray", "-steps\x0010\x00stray", "-nope",
	"-protocol\x0015", "-sweep\x0010,20", "-protocol\x000", "-n2x\x001", "-n4x\x00-3", "-resamples\x000", "-crops\x000", "-crops\x001000",
	"-flow\x00m.onnx", "-protocol\x0028\x00-flow\x00m.onnx\x00-sweep\x0010",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parseFlags, hostileArgs, "", "-protocol\x0028\x00-sweep\x0010,20\x00-samplers\x00ddim")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parseFlags, hostileArgs, []string{""}, func(c *evalFlags) string {
		if c.n56 < 2 || c.n112 < 2 || c.steps <= 0 || c.batch <= 0 || c.workers <= 0 || c.threads < 0 ||
			(c.protocol != 14 && c.protocol != 28) || (c.flow != "" && (c.protocol != 28 || c.sweep != "")) || c.n2x < 2 || c.n4x < 2 || c.resamples <= 0 || c.crops <= 0 {
			return "a setting out of range"
		}
		return ""
	})
}
