package noise

import "math"

// TorchKernel selects which of torch's CPU float32 normal kernels a TorchCPU
// source reproduces for requests of 16 or more values. The two kernels draw
// the same uniforms and differ only in the last bit of some outputs, because
// one uses vectorised Cephes approximations of log, sin and cos and the
// other the C library's.
type TorchKernel int

const (
	// TorchAVX2 reproduces the kernel torch uses on x86-64 CPUs with AVX2
	// (torch's default CPU capability on any x86-64 machine since about
	// 2013; "CPU capability usage: AVX2" in torch.__config__.show()).
	TorchAVX2 TorchKernel = iota
	// TorchGeneric reproduces torch's portable kernel, used with
	// ATEN_CPU_CAPABILITY=default, on CPUs without AVX2, and by
	// stable-diffusion.cpp's MT19937 generator. Its log, sin and cos are
	// computed here in float64 and rounded, which matches glibc's
	// single-precision functions except in rare last-bit cases.
	TorchGeneric
)

// String returns the kernel's name.
func (k TorchKernel) String() string {
	switch k {
	case TorchAVX2:
		return "avx2"
	case TorchGeneric:
		return "generic"
	}
	return "TorchKernel(?)"
}

// TorchCPU reproduces torch's CPU generator: MT19937 seeded by
// torch.manual_seed, followed by torch.randn on float32 tensors.
//
// Successive Normal calls equal successive torch.randn calls on the same
// generator, including torch's two regimes: a request of fewer than 16
// values draws double-precision Box-Muller pairs one value at a time and
// keeps the unused second value of a pair for the next such value (even
// across calls), while a request of 16 or more values first draws one
// 24-bit uniform per value, transforms them in blocks of 16 (8 radii, 8
// angles), and, if the length is not a multiple of 16, draws 16 fresh
// uniforms to recompute the last 16 values.
//
// A TorchCPU is not safe for concurrent use.
type TorchCPU struct {
	mt      mt19937
	kernel  TorchKernel
	hasNext bool    // torch's next_double_normal_sample is set
	next    float64 // the cached second value of a Box-Muller pair
}

// NewTorchCPU returns a source equal to torch.manual_seed(seed) on CPU,
// using torch's AVX2 kernel (TorchAVX2). Only the low 32 bits of seed
// matter, as in torch.
func NewTorchCPU(seed uint64) *TorchCPU {
	return NewTorchCPUKernel(seed, TorchAVX2)
}

// NewTorchCPUKernel is like NewTorchCPU with an explicit choice of kernel.
// An unknown kernel is treated as TorchAVX2.
func NewTorchCPUKernel(seed uint64, k TorchKernel) *TorchCPU {
	t := &TorchCPU{kernel: k}
	t.Seed(seed)
	return t
}

// Seed resets the source to the state torch.manual_seed(seed) gives,
// dropping any cached Box-Muller value.
func (t *TorchCPU) Seed(seed uint64) {
	t.mt.seed(seed)
	t.hasNext = false
	t.next = 0
}

// Kernel reports which torch kernel the source reproduces.
func (t *TorchCPU) Kernel() TorchKernel { return t.kernel }

// Normal fills dst as torch.randn(len(dst)) does.
func (t *TorchCPU) Normal(dst []float32) {
	n := len(dst)
	if n < 16 {
		for i := range dst {
			dst[i] = float32(t.normalDouble())
		}
		return
	}
	for i := range dst {
		dst[i] = t.uniform()
	}
	fill := t.fill16
	for i := 0; i+16 <= n; i += 16 {
		fill(dst[i : i+16])
	}
	if n%16 != 0 {
		tail := dst[n-16:]
		for i := range tail {
			tail[i] = t.uniform()
		}
		fill(tail)
	}
}

// uniform is at::uniform_real_distribution<float>(0, 1): the low 24 bits of
// one MT19937 word times 2^-24 (exact in float32).
func (t *TorchCPU) uniform() float32 {
	return float32(t.mt.uint32()&(1<<24-1)) * (1.0 / (1 << 24))
}

// normalDouble is at::normal_distribution<double>(0, 1) in torch 1.13.
func (t *TorchCPU) normalDouble() float64 {
	if t.hasNext {
		t.hasNext = false
		return t.next
	}
	const mask53 = 1<<53 - 1
	u1 := float64(t.mt.uint64()&mask53) * (1.0 / (1 << 53))
	u2 := float64(t.mt.uint64()&mask53) * (1.0 / (1 << 53))
	r := math.Sqrt(-2 * math.Log(1-u2))
	theta := 2 * math.Pi * u1
	t.next = r * math.Sin(theta)
	t.hasNext = true
	return r * math.Cos(theta)
}

func (t *TorchCPU) fill16(d []float32) {
	if t.kernel == TorchGeneric {
		fill16Generic(d)
		return
	}
	fill16AVX2(d)
}

// fill16Generic is torch's normal_fill_16 with mean 0 and std 1.
func fill16Generic(d []float32) {
	d = d[:16]
	for j := 0; j < 8; j++ {
		u1 := 1 - d[j]
		u2 := d[j+8]
		lg := float32(math.Log(float64(u1)))
		radius := float32(math.Sqrt(float64(-2 * lg)))
		theta := float32(2 * math.Pi * float64(u2))
		d[j] = radius * float32(math.Cos(float64(theta)))
		d[j+8] = radius * float32(math.Sin(float64(theta)))
	}
}

// twoPi32 is _mm256_set1_ps(2.0f * c10::pi<double>).
var twoPi32 = float32(2 * math.Pi)

// fill16AVX2 is torch's normal_fill_16_AVX2 with mean 0 and std 1.
func fill16AVX2(d []float32) {
	d = d[:16]
	for j := 0; j < 8; j++ {
		u1 := 1 - d[j]
		radius := float32(math.Sqrt(float64(-2 * avxLog(u1))))
		s, c := avxSinCos(twoPi32 * d[j+8])
		d[j] = radius * c
		d[j+8] = radius * s
	}
}
