package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

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
		"| **Go side** (no ONNX Runtime call in flight) |", "| VAE decoder |", "| guidance, CFG and sampler |"} {
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

// TestBusy checks the union of run intervals: overlaps count once, gaps
// not at all, whatever the order.
func TestBusy(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(a, b int) onnx.RunTiming {
		return onnx.RunTiming{Start: t0.Add(time.Duration(a) * time.Millisecond), End: t0.Add(time.Duration(b) * time.Millisecond)}
	}
	for _, c := range []struct {
		runs []onnx.RunTiming
		want time.Duration
	}{
		{nil, 0},
		{[]onnx.RunTiming{at(0, 10)}, 10 * time.Millisecond},
		{[]onnx.RunTiming{at(0, 10), at(20, 25)}, 15 * time.Millisecond},
		{[]onnx.RunTiming{at(20, 25), at(0, 10), at(5, 12)}, 17 * time.Millisecond},
		{[]onnx.RunTiming{at(0, 30), at(5, 12), at(10, 20)}, 30 * time.Millisecond},
		{[]onnx.RunTiming{at(5, 12), at(12, 14)}, 9 * time.Millisecond},
	} {
		if got := busy(c.runs); got != c.want {
			t.Errorf("busy(%v) = %v, want %v", c.runs, got, c.want)
		}
	}
}
