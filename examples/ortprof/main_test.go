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
	"-cases\x00gpu", "-cases\x00,", "-sizes\x0030", "-sizes\x000", "-sizes\x00x", "-sizes\x00100000", "-pixels\x0040",
	"-pixels\x00-64", "-n\x000", "-runs\x000", "-warmup\x00-1", "-threads\x00-1", "-top\x00-1", "-opt\x00max",
	"stray", "-nope",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parseFlags, hostileArgs, "", "-cases\x00ldm\x00-pixels\x0016\x00-opt\x00none\x00-spin=false")
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parseFlags, hostileArgs, []string{""}, func(c *config) string {
		if len(c.suites) == 0 || len(c.sizes) == 0 || len(c.pixels) == 0 || c.n < 1 || c.runs < 1 || c.warmup < 0 || c.threads < 0 || c.top < 0 {
			return "a setting out of range"
		}
		return ""
	})
}

// TestProfilesShippedModels runs every case once at the smallest sizes and
// checks that the tables name the operators the models are built from.
func TestProfilesShippedModels(t *testing.T) {
	if err := onnx.InitRuntime(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-sizes", "28", "-pixels", "32", "-runs", "2", "-warmup", "1", "-threads", "1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"## fashion UNet 1x1x28x28", "| Conv |", "| InstanceNormalization |", "## ldm UNet 2x4x8x8 (32 px)",
		"| Softmax |", "## ldm text encoder 1x77", "## ldm VAE decoder 1x4x8x8 (32 px)", "session overhead", "## Summary"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestProfilesShapes profiles the Fashion UNet at 28x28 in a shape-specialised
// session: the summary counts the nodes left once ONNX Runtime knows the
// shapes (182 against 238 in the dynamic session).
func TestProfilesShapes(t *testing.T) {
	if err := onnx.InitRuntime(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	nodes := map[bool]string{}
	for _, shapes := range []bool{false, true} {
		var out bytes.Buffer
		args := []string{"-cases", "fashion", "-sizes", "28", "-runs", "2", "-warmup", "1", "-threads", "1"}
		if shapes {
			args = append(args, "-shapes")
		}
		if err := run(args, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		s := out.String()
		i := strings.Index(s, "| fashion UNet 1x1x28x28 |")
		if i < 0 {
			t.Fatalf("no summary row:\n%s", s)
		}
		row := strings.Split(s[i:strings.IndexByte(s[i:], '\n')+i], "|")
		nodes[shapes] = strings.TrimSpace(row[4])
	}
	if nodes[false] != "238" || nodes[true] != "182" {
		t.Errorf("nodes per run: %s dynamic, %s specialised; want 238 and 182", nodes[false], nodes[true])
	}
}
