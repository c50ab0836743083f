package main

import (
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

// hostileArgs are flag sets that must be refused at start, before any model
// is opened or any work done.
var hostileArgs = []string{
	"-threads\x00-1", "-threads\x00100000", "-n\x00-1", "-n\x000", "-n\x00100000000", "-steps\x000", "-steps\x00-1",
	"-cols\x000", "stray", "-n\x002\x00stray", "-sizes\x00-56", "-sizes\x000", "-sizes\x0056,28", "-sizes\x00999999999",
	"-sizes\x00x", "-steps\x009999999999", "-nope", "-h",
	"-trained\x00-28", "-trained\x000", "-channels\x000", "-channels\x0099999", "-strength\x00NaN", "-strength\x002",
	"-cutoff\x000", "-cutoff\x00NaN", "-cfg\x00NaN", "-cfg\x00Inf", "-sr-scale\x000", "-sr\x00m.onnx\x00-sr-scale\x00-4",
	"-methods\x00bogus", "-filter\x00bogus", "-sample-size\x00-8", "-n\x0016\x00-sizes\x0065536",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parse, hostileArgs, "")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parse, hostileArgs, []string{""}, func(o *options) string {
		if o.n <= 0 || o.cols <= 0 || o.steps <= 0 || o.trained <= 0 || o.channels <= 0 || !(o.strength >= 0 && o.strength <= 1) ||
			!(o.cutoff > 0 && o.cutoff <= 1) || len(o.methods) == 0 {
			return "a setting out of range"
		}
		for i, s := range o.sizes {
			if s <= 0 || (i > 0 && s <= o.sizes[i-1]) {
				return "sizes not positive and increasing"
			}
		}
		return ""
	})
}
