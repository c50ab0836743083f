package main

import (
	"context"
	"sync"
	"time"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo"
)

// callStats accumulates the calls of one input shape.
type callStats struct {
	calls int
	total time.Duration
}

// shapeKey identifies an input shape (rank at most 5) without allocating.
type shapeKey [5]int

func keyOf(s tensor.Shape) shapeKey {
	var k shapeKey
	copy(k[:], s)
	return k
}

// timedModel is a ugo.Denoiser that wraps a model and measures the time
// during which at least one model call is in flight (busy), so that with
// concurrent calls overlapping time is counted once, and the total duration
// and number of calls per input shape. It is safe for concurrent use and
// allocates nothing per call once a shape has been seen.
type timedModel struct {
	model ugo.Denoiser
	now   func() time.Time

	mu       sync.Mutex
	inFlight int
	since    time.Time // start of the current busy period
	busy     time.Duration
	byShape  map[shapeKey]*callStats
}

func newTimedModel(model ugo.Denoiser) *timedModel {
	return &timedModel{model: model, now: time.Now, byShape: make(map[shapeKey]*callStats)}
}

// FillsCPU implements ugo.CPUFiller with the wrapped model's answer, so
// that the guidance above schedules its calls as it would without the
// timing.
func (m *timedModel) FillsCPU() bool { return ugo.FillsCPU(m.model) }

// PredictNoise implements ugo.Denoiser.
func (m *timedModel) PredictNoise(ctx context.Context, dst, x *tensor.Dense, t []float32) error {
	m.mu.Lock()
	start := m.now()
	if m.inFlight == 0 {
		m.since = start
	}
	m.inFlight++
	m.mu.Unlock()

	err := m.model.PredictNoise(ctx, dst, x, t)

	m.mu.Lock()
	end := m.now()
	m.inFlight--
	if m.inFlight == 0 {
		m.busy += end.Sub(m.since)
	}
	k := keyOf(x.Shape())
	st := m.byShape[k]
	if st == nil {
		st = &callStats{}
		m.byShape[k] = st
	}
	st.calls++
	st.total += end.Sub(start)
	m.mu.Unlock()
	return err
}

// Reset clears the measurements. It must not be called while a call is in
// flight.
func (m *timedModel) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.busy = 0
	for _, st := range m.byShape {
		*st = callStats{}
	}
}

// Busy returns the time during which at least one call was in flight since
// the last Reset.
func (m *timedModel) Busy() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.busy
}

// Calls returns the number of calls and their mean duration for inputs of
// the given shape since the last Reset.
func (m *timedModel) Calls(shape ...int) (int, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.byShape[keyOf(shape)]
	if st == nil || st.calls == 0 {
		return 0, 0
	}
	return st.calls, st.total / time.Duration(st.calls)
}
