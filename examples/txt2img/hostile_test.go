package main

import (
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

// hostileArgs are flag sets that must be refused at start, before the
// model folder is opened.
var hostileArgs = []string{
	"-model\x00m\x00-threads\x00-1", "-model\x00m\x00-size\x00-512x512", "-model\x00m\x00-size\x000x0",
	"-model\x00m\x00-size\x00513x512", "-model\x00m\x00-size\x00999999999x8", "-model\x00m\x00-images\x000",
	"-model\x00m\x00-images\x00-1", "-model\x00m\x00-images\x001000", "-model\x00m\x00-steps\x000",
	"-model\x00m\x00-steps\x00-3", "-model\x00m\x00-cfg\x00NaN", "-model\x00m\x00-cfg\x00Inf",
	"-model\x00m\x00-cfg\x001e39", "-model\x00m\x00-ddim-eta\x00-1", "-model\x00m\x00-ug-theta\x00NaN",
	"-model\x00m\x00-ug-eta\x002", "-model\x00m\x00-ug-eta\x00-0.1", "-model\x00m\x00-ug-factor\x000",
	"-model\x00m\x00-ug-factor\x00-2", "-model\x00m\x00-ug-factor\x000x2", "-model\x00m\x00-ug-factor\x009999",
	"-model\x00m\x00-tile-size\x000", "-model\x00m\x00-tile-overlap\x00-1", "-model\x00m\x00-sample-size\x00-8",
	"-model\x00m\x00-size\x0065536x65536\x00-images\x0064", "-model\x00m\x00stray", "-model\x00m\x00--\x00x",
	"-model\x00m\x00-threads\x0099999",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parse, hostileArgs, "-model\x00m")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parse, hostileArgs, []string{"-model\x00m", "-model\x00m\x00-size\x001024x768\x00-ug-factor\x002x3"}, func(o *options) string {
		r := o.req
		if r.Steps < 1 || r.Images < 1 || r.Images > 64 || o.width < 0 || o.height < 0 || o.width%8 != 0 || o.height%8 != 0 ||
			r.Decode.TileSize <= 0 || r.Decode.Overlap < 0 || r.GuidanceScale == nil || *r.GuidanceScale != *r.GuidanceScale || !(r.Upsample.Eta >= 0 && r.Upsample.Eta <= 1) {
			return "a setting out of range"
		}
		for _, f := range r.Upsample.Factors {
			if f < 1 {
				return "a guidance factor below 1"
			}
		}
		return ""
	})
}
