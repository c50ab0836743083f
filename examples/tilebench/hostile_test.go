package main

import (
	"slices"
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

// hostileArgs are flag sets that must be refused at start, before any model
// is opened or any child started.
var hostileArgs = []string{
	"-steps\x000", "-steps\x00-1", "-steps\x0099999", "-n\x000", "-n\x00-3", "-n\x001000", "-threads\x00-1", "-threads\x00100000",
	"-models\x00", "-models\x00bogus", "-models\x00fashion,bogus", "-factors\x00", "-factors\x000", "-factors\x00-2", "-factors\x0017",
	"-factors\x002,x", "-factors\x00,", "stray", "-nope", "-h", "-child", "-child\x00-child-model\x00ldm\x00-child-mode\x00full",
	"-child\x00-child-model\x00x\x00-child-mode\x00full\x00-child-factor\x002",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parse, hostileArgs, "", "-models\x00ldm\x00-factors\x008,2,2",
		"-child\x00-child-model\x00fashion\x00-child-mode\x00baseline\x00-child-factor\x001")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parse, hostileArgs, []string{"", "-factors\x004,2"}, func(o *options) string {
		if o.steps < 1 || o.n < 1 || len(o.models) == 0 || len(o.factors) == 0 || !slices.IsSorted(o.factors) {
			return "a setting out of range"
		}
		for _, f := range o.factors {
			if f < 1 || f > maxFactor {
				return "a factor out of range"
			}
		}
		return ""
	})
}
