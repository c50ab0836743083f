// Package clitest checks the example programs' flag parsing against hostile
// argument lists, for their tests: a table of lists that must be refused at
// start, and a fuzz target whose every accepted list must give settings the
// program can run with. An argument list is written as one string with the
// arguments separated by NUL bytes, so that fuzzing can split and join it.
package clitest

import (
	"io"
	"strings"
	"testing"
)

// Parser is an example program's flag parsing: it reads args, writes usage
// and flag errors to stderr, and returns the settings or an error.
type Parser[T any] func(args []string, stderr io.Writer) (T, error)

// Split turns a NUL-separated argument list into arguments; "" is no
// arguments at all.
func Split(joined string) []string {
	if joined == "" {
		return nil
	}
	return strings.Split(joined, "\x00")
}

// RefusesAll reports an error for every list in hostile that parse accepts
// and for every list in valid that it refuses.
func RefusesAll[T any](t testing.TB, parse Parser[T], hostile []string, valid ...string) {
	t.Helper()
	for _, a := range hostile {
		if _, err := parse(Split(a), io.Discard); err == nil {
			t.Errorf("parse(%q) accepted", a)
		}
	}
	for _, a := range valid {
		if _, err := parse(Split(a), io.Discard); err != nil {
			t.Errorf("parse(%q): %v", a, err)
		}
	}
}

// Fuzz runs parse on argument lists derived from hostile and the extra
// seeds: whatever parse accepts, check must find nothing wrong with (it
// returns a description of the problem, or "").
func Fuzz[T any](f *testing.F, parse Parser[T], hostile, seeds []string, check func(T) string) {
	for _, a := range append(append([]string(nil), seeds...), hostile...) {
		f.Add(a)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		c, err := parse(Split(joined), io.Discard)
		if err != nil {
			return
		}
		if problem := check(c); problem != "" {
			t.Fatalf("parse(%q) accepted %+v: %s", joined, c, problem)
		}
	})
}
