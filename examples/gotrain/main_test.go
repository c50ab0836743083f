package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// trainingImages returns Debian's Fashion-MNIST training file when it is
// installed, and otherwise a small synthetic IDX file of 28x28 images.
func trainingImages(t *testing.T) string {
	if _, err := os.Stat(defaultData); err == nil {
		return defaultData
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	const n = 32
	binary.Write(gz, binary.BigEndian, [4]uint32{0x803, n, 28, 28})
	img := make([]byte, n*28*28)
	for i := range img {
		y, x := i/28%28, i%28
		if x > 6+i/784%5 && x < 21 && y > 4 && y < 24 {
			img[i] = 200
		}
	}
	gz.Write(img)
	gz.Close()
	p := filepath.Join(t.TempDir(), "images.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSmoke trains a few steps on a few images, samples two DDIM steps,
// then samples again from the saved weights.
func TestSmoke(t *testing.T) {
	out := t.TempDir()
	var stdout bytes.Buffer
	args := []string{"-data", trainingImages(t), "-images", "32", "-max-steps", "4", "-batch", "4",
		"-width", "8", "-every", "1ns", "-n", "2", "-cols", "2", "-steps", "2", "-out", out}
	if err := run(context.Background(), args, &stdout); err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	t.Log(stdout.String())
	losses := regexp.MustCompile(`loss (\S+)`).FindAllStringSubmatch(stdout.String(), -1)
	if len(losses) == 0 {
		t.Fatal("no loss printed")
	}
	for _, m := range losses {
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			t.Errorf("loss %q, want a finite positive number", m[1])
		}
	}
	files := []string{"weights.bin", "samples_14.png", "samples_28_plain.png", "samples_28_guided.png", "samples_28_plain_vs_guided.png"}
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: missing or empty (%v)", f, err)
		}
	}

	out2 := t.TempDir()
	stdout.Reset()
	args = []string{"-load", filepath.Join(out, "weights.bin"), "-n", "2", "-steps", "2", "-out", out2}
	if err := run(context.Background(), args, &stdout); err != nil {
		t.Fatalf("run -load: %v\n%s", err, stdout.String())
	}
	for _, f := range files[1:] {
		if _, err := os.Stat(filepath.Join(out2, f)); err != nil {
			t.Errorf("-load: %v", err)
		}
	}
}

// An interrupted run saves its weights and reports the interruption.
func TestInterruptSavesWeights(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	var stdout bytes.Buffer
	args := []string{"-data", trainingImages(t), "-images", "8", "-batch", "2", "-width", "4", "-out", out}
	err := run(ctx, args, &stdout)
	if err == nil || !errorsIsCanceled(err) {
		t.Fatalf("run with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(out, "weights.bin")); err != nil {
		t.Error(err)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-size", "5"},
		{"-n", "0"},
		{"-sizes", "20"},
		{"extra"},
		{"-load", filepath.Join(t.TempDir(), "missing.bin")},
	} {
		if err := run(context.Background(), append(args, "-out", t.TempDir()), &bytes.Buffer{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func errorsIsCanceled(err error) bool { return errors.Is(err, context.Canceled) }
