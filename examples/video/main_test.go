package main

import (
	"strings"
	"testing"

	"github.com/ugo-diffusion/ugo/examples/internal/clitest"
)

// hostileArgs are flag sets a careless or hostile user can type.
var hostileArgs = []string{
	"-threads\x00-1", "-n\x00-5", "-n\x001", "-n56\x00-1", "-steps\x000", "-batch\x000", "-batch\x0099999",
	"-resamples\x005", "-show\x000", "stray", "-n\x004\x00stray", "-n\x0099999999999999999999",
	"-only\x00nope", "-only\x0016f 28 UG", "-seed\x00-1", "-h", "-nope",
}

func TestHostileArgs(t *testing.T) {
	clitest.RefusesAll(t, parse, hostileArgs, "", "-table", "-n\x008\x00-only\x0016f 28 plain; 16f 28 UG [2,1,1]")
}

func TestOnlyAndNames(t *testing.T) {
	f, err := parse([]string{"-only", "real 8f;8f 56 UG [1,2,2]", "-n", "10"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.wants("real 8f") || !f.wants("8f 56 UG [1,2,2]") || f.wants("8f 28 native") || f.n56 != 10 {
		t.Fatalf("flags %+v", f)
	}
	if got := fileName("16f 56 UG [2,2,2]"); strings.ContainsAny(got, " [],") {
		t.Fatalf("fileName = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	clitest.Fuzz(f, parse, hostileArgs, []string{"", "-n\x004\x00-steps\x0010"}, func(fl *flags) string {
		if fl.n < 2 || fl.n56 < 2 || fl.steps <= 0 || fl.batch <= 0 || fl.threads < 0 || fl.show <= 0 {
			return "a count out of range"
		}
		return ""
	})
}
