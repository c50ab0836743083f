package main

import (
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

// hostileArgs are flag sets a careless or hostile user can type.
var hostileArgs = []string{
	"-threads\x00-1", "-n\x00-5", "-n\x000", "-cols\x00-1", "-steps\x000", "-steps\x00-50",
	"stray", "-n\x004\x00stray", "-n\x0099999999999999999999", "-n\x002000000000",
	"-threads\x001e9", "-device\x00gpu:-1", "-device\x00cuda:abc", "-seed\x00-1", "-h", "-nope",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parse, hostileArgs, "")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parse, hostileArgs, []string{"", "-n\x004\x00-steps\x0010"}, func(fl *flags) string {
		if fl.n <= 0 || fl.cols <= 0 || fl.steps <= 0 || fl.threads < 0 {
			return "a count out of range"
		}
		return ""
	})
}
