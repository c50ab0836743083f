package main

import (
	"context"
	"fmt"
	"math"

	"gorgonia.org/tensor"

	"github.com/ugo-diffusion/ugo/onnx"
)

// classifier runs a Fashion-MNIST feature network (the shipped 28x28
// classifier, or the 14x14 pooled-image classifier and crop network): input
// x [N,1,size,size] in [-1, 1], outputs logits [N,10] and features [N,dim].
type classifier struct {
	sess *onnx.Graph
	dim  int
	size int
}

func newClassifier(path string, opts ...onnx.Option) (*classifier, error) {
	sess, err := onnx.OpenGraph(path, opts...)
	if err != nil {
		return nil, err
	}
	info := sess.Info()
	dim := 0
	for _, o := range info.Outputs {
		if o.Name == "features" && len(o.Dims) == 2 {
			dim = int(o.Dims[1])
		}
	}
	if dim <= 0 {
		sess.Close()
		return nil, fmt.Errorf("%s: no output named features with shape [N, dim] (outputs: %v)", path, info.Outputs)
	}
	size := 0
	if len(info.Inputs) == 1 && len(info.Inputs[0].Dims) == 4 && info.Inputs[0].Dims[2] == info.Inputs[0].Dims[3] {
		size = int(info.Inputs[0].Dims[2])
	}
	if size <= 0 {
		sess.Close()
		return nil, fmt.Errorf("%s: want one input of shape [N, 1, S, S] with a fixed S (inputs: %v)", path, info.Inputs)
	}
	return &classifier{sess: sess, dim: dim, size: size}, nil
}

func (c *classifier) Close() error { return c.sess.Close() }

// features classifies n size x size images in batches and returns their
// features (n x dim) and the mean top-class softmax probability.
func (c *classifier) features(ctx context.Context, images []float32, n int) ([]float32, float64, error) {
	const batch = 500
	per := c.size * c.size
	if len(images) != n*per {
		return nil, 0, fmt.Errorf("classifier: %d values for %d images of %dx%d", len(images), n, c.size, c.size)
	}
	feat := make([]float32, n*c.dim)
	var conf float64
	for start := 0; start < n; start += batch {
		nb := min(batch, n-start)
		x := tensor.New(tensor.WithShape(nb, 1, c.size, c.size), tensor.WithBacking(images[start*per:(start+nb)*per]))
		logits := tensor.New(tensor.WithShape(nb, 10), tensor.WithBacking(make([]float32, nb*10)))
		f := tensor.New(tensor.WithShape(nb, c.dim), tensor.WithBacking(feat[start*c.dim:(start+nb)*c.dim]))
		if err := c.sess.Run(ctx, map[string]*tensor.Dense{"x": x}, map[string]*tensor.Dense{"logits": logits, "features": f}); err != nil {
			return nil, 0, err
		}
		l := logits.Float32s()
		for i := 0; i < nb; i++ {
			conf += topProbability(l[i*10 : (i+1)*10])
		}
	}
	return feat, conf / float64(n), nil
}

func topProbability(logits []float32) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - m)
	}
	return 1 / sum
}
