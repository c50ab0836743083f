package onnx

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Profile is the content of an ONNX Runtime session profile (the trace
// WithProfiling writes): the Run calls and the operator calls inside them.
type Profile struct {
	// Runs are the Run calls in the order they started.
	Runs []ProfileRun
	// Load is the time the session took to load the model and initialise
	// (graph optimisation, kernel creation), once.
	Load time.Duration
}

// ProfileRun is one Run call of a profiled session.
type ProfileRun struct {
	// Duration is the whole call as the runtime timed it ("model_run").
	Duration time.Duration
	// Nodes are the operator calls inside it, in the order they started.
	Nodes []ProfileNode
}

// NodeTime returns the sum of the durations of r's operator calls. With
// sequential execution the rest of Duration is the runtime's own work
// between operators (allocation, scheduling, input and output binding).
func (r ProfileRun) NodeTime() time.Duration {
	var d time.Duration
	for _, n := range r.Nodes {
		d += n.Duration
	}
	return d
}

// ProfileNode is one operator call.
type ProfileNode struct {
	// Name is the node's name in the graph the runtime ran (after its
	// graph optimisations: fused and inserted nodes have generated names).
	Name string
	// Op is the operator type, such as "Conv" or "InstanceNormalization".
	Op string
	// Provider is the execution provider that ran it.
	Provider string
	// Duration is the time the kernel took.
	Duration time.Duration
}

// traceEvent is the part of a trace event that ReadProfile reads.
type traceEvent struct {
	Cat  string `json:"cat"`
	Name string `json:"name"`
	Ph   string `json:"ph"`
	TS   int64  `json:"ts"`  // microseconds from the profiler's start
	Dur  int64  `json:"dur"` // microseconds
	Args struct {
		Op       string `json:"op_name"`
		Provider string `json:"provider"`
	} `json:"args"`
}

// ReadProfile parses an ONNX Runtime profile (a JSON array of trace
// events). Operator calls are attributed to the Run call whose time span
// contains their start; calls outside every Run are an error, and so is a
// trace with no events. Profile one Run call at a time: the operators of
// Run calls that overlapped (concurrent calls on one session) are
// attributed to the latest call started before them, which may mix them.
func ReadProfile(r io.Reader) (*Profile, error) {
	var events []traceEvent
	if err := json.NewDecoder(r).Decode(&events); err != nil {
		return nil, fmt.Errorf("onnx: reading profile: %w", err)
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("onnx: reading profile: no events")
	}
	type span struct{ start, end int64 }
	var spans []span
	p := &Profile{}
	for _, e := range events {
		if e.Cat != "Session" || e.Ph != "X" {
			continue
		}
		switch e.Name {
		case "model_run":
			spans = append(spans, span{e.TS, e.TS + e.Dur})
			p.Runs = append(p.Runs, ProfileRun{Duration: time.Duration(e.Dur) * time.Microsecond})
		case "model_loading_uri", "model_loading_array", "session_initialization":
			p.Load += time.Duration(e.Dur) * time.Microsecond
		}
	}
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(spans[a].start, spans[b].start) })
	sorted := make([]ProfileRun, len(order))
	sortedSpans := make([]span, len(order))
	for k, i := range order {
		sorted[k], sortedSpans[k] = p.Runs[i], spans[i]
	}
	p.Runs, spans = sorted, sortedSpans
	for _, e := range events {
		if e.Cat != "Node" || e.Ph != "X" || !strings.HasSuffix(e.Name, "_kernel_time") {
			continue
		}
		i, _ := slices.BinarySearchFunc(spans, e.TS, func(s span, ts int64) int { return cmp.Compare(s.start, ts+1) })
		i-- // the last run starting at or before e
		if i < 0 || e.TS > spans[i].end {
			return nil, fmt.Errorf("onnx: reading profile: node %s at %d µs is outside every run", e.Name, e.TS)
		}
		p.Runs[i].Nodes = append(p.Runs[i].Nodes, ProfileNode{
			Name:     strings.TrimSuffix(e.Name, "_kernel_time"),
			Op:       e.Args.Op,
			Provider: e.Args.Provider,
			Duration: time.Duration(e.Dur) * time.Microsecond,
		})
	}
	return p, nil
}

// ReadProfileFile reads the profile at path (see ReadProfile).
func ReadProfileFile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: reading profile: %w", err)
	}
	defer f.Close()
	return ReadProfile(f)
}

// ProfileFiles returns the profiles written under prefix (see
// WithProfiling), oldest first: the files prefix_*.json.
func ProfileFiles(prefix string) ([]string, error) {
	files, err := filepath.Glob(globEscape(prefix) + "_*.json")
	if err != nil {
		return nil, fmt.Errorf("onnx: listing profiles: %w", err)
	}
	slices.Sort(files) // the runtime names them by date and time
	return files, nil
}

// globEscape quotes the pattern characters of filepath.Match in s.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// OpStat is the time one operator type (or one node) took over a set of
// Run calls.
type OpStat struct {
	// Op is the operator type.
	Op string
	// Calls is the number of operator calls per Run call.
	Calls float64
	// Time is the median over the Run calls of the time spent in the
	// operator type per call.
	Time time.Duration
	// Share is Time as a fraction of the sum of the Times of all operator
	// types.
	Share float64
}

// ProfileSummary condenses the Run calls of a profile. Its times are
// medians over the Run calls, so that a few calls slowed down by other work
// on the machine (a thread of the runtime's pool waiting for a core) do not
// move them.
type ProfileSummary struct {
	// Runs is the number of Run calls summarised.
	Runs int
	// Run is the median duration of a Run call, Nodes the median of their
	// node times (ProfileRun.NodeTime).
	Run, Nodes time.Duration
	// Overhead is the median over the Run calls of the fraction of the
	// call outside the operator calls: 1 - NodeTime/Duration.
	Overhead float64
	// Ops lists the operator types by decreasing time.
	Ops []OpStat
	// Top lists the individual nodes by decreasing time, as OpStats
	// whose Op is "Name (Op)".
	Top []OpStat
}

// median returns the median of v (the mean of the middle two for an even
// count); it sorts v.
func median[T int64 | float64](v []T) float64 {
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return float64(v[n/2])
	}
	return (float64(v[n/2-1]) + float64(v[n/2])) / 2
}

// Summary summarises the Run calls of p from the skip-th on (the first
// calls of a session warm caches and allocate its memory arena; skip them).
// It returns a zero summary when no call is left.
func (p *Profile) Summary(skip int) ProfileSummary {
	runs := p.Runs[min(max(skip, 0), len(p.Runs)):]
	s := ProfileSummary{Runs: len(runs)}
	if len(runs) == 0 {
		return s
	}
	type acc struct {
		calls int
		dur   []int64 // per run
	}
	byOp, byNode := map[string]*acc{}, map[string]*acc{}
	add := func(m map[string]*acc, k string, r int, d time.Duration) {
		a := m[k]
		if a == nil {
			a = &acc{dur: make([]int64, len(runs))}
			m[k] = a
		}
		a.calls++
		a.dur[r] += int64(d)
	}
	durs, nodes, over := make([]int64, len(runs)), make([]int64, len(runs)), make([]float64, len(runs))
	for i, r := range runs {
		durs[i], nodes[i] = int64(r.Duration), int64(r.NodeTime())
		if r.Duration > 0 {
			over[i] = 1 - float64(nodes[i])/float64(durs[i])
		}
		for _, n := range r.Nodes {
			add(byOp, n.Op, i, n.Duration)
			add(byNode, n.Name+" ("+n.Op+")", i, n.Duration)
		}
	}
	s.Run, s.Nodes = time.Duration(median(durs)), time.Duration(median(nodes))
	s.Overhead = median(over)
	stats := func(m map[string]*acc) []OpStat {
		var out []OpStat
		var total time.Duration
		for k, a := range m {
			st := OpStat{Op: k, Calls: float64(a.calls) / float64(len(runs)), Time: time.Duration(median(a.dur))}
			total += st.Time
			out = append(out, st)
		}
		for i := range out {
			if total > 0 {
				out[i].Share = float64(out[i].Time) / float64(total)
			}
		}
		slices.SortFunc(out, func(a, b OpStat) int {
			if c := cmp.Compare(b.Time, a.Time); c != 0 {
				return c
			}
			return cmp.Compare(a.Op, b.Op)
		})
		return out
	}
	s.Ops, s.Top = stats(byOp), stats(byNode)
	return s
}
