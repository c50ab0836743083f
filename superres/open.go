package superres

import (
	"context"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/onnx"
)

// Open loads the ONNX super-resolution model at path, described by o, with
// the onnx package's options (library path, threads, execution
// providers). The graph must have one image input and one output (or name
// them in o.Input and o.Output), float32 or float16, of rank 4; a fixed
// channel dimension must agree with o.Channels and o.Layout.
func Open(path string, o Options, opts ...onnx.Option) (*Model, error) {
	g, err := onnx.OpenGraph(path, opts...)
	if err != nil {
		return nil, err
	}
	m, err := newONNX(g, path, o)
	if err != nil {
		g.Close()
		return nil, err
	}
	return m, nil
}

func newONNX(g *onnx.Graph, path string, o Options) (*Model, error) {
	info := g.Info()
	pick := func(kind, name string, ts []onnx.TensorInfo) (onnx.TensorInfo, error) {
		if name == "" {
			if len(ts) != 1 {
				return onnx.TensorInfo{}, fmt.Errorf("superres: %s has %d %ss; name the image %s in Options", path, len(ts), kind, kind)
			}
			return ts[0], nil
		}
		for _, t := range ts {
			if t.Name == name {
				return t, nil
			}
		}
		return onnx.TensorInfo{}, fmt.Errorf("superres: %s has no %s %q", path, kind, name)
	}
	in, err := pick("input", o.Input, info.Inputs)
	if err != nil {
		return nil, err
	}
	out, err := pick("output", o.Output, info.Outputs)
	if err != nil {
		return nil, err
	}
	if len(info.Inputs) != 1 {
		return nil, fmt.Errorf("superres: %s has %d inputs (%v); only single-input models can be run", path, len(info.Inputs), info.Inputs)
	}
	axis, other, otherLayout := 3, 1, NCHW
	if o.Layout == NCHW {
		axis, other, otherLayout = 1, 3, NHWC
	}
	for _, t := range []onnx.TensorInfo{in, out} {
		if len(t.Dims) != 4 {
			return nil, fmt.Errorf("superres: %s: %s, want rank 4 (%v)", path, t, o.Layout)
		}
		if t.DType != onnx.Float32 && t.DType != onnx.Float16 {
			return nil, fmt.Errorf("superres: %s: %s, want float32 or float16", path, t)
		}
		if c := t.Dims[other]; t.Dims[axis] < 0 && (c == 1 || c == 3) {
			return nil, fmt.Errorf("superres: %s: %s has a fixed %d on the %v channel axis and a dynamic %v one: set Options.Layout to %v", path, t, c, otherLayout, o.Layout, otherLayout)
		}
		if c := t.Dims[axis]; c > 0 {
			if o.Channels == 0 && (c == 1 || c == 3) {
				o.Channels = int(c)
			}
			if int(c) != o.Channels {
				return nil, fmt.Errorf("superres: %s: %s has %d channels on the %v channel axis, want %d", path, t, c, o.Layout, o.Channels)
			}
		}
	}
	return newModel(&onnxNet{g: g, in: in.Name, out: out.Name}, o)
}

// onnxNet runs a super-resolution graph.
type onnxNet struct {
	g       *onnx.Graph
	in, out string
}

func (n *onnxNet) run(ctx context.Context, in []float32, inShape []int, out []float32, outShape []int) error {
	x := tensor.New(tensor.WithShape(inShape...), tensor.WithBacking(in))
	y := tensor.New(tensor.WithShape(outShape...), tensor.WithBacking(out))
	if err := n.g.Run(ctx, map[string]*tensor.Dense{n.in: x}, map[string]*tensor.Dense{n.out: y}); err != nil {
		return fmt.Errorf("superres: %w", err)
	}
	return nil
}

func (n *onnxNet) close() error { return n.g.Close() }
