package noise

import "math"

// This file emulates, one lane at a time, the AVX2 single-precision log and
// sincos that torch's x86-64 CPU kernel uses for torch.randn on float32
// tensors of 16 or more elements (aten/src/ATen/native/cpu/avx_mathfun.h,
// Cephes polynomials by way of Julien Pommier's sse_mathfun). The constants
// are Cephes' published coefficients. torch compiles that header with FMA
// enabled and GCC's default floating-point contraction, so multiply-add
// pairs that GCC fuses are fused here too (fma32); all other products are
// rounded to float32 explicitly so that no Go compiler fuses them.

// fma32 returns a*b+c rounded once to float32.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 bits fit in 53
	cc := float64(c)
	s := p + cc
	// Rounding s to float32 is a second rounding, which can only go wrong
	// when s sits exactly half-way between two float32 values and is
	// itself inexact. Then nudge s towards the exact sum, using the TwoSum
	// error term e (s + e == p + cc exactly).
	if math.Float64bits(s)&(1<<29-1) == 1<<28 {
		bv := s - p
		if e := (p - (s - bv)) + (cc - bv); e != 0 {
			s = math.Nextafter(s, math.Copysign(math.Inf(1), e))
		}
	}
	return float32(s)
}

const (
	cephesSQRTHF = float32(0.707106781186547524)
	cephesLogP0  = float32(7.0376836292e-2)
	cephesLogP1  = float32(-1.1514610310e-1)
	cephesLogP2  = float32(1.1676998740e-1)
	cephesLogP3  = float32(-1.2420140846e-1)
	cephesLogP4  = float32(+1.4249322787e-1)
	cephesLogP5  = float32(-1.6668057665e-1)
	cephesLogP6  = float32(+2.0000714765e-1)
	cephesLogP7  = float32(-2.4999993993e-1)
	cephesLogP8  = float32(+3.3333331174e-1)
	cephesLogQ1  = float32(-2.12194440e-4)
	cephesLogQ2  = float32(0.693359375)

	cephesDP1   = float32(-0.78515625)
	cephesDP2   = float32(-2.4187564849853515625e-4)
	cephesDP3   = float32(-3.77489497744594108e-8)
	sincofP0    = float32(-1.9515295891e-4)
	sincofP1    = float32(8.3321608736e-3)
	sincofP2    = float32(-1.6666654611e-1)
	coscofP0    = float32(2.443315711809948e-005)
	coscofP1    = float32(-1.388731625493765e-003)
	coscofP2    = float32(4.166664568298827e-002)
	cephesFOPI  = float32(1.27323954473516) // 4/pi
	minNormPos  = 0x00800000
	mantMaskInv = ^uint32(0x7f800000)
)

// avxLog is one lane of log256_ps for x > 0.
func avxLog(x float32) float32 {
	if x < math.Float32frombits(minNormPos) {
		x = math.Float32frombits(minNormPos)
	}
	bits := math.Float32bits(x)
	imm0 := int32(bits>>23) - 0x7f
	x = math.Float32frombits(bits&mantMaskInv | math.Float32bits(0.5))
	e := float32(imm0) + 1
	var tmp float32
	if x < cephesSQRTHF {
		tmp = x
		e--
	}
	x = x - 1
	x = x + tmp

	z := float32(x * x)
	y := fma32(cephesLogP0, x, cephesLogP1)
	y = fma32(y, x, cephesLogP2)
	y = fma32(y, x, cephesLogP3)
	y = fma32(y, x, cephesLogP4)
	y = fma32(y, x, cephesLogP5)
	y = fma32(y, x, cephesLogP6)
	y = fma32(y, x, cephesLogP7)
	y = fma32(y, x, cephesLogP8)
	y = float32(y * x)
	y = fma32(y, z, float32(e*cephesLogQ1))
	y = y - float32(z*0.5) // z*0.5 is exact: fused or not, same result
	x = x + y
	return fma32(e, cephesLogQ2, x)
}

// avxSinCos is one lane of sincos256_ps.
func avxSinCos(x float32) (sin, cos float32) {
	signSin := math.Float32bits(x) & 0x80000000
	x = math.Float32frombits(math.Float32bits(x) &^ 0x80000000)
	j := int32(float32(x * cephesFOPI)) // truncation, as cvttps
	j = (j + 1) &^ 1
	y := float32(j)
	swapSin := uint32(j&4) << 29
	polySin := j&2 == 0
	x = fma32(y, cephesDP1, x)
	x = fma32(y, cephesDP2, x)
	x = fma32(y, cephesDP3, x)
	signCos := uint32(^(j-2)&4) << 29
	signSin ^= swapSin

	z := float32(x * x)
	yc := fma32(coscofP0, z, coscofP1)
	yc = fma32(yc, z, coscofP2)
	yc = float32(yc * z)
	yc = fma32(yc, z, -float32(z*0.5))
	yc = yc + 1

	ys := fma32(sincofP0, z, sincofP1)
	ys = fma32(ys, z, sincofP2)
	ys = float32(ys * z)
	ys = fma32(ys, x, x)

	if polySin {
		sin, cos = ys, yc
	} else {
		sin, cos = yc, ys
	}
	sin = math.Float32frombits(math.Float32bits(sin) ^ signSin)
	cos = math.Float32frombits(math.Float32bits(cos) ^ signCos)
	return sin, cos
}
