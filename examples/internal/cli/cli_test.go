package cli

import (
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ugo-diffusion/ugo"
)

func TestChecks(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 1, "")
	var ae *ArgError
	if err := Parse(fs, []string{"-n", "3", "stray"}); !errors.As(err, &ae) || ae.Args[0] != "stray" || *n != 3 {
		t.Fatalf("Parse with a positional argument: %v", err)
	}
	var fe *FlagError
	for _, err := range []error{
		Positive("n", 0), Positive("n", -1), NonNegative("n", -1), Threads("threads", -1), Threads("threads", 1<<20),
		Between("steps", 0, 1, 10), Between("steps", 11, 1, 10), Finite("cfg", math.NaN(), 0, 1), Finite("cfg", math.Inf(1), 0, math.Inf(1)),
		Finite("cfg", -1, 0, 1),
	} {
		if !errors.As(err, &fe) {
			t.Fatalf("want a *FlagError, got %v", err)
		}
	}
	for _, err := range []error{Positive("n", 1), NonNegative("n", 0), Threads("threads", 0), Threads("threads", 8), Between("s", 5, 1, 10), Finite("x", 0.5, 0, 1)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var me *ugo.MemoryError
	if err := Memory("images", 10, 1<<20, 3, 4096, 4096); !errors.As(err, &me) {
		t.Fatalf("Memory: %v", err)
	}
	if err := First(nil, Positive("a", 0), Positive("b", 0)); !errors.As(err, &fe) || fe.Flag != "a" {
		t.Fatalf("First: %v", err)
	}
	if got := Split(" a, ,b ,"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Split: %q", got)
	}
}

func TestStartCPUProfile(t *testing.T) {
	stop, err := StartCPUProfile("")
	if err != nil || stop() != nil {
		t.Fatalf("empty path: err %v", err)
	}
	if _, err := StartCPUProfile(filepath.Join(t.TempDir(), "missing", "cpu.out")); err == nil {
		t.Fatal("a path in a missing folder was accepted")
	}
	path := filepath.Join(t.TempDir(), "cpu.out")
	stop, err = StartCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("profile not written: %v", err)
	}
	// Profiling can start again once stopped.
	stop, err = StartCPUProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
