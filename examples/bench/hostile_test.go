package main

import (
	"io"
	"strings"
	"testing"
)

var hostileArgs = []string{
	"-threads\x00-1", "-inter\x00-1", "-threads\x00100000", "-n\x000", "-n\x00-4", "-n\x0010000000", "-steps\x000",
	"-runs\x000", "-alloc-steps\x00-1", "-sizes\x0028", "-sizes\x0057", "-sizes\x00-56", "-sizes\x00x", "-sizes\x0099999988",
	"stray", "-n\x002\x00stray", "-device\x00gpu", "-nope",
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
		if c.n <= 0 || c.steps <= 0 || c.runs <= 0 || c.threads < 0 || c.inter < 0 || c.allocSteps < 0 || len(c.sizes) == 0 {
			t.Fatalf("parseFlags(%q) accepted %+v", joined, *c)
		}
	})
}
