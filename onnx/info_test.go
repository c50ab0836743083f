package onnx

import (
	"strings"
	"testing"
)

// TestAssignRoles exercises role detection and validation on synthetic
// model signatures (no runtime needed).
func TestAssignRoles(t *testing.T) {
	f32 := func(name string, dims ...int64) TensorInfo {
		return TensorInfo{Name: name, DType: Float32, ONNXType: "FLOAT", Dims: dims}
	}
	typed := func(ti TensorInfo, d DType, onnxType string) TensorInfo {
		ti.DType, ti.ONNXType = d, onnxType
		return ti
	}
	cases := []struct {
		name    string
		ins     []TensorInfo
		outs    []TensorInfo
		cfg     config
		want    [3]string // sample, timestep, output
		tshape  TimestepShape
		wantErr string
	}{
		{"torch names", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", -1)}, []TensorInfo{f32("eps", -1, 1, -1, -1)}, config{},
			[3]string{"x", "t", "eps"}, TimestepBatch, ""},
		{"diffusers names, scalar int64 t", []TensorInfo{f32("sample", 2, 4, 64, 64), typed(f32("timestep"), Int64, "INT64"), f32("encoder_hidden_states", 2, 77, 768)},
			[]TensorInfo{f32("out_sample", 2, 4, 64, 64)}, config{}, [3]string{"sample", "timestep", "out_sample"}, TimestepScalar, ""},
		{"single t", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", 1)}, []TensorInfo{f32("eps", -1, 1, -1, -1)}, config{},
			[3]string{"x", "t", "eps"}, TimestepSingle, ""},
		{"structural fallback", []TensorInfo{f32("input_1", -1, 3, -1, -1), f32("input_2", -1)}, []TensorInfo{f32("y", -1, 3, -1, -1)}, config{},
			[3]string{"input_1", "input_2", "y"}, TimestepBatch, ""},
		{"video rank 5", []TensorInfo{f32("x", -1, 4, 16, -1, -1), f32("t", -1)}, []TensorInfo{f32("eps", -1, 4, 16, -1, -1)}, config{},
			[3]string{"x", "t", "eps"}, TimestepBatch, ""},
		{"overrides", []TensorInfo{f32("a", -1, 1, -1, -1), f32("b", -1)}, []TensorInfo{f32("p", -1, 1, -1, -1), f32("q", -1, 1, -1, -1)},
			config{xName: "a", tName: "b", outName: "q"}, [3]string{"a", "b", "q"}, TimestepBatch, ""},
		{"ambiguous outputs", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", -1)}, []TensorInfo{f32("p", -1, 1, -1, -1), f32("q", -1, 1, -1, -1)},
			config{}, [3]string{}, 0, "WithOutputName"},
		{"int sample", []TensorInfo{typed(f32("x", -1, 1, -1, -1), Int64, "INT64"), f32("t", -1)}, []TensorInfo{f32("eps", -1, 1, -1, -1)},
			config{}, [3]string{}, 0, "want float32 or float16"},
		{"int output", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", -1)}, []TensorInfo{typed(f32("eps", -1, 1, -1, -1), Int32, "INT32")},
			config{}, [3]string{}, 0, "want float32 or float16"},
		{"string timestep", []TensorInfo{f32("x", -1, 1, -1, -1), typed(f32("t", -1), Unsupported, "STRING")}, []TensorInfo{f32("eps", -1, 1, -1, -1)},
			config{}, [3]string{}, 0, "STRING"},
		{"rank-2 timestep", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", -1, 1)}, []TensorInfo{f32("eps", -1, 1, -1, -1)},
			config{}, [3]string{}, 0, "want [N], [1] or a scalar"},
		{"float16 scalar timestep (optimum >= 1.24 float16)", []TensorInfo{typed(f32("sample", -1, 4, -1, -1), Float16, "FLOAT16"), typed(f32("timestep"), Float16, "FLOAT16")},
			[]TensorInfo{typed(f32("out_sample", -1, 4, -1, -1), Float16, "FLOAT16")}, config{}, [3]string{"sample", "timestep", "out_sample"}, TimestepScalar, ""},
		{"bool extra", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", -1), typed(f32("mask", -1), Unsupported, "BOOL")},
			[]TensorInfo{f32("eps", -1, 1, -1, -1)}, config{}, [3]string{}, 0, "BOOL"},
		{"output rank", []TensorInfo{f32("x", -1, 1, -1, -1), f32("t", -1)}, []TensorInfo{f32("eps", -1, 4)},
			config{}, [3]string{}, 0, "has rank 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mi := ModelInfo{Inputs: tc.ins, Outputs: tc.outs}
			err := assignRoles(&mi, &tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]string{mi.Sample.Name, mi.Timestep.Name, mi.Output.Name}; got != tc.want {
				t.Fatalf("roles = %v, want %v", got, tc.want)
			}
			if mi.TimestepShape != tc.tshape {
				t.Fatalf("TimestepShape = %v, want %v", mi.TimestepShape, tc.tshape)
			}
		})
	}
}

func TestTensorInfoString(t *testing.T) {
	cases := []struct {
		ti   TensorInfo
		want string
	}{
		{TensorInfo{Name: "x", DType: Float16, Dims: []int64{-1, 4, 64, -1}}, "x[?,4,64,?]float16"},
		{TensorInfo{Name: "t", DType: Int64}, "t[]int64"},
		{TensorInfo{Name: "m", DType: Unsupported, ONNXType: "BOOL", Dims: []int64{2}}, "m[2]BOOL"},
	}
	for _, tc := range cases {
		if got := tc.ti.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}
