package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
	"github.com/ugo-diffusion/ugo/onnx"
)

var hostileArgs = []string{
	"-scales\x000", "-scales\x009", "-scales\x00x", "-scales\x00,", "-steps\x000", "-runs\x000", "-threads\x00-1",
	"stray", "-nope", "-shapes\x00yes",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parseFlags, hostileArgs, "", "-scales\x002\x00-steps\x003\x00-runs\x001")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parseFlags, hostileArgs, []string{""}, func(c *config) string {
		if len(c.scales) == 0 || c.steps < 1 || c.runs < 1 || c.threads < 0 {
			return "a setting out of range"
		}
		if c.shapes != "off" && c.shapes != "on" && c.shapes != "both" {
			return "an unknown -shapes setting"
		}
		return ""
	})
}

// TestBudget runs the shipped latent model at 1x and 2x for a few steps and
// checks that the table accounts for the guided calls.
func TestBudget(t *testing.T) {
	if err := onnx.InitRuntime(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-scales", "1,2", "-steps", "5", "-runs", "1", "-threads", "1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	// Eta 0.6 of DDIM's 5 leading timesteps (801, 601, 401, 201, 1) guides
	// those at or above 400: three.
	for _, want := range []string{"| 32 px ms | share | 64 px ms | share |", "| UNet calls (full + low) | 5 + 0 | | 5 + 3 | |",
		"| **Go side** (no model call in flight) |", "| VAE decode |"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestBudgetShapes runs the training size with and without shape-specialised
// sessions, side by side.
func TestBudgetShapes(t *testing.T) {
	if err := onnx.InitRuntime(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-scales", "1", "-steps", "2", "-runs", "1", "-threads", "1", "-shapes", "both"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"| 32 px ms | share | 32 px, shapes ms | share |", "| UNet calls (full + low) | 2 + 0 | | 2 + 0 | |", "shape-specialised sessions: both"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
