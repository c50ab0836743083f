package main

import (
	"io"
	"strings"
	"testing"
)

// hostileArgs are flag sets a careless or hostile user can type.
var hostileArgs = []string{
	"-threads\x00-1", "-n\x00-5", "-n\x000", "-cols\x00-1", "-steps\x000", "-steps\x00-50",
	"stray", "-n\x004\x00stray", "-n\x0099999999999999999999", "-n\x002000000000",
	"-threads\x001e9", "-device\x00gpu:-1", "-device\x00cuda:abc", "-seed\x00-1", "-h", "-nope",
}

func FuzzParse(f *testing.F) {
	f.Add("")
	f.Add("-n\x004\x00-steps\x0010")
	for _, a := range hostileArgs {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		var args []string
		if joined != "" {
			args = strings.Split(joined, "\x00")
		}
		fl, err := parse(args, io.Discard)
		if err != nil {
			return
		}
		if fl.n <= 0 || fl.cols <= 0 || fl.steps <= 0 || fl.threads < 0 {
			t.Fatalf("parse(%q) accepted %+v", args, *fl)
		}
	})
}

func TestHostileArgs(t *testing.T) {
	for _, a := range hostileArgs {
		if _, err := parse(strings.Split(a, "\x00"), io.Discard); err == nil {
			t.Errorf("parse(%q) accepted", a)
		}
	}
	if _, err := parse(nil, io.Discard); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
