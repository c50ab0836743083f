package main

import (
	"io"
	"strings"
	"testing"
)

var hostileArgs = []string{
	"-threads\x00-1", "-workers\x000", "-workers\x00-2", "-n56\x001", "-n112\x00-5", "-steps\x000", "-batch\x000",
	"-protocol\x0028\x00-sweep\x0010,0", "-protocol\x0028\x00-sweep\x00x", "-protocol\x0028\x00-sweep\x00-5", "-protocol\x0028\x00-samplers\x00bogus\x00-sweep\x0010", "-n56\x001000000000",
	"-batch\x0010000000\x00-workers\x00100", "stray", "-steps\x0010\x00stray", "-nope",
	"-protocol\x0015", "-sweep\x0010,20", "-protocol\x000", "-n2x\x001", "-n4x\x00-3", "-resamples\x000", "-crops\x000", "-crops\x001000",
}

func TestHostileArgs(t *testing.T) {
	for _, a := range hostileArgs {
		if _, err := parseFlags(strings.Split(a, "\x00"), io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", a)
		}
	}
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if _, err := parseFlags([]string{"-protocol", "28", "-sweep", "10,20", "-samplers", "ddim"}, io.Discard); err != nil {
		t.Fatalf("a valid sweep: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("")
	for _, a := range hostileArgs {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		c, err := parseFlags(args, io.Discard)
		if err != nil {
			return
		}
		if c.n56 < 2 || c.n112 < 2 || c.steps <= 0 || c.batch <= 0 || c.workers <= 0 || c.threads < 0 ||
			(c.protocol != 14 && c.protocol != 28) || c.n2x < 2 || c.n4x < 2 || c.resamples <= 0 || c.crops <= 0 {
			t.Fatalf("parseFlags(%q) accepted %+v", joined, *c)
		}
	})
}
