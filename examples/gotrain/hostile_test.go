package main

import (
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

// hostileArgs are flag sets that must be refused at start, before any model
// is opened or any work done.
var hostileArgs = []string{
	"-threads\x00-1", "-threads\x00100000", "-n\x00-1", "-n\x000", "-n\x00100000000", "-steps\x000", "-steps\x00-1",
	"-cols\x000", "stray", "-n\x002\x00stray", "-sizes\x00-56", "-sizes\x000", "-sizes\x00999999999",
	"-sizes\x00x", "-steps\x009999999999", "-nope", "-h",
	"-batch\x000", "-batch\x00-8", "-size\x005", "-size\x000", "-size\x00-14", "-minutes\x00-1", "-minutes\x00NaN",
	"-max-steps\x00-1", "-images\x00-1", "-every\x000s", "-lr\x00NaN", "-lr\x00-1", "-lr\x000", "-ema\x001", "-ema\x00-0.5",
	"-width\x000", "-width\x00-32", "-width\x001000000", "-batch\x001000000",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parseFlags, hostileArgs, "")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parseFlags, hostileArgs, []string{""}, func(o *options) string {
		if o.n <= 0 || o.cols <= 0 || o.steps <= 0 || o.batch <= 0 || o.size <= 0 || 28%o.size != 0 || !(o.lr > 0) ||
			!(o.ema >= 0 && o.ema < 1) || !(o.minutes >= 0) || o.netConfig.Width <= 0 || len(o.sizes) == 0 {
			return "a setting out of range"
		}
		return ""
	})
}
