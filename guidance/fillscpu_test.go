package guidance

import (
	"context"
	"sync"
	"testing"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// meeting is a model whose calls each wait, up to wait, for a second call
// to be in flight at the same time, and record whether one was. It says it
// fills the CPU when fills is set.
type meeting struct {
	fills bool
	wait  time.Duration

	mu       sync.Mutex
	inFlight int
	both     chan struct{}
	met      []bool
}

func newMeeting(fills bool, wait time.Duration) *meeting {
	return &meeting{fills: fills, wait: wait, both: make(chan struct{})}
}

func (m *meeting) FillsCPU() bool { return m.fills }

func (m *meeting) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	m.mu.Lock()
	m.inFlight++
	if m.inFlight == 2 {
		close(m.both)
	}
	m.mu.Unlock()
	met := false
	select {
	case <-m.both:
		met = true
	case <-time.After(m.wait):
	}
	m.mu.Lock()
	m.inFlight--
	m.met = append(m.met, met)
	m.mu.Unlock()
	return pointwise{0.9, 0.4}.PredictNoise(ctx, dst, x, t)
}

// overlapped reports whether the calls met, failing unless there were two
// and they agree.
func (m *meeting) overlapped(t *testing.T) bool {
	t.Helper()
	if len(m.met) != 2 || m.met[0] != m.met[1] {
		t.Fatalf("calls met %v, want two calls that agree", m.met)
	}
	return m.met[0]
}

func TestFillsCPUChoosesScheduling(t *testing.T) {
	for _, c := range []struct {
		name                   string
		fills                  bool
		sequential, concurrent bool
		wantOverlap            bool
	}{
		{"auto, model fills the CPU", true, false, false, false},
		{"auto, model does not", false, false, false, true},
		{"Concurrent overrides a filling model", true, false, true, true},
		{"Sequential overrides a model that does not fill", false, true, false, false},
		{"Sequential on a filling model", true, true, false, false},
		{"Concurrent on a model that does not fill", false, false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			wait := 5 * time.Second
			if !c.wantOverlap {
				wait = 150 * time.Millisecond // long enough for a concurrent call to start
			}
			m := newMeeting(c.fills, wait)
			opts := DefaultUpsampleOptions()
			opts.Sequential, opts.Concurrent = c.sequential, c.concurrent
			d, err := Upsample(m, testSchedule, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := ugo.FillsCPU(d); got != c.fills {
				t.Errorf("FillsCPU of the guided model = %v, want the model's %v", got, c.fills)
			}
			got, err := predict(d, tensorOf(1, 1, 4, 4), 500)
			if err != nil {
				t.Fatal(err)
			}
			if o := m.overlapped(t); o != c.wantOverlap {
				t.Errorf("calls overlapped: %v, want %v", o, c.wantOverlap)
			}
			// Either way the result is that of the plain pointwise model.
			ref, _ := Upsample(pointwise{0.9, 0.4}, testSchedule, DefaultUpsampleOptions())
			want, err := predict(ref, tensorOf(1, 1, 4, 4), 500)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("element %d: %v, want %v bit for bit", i, got[i], want[i])
				}
			}
		})
	}
}

func TestSequentialAndConcurrentRefused(t *testing.T) {
	opts := DefaultUpsampleOptions()
	opts.Sequential, opts.Concurrent = true, true
	if err := opts.Validate(); err == nil {
		t.Error("Validate accepted Sequential and Concurrent together")
	}
	if _, err := Upsample(pointwise{1, 1}, testSchedule, opts); err == nil {
		t.Error("Upsample accepted Sequential and Concurrent together")
	}
}

func TestCFGFillsCPU(t *testing.T) {
	for _, fills := range []bool{true, false} {
		wait := 5 * time.Second
		if fills {
			wait = 150 * time.Millisecond
		}
		m := newMeeting(fills, wait)
		g := CFG(m, m, 3)
		if got := ugo.FillsCPU(g); got != fills {
			t.Errorf("fills %v: FillsCPU(CFG) = %v", fills, got)
		}
		if _, err := predict(g, tensorOf(1, 1, 4, 4), 500); err != nil {
			t.Fatal(err)
		}
		if o := m.overlapped(t); o == fills {
			t.Errorf("fills %v: CFG branches overlapped: %v", fills, o)
		}
	}
	// One filling branch is enough for the answer; scheduling needs both.
	if !ugo.FillsCPU(CFG(newMeeting(true, 0), pointwise{1, 1}, 2)) {
		t.Error("CFG with one filling branch: FillsCPU false")
	}
}

func TestMiddlewareForwardsFillsCPU(t *testing.T) {
	for _, fills := range []bool{true, false} {
		m := newMeeting(fills, 0)
		up, err := Upsample(CFG(m, m, 2), testSchedule, DefaultUpsampleOptions())
		if err != nil {
			t.Fatal(err)
		}
		if got := ugo.FillsCPU(up); got != fills {
			t.Errorf("Upsample(CFG(model)): FillsCPU %v, want %v", got, fills)
		}
		ref := tensorOf(1, 1, 4, 4)
		sg, err := StructureGuidance(m, testSchedule, ref, StructureOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ugo.FillsCPU(sg); got != fills {
			t.Errorf("StructureGuidance(model): FillsCPU %v, want %v", got, fills)
		}
	}
}
