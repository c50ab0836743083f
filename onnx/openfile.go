package onnx

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	ort "github.com/yalue/onnxruntime_go"
)

// OpenFile is Open for models whose weights are stored as external data
// beside the .onnx file, such as the UNet of diffusers' ONNX export
// (unet/model.onnx with unet/weights.pb) or of optimum's (model.onnx with
// model.onnx_data): ONNX Runtime reads the file itself and resolves the
// external data relative to it. Open reads the file into memory and hands
// ONNX Runtime the bytes, which cannot refer to external data. The result is
// the same *Model, with the same options, roles and behaviour; OpenFile works
// for single-file models too.
func OpenFile(path string, opts ...Option) (*Model, error) {
	cfg := &config{}
	for _, o := range opts {
		o(cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, errors.Join(cfg.errs...)
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: reading model: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("onnx: model path %s is a directory", path)
	}
	if st.Size() == 0 {
		return nil, fmt.Errorf("onnx: model file %s is empty", path)
	}
	if err := InitRuntime(cfg.lib); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: %s is not a loadable ONNX model: %w", path, err)
	}
	mi := ModelInfo{Path: path, RuntimeVersion: RuntimeVersion()}
	if mi.Inputs, err = tensorInfos(ins); err != nil {
		return nil, err
	}
	if mi.Outputs, err = tensorInfos(outs); err != nil {
		return nil, err
	}
	if err := assignRoles(&mi, cfg); err != nil {
		return nil, fmt.Errorf("%w (model %s)", err, path)
	}
	inputNames := []string{mi.Sample.Name, mi.Timestep.Name}
	for _, e := range mi.Extra {
		inputNames = append(inputNames, e.Name)
	}
	sess, providers, err := newSessionFromFile(cfg, path, inputNames, []string{mi.Output.Name})
	if err != nil {
		return nil, err
	}
	for _, p := range providers {
		mi.Providers = append(mi.Providers, p.name)
	}
	mi.Providers = append(mi.Providers, "CPUExecutionProvider")

	m := &Model{info: mi, sess: sess, extraIx: map[string]int{}, cache: map[bindKey][]*binding{}}
	for i, e := range mi.Extra {
		m.extraIx[e.Name] = i
	}
	m.root = &Bound{m: m, id: 0, values: make([]*boundValue, len(mi.Extra))}
	return m, nil
}
