package schedule

import "math/big"

// This file reproduces, operation for operation, the float32 arithmetic of
// the PyTorch CPU kernels that diffusers' schedulers rely on, so that the
// betas and cumulative products agree with diffusers to the bit.

// fma32 returns a*b+c rounded once to float32 (round half to even), as a
// fused multiply-add instruction computes it.
func fma32(a, b, c float32) float32 {
	// a*b is exact in 64 bits of mantissa; the sum is exact at 300 bits;
	// Float32 then rounds once.
	x := new(big.Float).SetPrec(300).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(300).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(300).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// linspace32 reproduces torch.linspace(start, end, n, dtype=torch.float32)
// on the CPU with the AVX2 kernel (the default CPU capability of PyTorch
// builds): the first half counts up from start and the second half down
// from end; elements are produced in blocks of 16 as two 8-lane vectors
// whose first lane is a fused multiply-add and whose other lanes add j*step
// without fusion; the remainder is computed lane by lane with fused
// multiply-adds. Inputs longer than 32768 elements, which PyTorch splits
// across threads, are computed as one block.
func linspace32(start, end float32, n int) []float32 {
	out := make([]float32, n)
	switch n {
	case 0:
		return out
	case 1:
		out[0] = start
		return out
	}
	step := float32(end-start) / float32(n-1)
	half := n / 2
	base := func(i int) float32 {
		if i < half {
			return fma32(step, float32(i), start)
		}
		return fma32(-step, float32(n-1-i), end)
	}
	const lanes, block = 8, 16
	i := 0
	for ; i+block <= n; i += block {
		for v := i; v < i+block; v += lanes {
			b := base(v)
			out[v] = b
			for j := 1; j < lanes; j++ {
				out[v+j] = b + float32(float32(j)*step)
			}
		}
	}
	for ; i < n; i++ {
		out[i] = base(i)
	}
	return out
}

// cumprod32 reproduces torch.cumprod on a float32 CPU tensor: the running
// product is accumulated in float64 and each output is rounded to float32.
func cumprod32(x []float32) []float32 {
	out := make([]float32, len(x))
	acc := 1.0
	for i, v := range x {
		acc *= float64(v)
		out[i] = float32(acc)
	}
	return out
}
