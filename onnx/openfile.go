package onnx

// OpenFile is Open for models whose weights are stored as external data
// beside the .onnx file, such as the UNet of diffusers' ONNX export
// (unet/model.onnx with unet/weights.pb) or of optimum's (model.onnx with
// model.onnx_data): ONNX Runtime reads the file itself and resolves the
// external data relative to it. Open reads the file into memory and hands
// ONNX Runtime the bytes, which cannot refer to external data. The result is
// the same *Model, with the same options, roles and behaviour; OpenFile works
// for single-file models too.
func OpenFile(path string, opts ...Option) (*Model, error) {
	return openModel(path, opts, false)
}
