package guidance

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// overlapProbe wraps a model and records the order of the input widths it
// sees and the largest number of calls in flight at once.
type overlapProbe struct {
	model ugo.Denoiser

	mu       sync.Mutex
	inFlight int
	maxIn    int
	widths   []int
}

func (p *overlapProbe) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	p.mu.Lock()
	p.inFlight++
	p.maxIn = max(p.maxIn, p.inFlight)
	p.widths = append(p.widths, x.Shape()[3])
	p.mu.Unlock()
	// Give a concurrent call the time to start while this one runs.
	time.Sleep(2 * time.Millisecond)
	err := p.model.PredictNoise(ctx, dst, x, t)
	p.mu.Lock()
	p.inFlight--
	p.mu.Unlock()
	return err
}

func TestUpsampleSequentialMatchesConcurrent(t *testing.T) {
	x := randTensor(rand.New(rand.NewPCG(9, 9)), 2, 3, 8, 12)
	for _, factors := range [][]int{{2, 2}, {4, 4}, {1, 2}} {
		conc := DefaultUpsampleOptions()
		conc.Factors = factors
		seq := conc
		seq.Sequential = true
		dc, err := Upsample(pointwise{0.9, 0.4}, testSchedule, conc)
		if err != nil {
			t.Fatal(err)
		}
		probe := &overlapProbe{model: pointwise{0.9, 0.4}}
		ds, err := Upsample(probe, testSchedule, seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range [][]float32{{999}, {500}, {37, 640}} {
			want, err := predict(dc, x, ts...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := predict(ds, x, ts...)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("factors %v, t %v: sequential[%d] = %v, concurrent %v: want the same bits", factors, ts, i, got[i], want[i])
				}
			}
		}
		low := 12 / factors[1]
		if probe.maxIn != 1 {
			t.Errorf("factors %v: %d model calls in flight at once, want 1 with Sequential", factors, probe.maxIn)
		}
		for i, w := range probe.widths {
			want := 12
			if i%2 == 1 {
				want = low
			}
			if w != want {
				t.Errorf("factors %v: call %d had width %d, want %d (high-resolution call first, then low): order %v", factors, i, w, want, probe.widths)
				break
			}
		}
	}
}

// TestUpsampleConcurrentOverlaps checks the default: the two calls are in
// flight at the same time. Each call waits (up to a deadline) for the other
// to start.
func TestUpsampleConcurrentOverlaps(t *testing.T) {
	var mu sync.Mutex
	started := 0
	both := make(chan struct{})
	met := make(chan bool, 2)
	model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
		mu.Lock()
		started++
		if started == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
			met <- true
		case <-time.After(5 * time.Second):
			met <- false
		}
		return nil
	})
	d, err := Upsample(model, testSchedule, DefaultUpsampleOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := predict(d, tensorOf(1, 1, 4, 4), 500); err != nil {
		t.Fatal(err)
	}
	if first, second := <-met, <-met; !first || !second {
		t.Error("the high- and low-resolution calls did not overlap in the concurrent mode")
	}
}

func TestUpsampleSequentialErrors(t *testing.T) {
	boom := errors.New("boom")
	opts := DefaultUpsampleOptions()
	opts.Sequential = true
	x := tensorOf(1, 1, 4, 4)
	for _, failLow := range []bool{false, true} {
		lowCalls := 0
		model := ugo.DenoiserFunc(func(ctx context.Context, dst, x *tensor.Dense, tt []float32) error {
			low := x.Shape()[2] == 2
			if low {
				lowCalls++
			}
			if low == failLow {
				return boom
			}
			return nil
		})
		d, err := Upsample(model, testSchedule, opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = predict(d, x, 500)
		if !errors.Is(err, boom) {
			t.Errorf("failure on low=%v: got %v, want boom", failLow, err)
		}
		if !failLow && lowCalls != 0 {
			t.Errorf("the high-resolution call failed but the low-resolution one still ran (%d calls)", lowCalls)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, _ := Upsample(pointwise{1, 1}, testSchedule, opts)
	if err := d.PredictNoise(ctx, tensorOf(1, 1, 4, 4), x, []float32{500}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}
