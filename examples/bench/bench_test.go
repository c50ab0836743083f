package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

func dense(shape ...int) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
}

// fakeClock is a manually advanced clock for timedModel.now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) advance(ms int) { c.t = c.t.Add(time.Duration(ms) * time.Millisecond) }

func TestTimedModelCountsOverlapOnce(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var tm *timedModel
	high, low := dense(2, 1, 8, 8), dense(2, 1, 4, 4)
	// The high-resolution call runs 10 ms, then a low-resolution call of
	// 5 ms starts and ends while it is in flight, then it runs 10 ms more:
	// 25 ms busy, not 30.
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, ts []float32) error {
		if x.Shape()[2] == 4 {
			clock.advance(5)
			return nil
		}
		clock.advance(10)
		if err := tm.PredictNoise(ctx, dense(2, 1, 4, 4), low, ts); err != nil {
			return err
		}
		clock.advance(10)
		return nil
	})
	tm = newTimedModel(model)
	tm.now = clock.now
	if err := tm.PredictNoise(context.Background(), dense(2, 1, 8, 8), high, []float32{1}); err != nil {
		t.Fatal(err)
	}
	clock.advance(100) // idle time is not busy
	// A second, sequential low-resolution call adds its 5 ms.
	if err := tm.PredictNoise(context.Background(), dense(2, 1, 4, 4), low, []float32{1}); err != nil {
		t.Fatal(err)
	}
	if got, want := tm.Busy(), 30*time.Millisecond; got != want {
		t.Errorf("busy %v, want %v", got, want)
	}
	if n, mean := tm.Calls(2, 1, 8, 8); n != 1 || mean != 25*time.Millisecond {
		t.Errorf("high-resolution calls: %d of mean %v, want 1 of 25ms", n, mean)
	}
	if n, mean := tm.Calls(2, 1, 4, 4); n != 2 || mean != 5*time.Millisecond {
		t.Errorf("low-resolution calls: %d of mean %v, want 2 of 5ms", n, mean)
	}
	if n, _ := tm.Calls(1, 1, 8, 8); n != 0 {
		t.Errorf("%d calls for a shape never seen", n)
	}
	tm.Reset()
	if n, _ := tm.Calls(2, 1, 8, 8); n != 0 || tm.Busy() != 0 {
		t.Errorf("after Reset: %d calls, busy %v; want none", n, tm.Busy())
	}
}

func TestTimedModelPassesErrors(t *testing.T) {
	boom := errors.New("boom")
	tm := newTimedModel(ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return boom }))
	if err := tm.PredictNoise(context.Background(), dense(1, 1, 2, 2), dense(1, 1, 2, 2), []float32{1}); !errors.Is(err, boom) {
		t.Errorf("got %v, want the model's error", err)
	}
	if n, _ := tm.Calls(1, 1, 2, 2); n != 1 {
		t.Errorf("a failed call was not counted: %d calls", n)
	}
}

func TestTimedModelConcurrent(t *testing.T) {
	model := ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error {
		time.Sleep(100 * time.Microsecond)
		return nil
	})
	tm := newTimedModel(model)
	const workers, calls = 8, 50
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := dense(1, 1, 2+2*(w%2), 4)
			for range calls {
				if err := tm.PredictNoise(context.Background(), dense(x.Shape()...), x, []float32{1}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	a, _ := tm.Calls(1, 1, 2, 4)
	b, _ := tm.Calls(1, 1, 4, 4)
	if a+b != workers*calls {
		t.Errorf("%d calls recorded, want %d", a+b, workers*calls)
	}
	if busy := tm.Busy(); busy <= 0 || busy > wall {
		t.Errorf("busy %v outside (0, wall time %v]: overlapping calls counted more than once", busy, wall)
	}
}

func TestWriteNPY(t *testing.T) {
	data := []float32{1, -2.5, float32(math.Pi), 0, 7, 8}
	var buf bytes.Buffer
	if err := writeNPY(&buf, []int{2, 1, 3}, data); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("magic and version %q", b[:8])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if (10+hl)%64 != 0 {
		t.Errorf("data starts at %d, want a multiple of 64", 10+hl)
	}
	header := string(b[10 : 10+hl])
	if !strings.HasPrefix(header, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3), }") || !strings.HasSuffix(header, "\n") {
		t.Errorf("header %q", header)
	}
	body := b[10+hl:]
	if len(body) != 4*len(data) {
		t.Fatalf("%d data bytes, want %d", len(body), 4*len(data))
	}
	for i, want := range data {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])); got != want {
			t.Errorf("value %d = %v, want %v", i, got, want)
		}
	}

	buf.Reset()
	if err := writeNPY(&buf, []int{5}, make([]float32, 5)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "'shape': (5,)") {
		t.Errorf("a 1-d shape must be written as a one-element tuple: %q", buf.String()[10:])
	}
	if err := writeNPY(&buf, []int{2, 2}, make([]float32, 3)); err == nil {
		t.Error("no error for a shape that does not match the data")
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Errorf("median modified its input: %v", in)
			}
		}
	}
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median of durations = %v, want 2", got)
	}
}

func TestTimedModelDoesNotAllocate(t *testing.T) {
	tm := newTimedModel(ugo.DenoiserFunc(func(context.Context, *tensor.Dense, *tensor.Dense, []float32) error { return nil }))
	x, dst, ts := dense(2, 1, 8, 8), dense(2, 1, 8, 8), []float32{1}
	ctx := context.Background()
	if err := tm.PredictNoise(ctx, dst, x, ts); err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = tm.PredictNoise(ctx, dst, x, ts) }); allocs != 0 {
		t.Errorf("%v allocations per call once the shape has been seen, want 0", allocs)
	}
}
