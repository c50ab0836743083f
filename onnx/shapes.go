package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// MaxShapeSessions bounds the session count of WithShapeSessions.
const MaxShapeSessions = 64

// WithShapeSessions makes a Model or Graph open, besides its session that
// takes any input shape, up to max sessions each specialised to one set of
// input shapes: the first call with a new combination of input shapes (for
// a denoiser: batch, channels, H, W, frames, and the shapes of its timestep
// and bound inputs) creates a session from a copy of the model whose graph
// inputs have those dimensions fixed, and later calls with the same shapes
// run in it. Knowing every shape when the session is created, ONNX Runtime
// folds the graph's shape arithmetic (the Shape, Gather, Unsqueeze, Concat
// and Reshape chains that exporters emit for dynamic axes) into constants:
// fewer nodes per call, which matters most for small calls, such as the
// low-resolution call of Upsample Guidance or a latent UNet at its training
// size.
//
// Once max sessions exist (or failed to open), calls with other shapes run
// in the dynamic session: the sessions are kept until Close, none is
// evicted, so a sampling loop that alternates between more shapes than max
// does not reopen sessions. A session that cannot be created is logged
// (WithLogger) and its shapes run in the dynamic session; ShapeSessions
// reports it. Results are those of the dynamic session within float32
// rounding (with the shapes known, the runtime fuses some more operators,
// which changes the order of some sums; see the package documentation),
// and identical call after call for a given shape.
//
// Each specialised session holds its own copy of the weights and its own
// intra-op thread pool: memory grows by about the model's size per
// session, which max bounds. The first call of a shape pays for creating
// the session (reading the model file again, optimising the graph); calls
// of other shapes go on meanwhile, and calls of the same shape wait for
// it. Weights stored as external data beside the model are found in the
// model file's folder. Under WithProfiling each specialised session writes
// its own trace, named prefix_shapeN_DATE_TIME.json for the N-th session
// created; WithOptimizedModelPath applies to the dynamic session only.
//
// Several sessions mean several intra-op thread pools. With ONNX Runtime's
// default, a pool's workers spin for a while after each call, and when
// calls alternate between sessions (Upsample Guidance's two shapes) the
// spinning workers of one pool take cores from the next call: measured on
// 2 cores with 2 threads, guided sampling at 2x ran 1.5-1.7 times slower
// than with the dynamic session alone. So under WithShapeSessions every
// session of the model (the dynamic one included) is created with
// spinning off, unless WithSpinning or WithSessionConfig sets it.
//
// max must be 1 to MaxShapeSessions.
func WithShapeSessions(max int) Option {
	return func(c *config) {
		if max < 1 || max > MaxShapeSessions {
			c.errs = append(c.errs, fmt.Errorf("onnx: WithShapeSessions(%d): want 1 to %d sessions", max, MaxShapeSessions))
			return
		}
		c.shapeMax = max
	}
}

// ShapeSession describes a shape-specialised session of a Model or Graph
// (see WithShapeSessions).
type ShapeSession struct {
	// Inputs are the session's inputs with their dimensions as fixed in
	// it, in the session's input order.
	Inputs []TensorInfo
	// Err is why the session could not be created (calls with these shapes
	// then run in the dynamic session); nil for a session in use.
	Err error
}

// shapeSessions creates and keeps the shape-specialised sessions of one
// model file, keyed by the shapes of all session inputs.
type shapeSessions struct {
	src               *source
	inNames, outNames []string
	declared          []TensorInfo // the graph's declaration of each session input
	max               int

	mu    sync.Mutex
	byKey map[string]*shapeSession
	order []*shapeSession // in the order they were first asked for
}

// shapeSession is one specialised session; ready is closed once sess or
// err is set.
type shapeSession struct {
	ready  chan struct{}
	inputs []TensorInfo
	sess   *ort.DynamicAdvancedSession
	err    error
}

// newShapeSessions returns the specialised sessions of src over the named
// inputs and outputs, or nil when WithShapeSessions was not given.
func newShapeSessions(src *source, inNames, outNames []string) *shapeSessions {
	if src.cfg.shapeMax == 0 {
		return nil
	}
	declared := make([]TensorInfo, len(inNames))
	for i, name := range inNames {
		if k := slices.IndexFunc(src.ins, func(ti TensorInfo) bool { return ti.Name == name }); k >= 0 {
			declared[i] = src.ins[k]
		}
	}
	return &shapeSessions{src: src, inNames: inNames, outNames: outNames, declared: declared,
		max: src.cfg.shapeMax, byKey: map[string]*shapeSession{}}
}

// shapeKey formats the dimensions of each session input: the key of a
// specialised session.
func shapeKey(dims [][]int64) string {
	var b strings.Builder
	for i, d := range dims {
		if i > 0 {
			b.WriteByte(';')
		}
		for j, v := range d {
			if j > 0 {
				b.WriteByte('x')
			}
			b.WriteString(strconv.FormatInt(v, 10))
		}
	}
	return b.String()
}

// session returns the specialised session for the input dimensions dims
// (one list per session input, in order) whose shapeKey is key, creating it
// when there is room, or nil when calls with these shapes run in the
// dynamic session. It does not allocate for a shape already seen. ss may
// be nil.
func (ss *shapeSessions) session(key string, dims [][]int64) *ort.DynamicAdvancedSession {
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	s, ok := ss.byKey[key]
	if !ok {
		if len(ss.order) >= ss.max {
			ss.mu.Unlock()
			return nil
		}
		s = &shapeSession{ready: make(chan struct{})}
		ss.byKey[key] = s
		ss.order = append(ss.order, s)
		seq := len(ss.order)
		ss.mu.Unlock()
		ss.create(s, dims, seq)
		return s.sess
	}
	ss.mu.Unlock()
	<-s.ready
	return s.sess
}

// create opens s, the seq-th specialised session, for the input dimensions
// dims, and closes s.ready.
func (ss *shapeSessions) create(s *shapeSession, dims [][]int64, seq int) {
	defer close(s.ready)
	s.inputs = make([]TensorInfo, len(dims))
	want := make(map[string][]int64, len(dims))
	for i, d := range dims {
		ti := ss.declared[i]
		ti.Name = ss.inNames[i]
		ti.Dims = slices.Clone(d)
		s.inputs[i] = ti
		want[ss.inNames[i]] = d
	}
	s.sess, s.err = ss.src.newShapeSession(want, seq, ss.inNames, ss.outNames)
	if s.err != nil {
		ss.src.cfg.logger.Warn("onnx: cannot create a shape-specialised session; calls with these shapes use the dynamic session",
			"model", ss.src.path, "inputs", names(s.inputs), "error", s.err)
	}
}

// list describes the sessions created so far, in order.
func (ss *shapeSessions) list() []ShapeSession {
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	order := slices.Clone(ss.order)
	ss.mu.Unlock()
	var out []ShapeSession
	for _, s := range order {
		select {
		case <-s.ready:
			out = append(out, ShapeSession{Inputs: slices.Clone(s.inputs), Err: s.err})
		default: // still being created
		}
	}
	return out
}

// destroy releases every session. No call may be running or creating one.
func (ss *shapeSessions) destroy() error {
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var errs []error
	for _, s := range ss.order {
		if s.sess != nil {
			if err := s.sess.Destroy(); err != nil {
				errs = append(errs, fmt.Errorf("onnx: destroying a shape-specialised session: %w", err))
			}
			s.sess = nil
		}
	}
	ss.order, ss.byKey = nil, map[string]*shapeSession{}
	return errors.Join(errs...)
}

// externalDataKey is the session configuration entry that tells ONNX
// Runtime where a model loaded from memory finds its external data.
const externalDataKey = "session.model_external_initializers_file_folder_path"

// newShapeSession creates a session over a copy of the model with the
// inputs' dimensions fixed to dims, with the options and execution
// providers of src's dynamic session.
func (src *source) newShapeSession(dims map[string][]int64, seq int, inNames, outNames []string) (*ort.DynamicAdvancedSession, error) {
	data, err := os.ReadFile(src.path)
	if err != nil {
		return nil, fmt.Errorf("onnx: reading model: %w", err)
	}
	if data, err = fixInputDims(data, dims); err != nil {
		return nil, err
	}
	cfg := *src.cfg
	cfg.tune.optimized = ""
	if cfg.tune.profile != "" {
		cfg.tune.profile = fmt.Sprintf("%s_shape%d", cfg.tune.profile, seq)
	}
	dir, err := filepath.Abs(filepath.Dir(src.path))
	if err != nil {
		return nil, fmt.Errorf("onnx: model folder: %w", err)
	}
	cfg.tune.config = append([][2]string{{externalDataKey, dir}}, cfg.tune.config...)
	so, err := sessionOptions(&cfg, src.used)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("onnx: creating a shape-specialised session for %s: %w", src.path, err)
	}
	return sess, nil
}
