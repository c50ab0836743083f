package onnx

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto (ONNX IR) that fixInputDims reads and writes.
const (
	fieldModelGraph      protowire.Number = 7  // ModelProto.graph
	fieldGraphInput      protowire.Number = 11 // GraphProto.input
	fieldValueInfoName   protowire.Number = 1  // ValueInfoProto.name
	fieldValueInfoType   protowire.Number = 2  // ValueInfoProto.type
	fieldTypeTensor      protowire.Number = 1  // TypeProto.tensor_type
	fieldTensorTypeShape protowire.Number = 2  // TypeProto.Tensor.shape
	fieldShapeDim        protowire.Number = 1  // TensorShapeProto.dim
	fieldDimValue        protowire.Number = 1  // TensorShapeProto.Dimension.dim_value
	fieldDimParam        protowire.Number = 2  // TensorShapeProto.Dimension.dim_param
)

// fixInputDims returns a copy of the serialised ONNX model data in which the
// graph inputs named in dims have every dimension fixed to the given sizes:
// a symbolic dimension (dim_param) or an unnamed one becomes a dim_value,
// and a dimension that is already fixed must equal its size. Everything
// else (nodes, initializers, value infos, fields this function does not
// know) is copied byte for byte. A model whose input shapes are fixed this
// way lets ONNX Runtime resolve the graph's shape arithmetic (Shape, Gather,
// Concat, Reshape targets) when it creates the session, as its free
// dimension overrides would.
//
// It is an error when data is not a well-formed protobuf message, when a
// named input is missing or is not a tensor, or when a rank or a fixed
// dimension disagrees with dims. An input without a declared shape gets
// one.
func fixInputDims(data []byte, dims map[string][]int64) ([]byte, error) {
	found := map[string]bool{}
	graphs := 0
	out, err := rewriteFields(data, fieldModelGraph, func(graph []byte) ([]byte, error) {
		graphs++
		return rewriteFields(graph, fieldGraphInput, func(vi []byte) ([]byte, error) {
			name, err := valueInfoName(vi)
			if err != nil {
				return nil, err
			}
			want, ok := dims[name]
			if !ok {
				return vi, nil
			}
			found[name] = true
			fixed := false
			vi, err = rewriteFields(vi, fieldValueInfoType, func(tp []byte) ([]byte, error) {
				return rewriteFields(tp, fieldTypeTensor, func(tt []byte) ([]byte, error) {
					fixed = true
					b, err := fixTensorShape(tt, want)
					if err != nil {
						return nil, fmt.Errorf("input %s: %w", name, err)
					}
					return b, nil
				})
			})
			if err == nil && !fixed {
				err = fmt.Errorf("input %s is not a tensor", name)
			}
			return vi, err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: fixing input shapes: %w", err)
	}
	if graphs == 0 {
		return nil, fmt.Errorf("onnx: fixing input shapes: the model has no graph")
	}
	var missing []string
	for name := range dims {
		if !found[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("onnx: fixing input shapes: the graph has no input %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// rewriteFields copies the protobuf message msg, replacing the content of
// every length-delimited field num by what fn returns for it. Other fields
// are copied as they are.
func rewriteFields(msg []byte, num protowire.Number, fn func([]byte) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, len(msg)+16)
	for len(msg) > 0 {
		n, typ, tl, vl, err := nextField(msg)
		if err != nil {
			return nil, err
		}
		if n == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(msg[tl:])
			nv, err := fn(v)
			if err != nil {
				return nil, err
			}
			out = protowire.AppendTag(out, n, typ)
			out = protowire.AppendBytes(out, nv)
		} else {
			out = append(out, msg[:tl+vl]...)
		}
		msg = msg[tl+vl:]
	}
	return out, nil
}

// valueInfoName returns the name field of a ValueInfoProto.
func valueInfoName(vi []byte) (string, error) {
	name := ""
	_, err := rewriteFields(vi, fieldValueInfoName, func(b []byte) ([]byte, error) {
		name = string(b)
		return b, nil
	})
	return name, err
}

// fixTensorShape rewrites a TypeProto.Tensor so that its shape is dims.
func fixTensorShape(tt []byte, dims []int64) ([]byte, error) {
	hasShape := false
	out, err := rewriteFields(tt, fieldTensorTypeShape, func(shape []byte) ([]byte, error) {
		hasShape = true
		i := 0
		b, err := rewriteFields(shape, fieldShapeDim, func(dim []byte) ([]byte, error) {
			if i >= len(dims) {
				i++
				return dim, nil
			}
			d, err := fixDim(dim, dims[i])
			if err != nil {
				return nil, fmt.Errorf("dimension %d: %w", i, err)
			}
			i++
			return d, nil
		})
		if err == nil && i != len(dims) {
			err = fmt.Errorf("the graph declares rank %d, the call has rank %d", i, len(dims))
		}
		return b, err
	})
	if err != nil {
		return nil, err
	}
	if !hasShape {
		var shape []byte
		for _, d := range dims {
			shape = protowire.AppendTag(shape, fieldShapeDim, protowire.BytesType)
			shape = protowire.AppendBytes(shape, appendDimValue(nil, d))
		}
		out = protowire.AppendTag(out, fieldTensorTypeShape, protowire.BytesType)
		out = protowire.AppendBytes(out, shape)
	}
	return out, nil
}

// fixDim rewrites a TensorShapeProto.Dimension to the value v: a dim_param
// is dropped, a dim_value must be v (a negative one, which some exporters
// write for a dynamic dimension, is replaced), other fields (denotation)
// are kept.
func fixDim(dim []byte, v int64) ([]byte, error) {
	out := appendDimValue(nil, v)
	for len(dim) > 0 {
		n, typ, tl, vl, err := nextField(dim)
		if err != nil {
			return nil, err
		}
		switch {
		case n == fieldDimValue && typ == protowire.VarintType:
			old, _ := protowire.ConsumeVarint(dim[tl:])
			if d := int64(old); d >= 0 && d != v {
				return nil, fmt.Errorf("fixed to %d in the graph, the call has %d", d, v)
			}
		case n == fieldDimParam:
		default:
			out = append(out, dim[:tl+vl]...)
		}
		dim = dim[tl+vl:]
	}
	return out, nil
}

// nextField reads the tag of the field msg starts with: its number, wire
// type, and the lengths of its tag (tl) and value (vl), or an error for
// malformed bytes.
func nextField(msg []byte) (n protowire.Number, typ protowire.Type, tl, vl int, err error) {
	n, typ, tl = protowire.ConsumeTag(msg)
	if tl < 0 {
		return 0, 0, 0, 0, fmt.Errorf("malformed protobuf: %w", protowire.ParseError(tl))
	}
	vl = protowire.ConsumeFieldValue(n, typ, msg[tl:])
	if vl < 0 {
		return 0, 0, 0, 0, fmt.Errorf("malformed protobuf field %d: %w", n, protowire.ParseError(vl))
	}
	return n, typ, tl, vl, nil
}

// appendDimValue appends the dim_value field v to b.
func appendDimValue(b []byte, v int64) []byte {
	b = protowire.AppendTag(b, fieldDimValue, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}
