package onnx

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// predictRef runs m on a fixed input and checks the output against the
// test models' reference.
func predictRef(t *testing.T, m *Model, what string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 7))
	x := randDense(rng, 2, 2, 9, 11)
	dst := zerosLike(x)
	if err := m.PredictNoise(context.Background(), dst, x, []float32{30, 700}); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want := reference(x.Float32s(), []int{2, 2, 9, 11}, func(n int) float64 { return []float64{30, 700}[n] }, nil)
	assertClose(t, dst.Float32s(), want, 1e-4, what)
}

func TestTuningOptionsKeepOutputs(t *testing.T) {
	requireRuntime(t)
	for _, level := range []GraphOptimization{OptimizeAll, OptimizeExtended, OptimizeBasic, OptimizeNone} {
		m := open(t, "dynamic.onnx", WithGraphOptimization(level), WithThreads(2, 1))
		predictRef(t, m, "level "+level.String())
	}
	for _, spin := range []bool{true, false} {
		m := open(t, "dynamic.onnx", WithSpinning(spin), WithThreads(2, 1))
		predictRef(t, m, "spinning")
	}
	m := open(t, "dynamic.onnx", WithSessionConfig("session.set_denormal_as_zero", "1"),
		WithSessionConfig("session.intra_op.allow_spinning", "1"), WithSessionConfig("session.intra_op.allow_spinning", "0"))
	predictRef(t, m, "session config")
}

func TestOptimizedModelPath(t *testing.T) {
	requireRuntime(t)
	for _, level := range []GraphOptimization{OptimizeExtended, OptimizeAll} {
		path := filepath.Join(t.TempDir(), "opt.onnx")
		m := open(t, "dynamic.onnx", WithGraphOptimization(level), WithOptimizedModelPath(path))
		predictRef(t, m, "saving "+level.String())
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("level %s: the optimised model was not written: %v", level, err)
		}
		if st.Size() == 0 {
			t.Fatalf("level %s: the optimised model is empty", level)
		}
		// The saved graph runs as it is.
		opt, err := Open(path, WithGraphOptimization(OptimizeNone))
		if err != nil {
			t.Fatalf("level %s: opening the optimised model: %v", level, err)
		}
		predictRef(t, opt, "optimised "+level.String())
		if err := opt.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTuningOptionErrors(t *testing.T) {
	requireRuntime(t)
	for _, c := range []struct {
		opt  Option
		want string
	}{
		{WithProfiling(""), "WithProfiling"},
		{WithOptimizedModelPath(""), "WithOptimizedModelPath"},
		{WithGraphOptimization(-1), "WithGraphOptimization"},
		{WithGraphOptimization(OptimizeNone + 1), "WithGraphOptimization"},
		{WithSessionConfig(" ", "1"), "WithSessionConfig"},
	} {
		m, err := Open(modelPath("dynamic.onnx"), c.opt)
		if err == nil {
			m.Close()
			t.Fatalf("want an error mentioning %s", c.want)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q does not mention %s", err, c.want)
		}
	}
	if got := GraphOptimization(9).String(); got != "GraphOptimization(9)" {
		t.Errorf("String of an unknown level = %q", got)
	}
}

func TestProfiling(t *testing.T) {
	requireRuntime(t)
	prefix := filepath.Join(t.TempDir(), "run[1]") // a pattern character in the prefix
	m, err := Open(modelPath("dynamic.onnx"), WithProfiling(prefix), WithThreads(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	const calls = 4
	for range calls {
		predictRef(t, m, "profiled")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ProfileFiles(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("ProfileFiles = %v, want one file", files)
	}
	p, err := ReadProfileFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Runs) != calls {
		t.Fatalf("%d runs in the profile, want %d", len(p.Runs), calls)
	}
	if p.Load <= 0 {
		t.Errorf("Load = %v, want the session's load time", p.Load)
	}
	for i, r := range p.Runs {
		var conv bool
		for _, n := range r.Nodes {
			conv = conv || n.Op == "Conv"
			if n.Provider != "CPUExecutionProvider" {
				t.Errorf("run %d: node %s on %q", i, n.Name, n.Provider)
			}
		}
		if !conv {
			t.Errorf("run %d: no Conv among %d nodes", i, len(r.Nodes))
		}
		if r.NodeTime() > r.Duration {
			t.Errorf("run %d: node time %v exceeds the run's %v", i, r.NodeTime(), r.Duration)
		}
	}
	s := p.Summary(1)
	if s.Runs != calls-1 {
		t.Errorf("Summary(1).Runs = %d", s.Runs)
	}
	var share float64
	for _, o := range s.Ops {
		share += o.Share
	}
	if share < 0.999 || share > 1.001 {
		t.Errorf("op shares sum to %v, want 1", share)
	}
}

// A trace in the runtime's format: two runs of two nodes, a load.
const syntheticTrace = `[
{"cat" : "Session","pid" :1,"tid" :1,"dur" :100,"ts" :2,"ph" : "X","name" :"model_loading_uri","args" : {}},
{"cat" : "Session","pid" :1,"tid" :1,"dur" :400,"ts" :110,"ph" : "X","name" :"session_initialization","args" : {}},
{"cat" : "Node","pid" :1,"tid" :2,"dur" :60,"ts" :1001,"ph" : "X","name" :"conv_kernel_time","args" : {"op_name" : "Conv","provider" : "CPUExecutionProvider"}},
{"cat" : "Node","pid" :1,"tid" :2,"dur" :20,"ts" :1070,"ph" : "X","name" :"add_kernel_time","args" : {"op_name" : "Add","provider" : "CPUExecutionProvider"}},
{"cat" : "Node","pid" :1,"tid" :2,"dur" :1,"ts" :1070,"ph" : "X","name" :"add_fence_before","args" : {"op_name" : "Add"}},
{"cat" : "Session","pid" :1,"tid" :2,"dur" :99,"ts" :1000,"ph" : "X","name" :"SequentialExecutor::Execute","args" : {}},
{"cat" : "Session","pid" :1,"tid" :2,"dur" :100,"ts" :1000,"ph" : "X","name" :"model_run","args" : {}},
{"cat" : "Node","pid" :1,"tid" :2,"dur" :140,"ts" :2001,"ph" : "X","name" :"conv_kernel_time","args" : {"op_name" : "Conv","provider" : "CPUExecutionProvider"}},
{"cat" : "Node","pid" :1,"tid" :2,"dur" :20,"ts" :2150,"ph" : "X","name" :"add_kernel_time","args" : {"op_name" : "Add","provider" : "CPUExecutionProvider"}},
{"cat" : "Session","pid" :1,"tid" :2,"dur" :200,"ts" :2000,"ph" : "X","name" :"model_run","args" : {}}
]`

func TestReadProfile(t *testing.T) {
	p, err := ReadProfile(strings.NewReader(syntheticTrace))
	if err != nil {
		t.Fatal(err)
	}
	us := time.Microsecond
	if p.Load != 500*us {
		t.Errorf("Load = %v, want 500µs", p.Load)
	}
	if len(p.Runs) != 2 || len(p.Runs[0].Nodes) != 2 || len(p.Runs[1].Nodes) != 2 {
		t.Fatalf("runs %+v, want 2 runs of 2 nodes", p.Runs)
	}
	if p.Runs[0].Duration != 100*us || p.Runs[0].NodeTime() != 80*us || p.Runs[1].NodeTime() != 160*us {
		t.Errorf("run 0 %v / %v, run 1 node time %v", p.Runs[0].Duration, p.Runs[0].NodeTime(), p.Runs[1].NodeTime())
	}
	if n := p.Runs[1].Nodes[0]; n.Name != "conv" || n.Op != "Conv" || n.Provider != "CPUExecutionProvider" || n.Duration != 140*us {
		t.Errorf("run 1 node 0 = %+v", n)
	}
	s := p.Summary(0)
	// Medians of two: run 150µs, node time 120µs; overhead (0.2+0.2)/2;
	// Conv 100µs, Add 20µs.
	if s.Runs != 2 || s.Run != 150*us || s.Nodes != 120*us {
		t.Errorf("summary %+v", s)
	}
	if d := s.Overhead - 0.2; d > 1e-12 || d < -1e-12 {
		t.Errorf("Overhead = %v, want 0.2", s.Overhead)
	}
	if len(s.Ops) != 2 || s.Ops[0].Op != "Conv" || s.Ops[0].Time != 100*us || s.Ops[0].Calls != 1 ||
		s.Ops[1].Op != "Add" || s.Ops[1].Time != 20*us {
		t.Errorf("Ops = %+v", s.Ops)
	}
	if d := s.Ops[0].Share - 100.0/120; d > 1e-12 || d < -1e-12 {
		t.Errorf("Conv share = %v, want 5/6", s.Ops[0].Share)
	}
	if len(s.Top) != 2 || s.Top[0].Op != "conv (Conv)" {
		t.Errorf("Top = %+v", s.Top)
	}
	if s := p.Summary(1); s.Runs != 1 || s.Run != 200*us || s.Nodes != 160*us {
		t.Errorf("Summary(1) = %+v", s)
	}
	if s := p.Summary(5); s.Runs != 0 || s.Ops != nil {
		t.Errorf("Summary(5) = %+v, want zero", s)
	}
	// The median ignores one slow run of three.
	slow := p.Runs[1]
	slow.Duration, slow.Nodes = 10000*us, []ProfileNode{{Name: "conv", Op: "Conv", Duration: 9000 * us}, {Name: "add", Op: "Add", Duration: 900 * us}}
	p.Runs = append(p.Runs, slow)
	if s := p.Summary(0); s.Run != 200*us || s.Ops[0].Time != 140*us || s.Ops[1].Time != 20*us {
		t.Errorf("with a slow run: %+v", s)
	}

	for name, bad := range map[string]string{
		"not JSON":  "{",
		"no events": "[]",
		"orphan node": `[{"cat" : "Node","dur" :1,"ts" :5,"ph" : "X","name" :"n_kernel_time","args" : {"op_name" : "Add"}},
			{"cat" : "Session","dur" :10,"ts" :10,"ph" : "X","name" :"model_run","args" : {}}]`,
		"node after the runs": `[{"cat" : "Session","dur" :10,"ts" :10,"ph" : "X","name" :"model_run","args" : {}},
			{"cat" : "Node","dur" :1,"ts" :30,"ph" : "X","name" :"n_kernel_time","args" : {"op_name" : "Add"}}]`,
	} {
		if _, err := ReadProfile(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := ReadProfileFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: want an error")
	}
}

// Under WithShapeSessions the sessions are created with intra-op spinning
// off unless the options set it; without shape sessions nothing changes.
func TestShapeSessionsTurnSpinningOff(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		off  bool
	}{
		{"default", nil, false},
		{"shape sessions", []Option{WithShapeSessions(4)}, true},
		{"shape sessions, spinning asked for", []Option{WithShapeSessions(4), WithSpinning(true)}, false},
		{"spinning asked for first", []Option{WithSpinning(true), WithShapeSessions(2)}, false},
		{"shape sessions, spinning off", []Option{WithShapeSessions(1), WithSpinning(false)}, false},
		{"shape sessions, config entry", []Option{WithShapeSessions(1), WithSessionConfig(spinningKey, "1")}, false},
		{"spinning only", []Option{WithSpinning(true)}, false},
		{"other config entry", []Option{WithShapeSessions(3), WithSessionConfig("session.set_denormal_as_zero", "1")}, true},
	}
	for _, c := range cases {
		cfg := &config{}
		for _, o := range c.opts {
			o(cfg)
		}
		if got := cfg.spinningOff(); got != c.off {
			t.Errorf("%s: spinningOff() = %v, want %v", c.name, got, c.off)
		}
	}
}
