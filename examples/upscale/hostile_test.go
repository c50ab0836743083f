package main

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hostileArgs are flag sets that must be refused at start, before any model
// is opened or any work done.
var hostileArgs = []string{
	"-threads\x00-1", "-threads\x00100000", "-n\x00-1", "-n\x000", "-n\x00100000000", "-steps\x000", "-steps\x00-1",
	"-cols\x000", "stray", "-n\x002\x00stray", "-sizes\x00-56", "-sizes\x000", "-sizes\x0056,28", "-sizes\x00999999999",
	"-sizes\x00x", "-steps\x009999999999", "-nope", "-h",
	"-trained\x00-28", "-trained\x000", "-channels\x000", "-channels\x0099999", "-strength\x00NaN", "-strength\x002",
	"-cutoff\x000", "-cutoff\x00NaN", "-cfg\x00NaN", "-cfg\x00Inf", "-sr-scale\x000", "-sr\x00m.onnx\x00-sr-scale\x00-4",
	"-methods\x00bogus", "-filter\x00bogus", "-sample-size\x00-8", "-n\x0016\x00-sizes\x0065536",
}

func TestHostileArgs(t *testing.T) {
	for _, a := range hostileArgs {
		_, err := parse(strings.Split(a, "\x00"), io.Discard)
		assert.Error(t, err, "parse(%q)", a)
	}
	_, err := parse(nil, io.Discard)
	require.NoError(t, err, "defaults")
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
		o, err := parse(args, io.Discard)
		if err != nil {
			return
		}
		if o.n <= 0 || o.cols <= 0 || o.steps <= 0 || o.trained <= 0 || o.channels <= 0 || !(o.strength >= 0 && o.strength <= 1) ||
			!(o.cutoff > 0 && o.cutoff <= 1) || len(o.methods) == 0 {
			t.Fatalf("parse(%q) accepted %+v", joined, *o)
		}
		for i, s := range o.sizes {
			if s <= 0 || (i > 0 && s <= o.sizes[i-1]) {
				t.Fatalf("parse(%q) accepted sizes %v", joined, o.sizes)
			}
		}
	})
}
