package ugo

// CPUFiller is an optional interface of a Denoiser: it says whether a
// single PredictNoise call already keeps every CPU core of the machine busy
// (a CPU backend whose thread pool has a thread per core). Middleware that
// makes two independent model calls per step (Upsample Guidance's high- and
// low-resolution calls, the two branches of classifier-free guidance) runs
// them one after the other for such a model, where two calls at once would
// only contend for the cores, and concurrently otherwise, where the second
// call gets cores that would sit idle. The result is the same either way.
//
// Middleware that wraps a model should implement CPUFiller by asking the
// model it wraps (with FillsCPU), so that the answer reaches the middleware
// above it.
type CPUFiller interface {
	// FillsCPU reports whether one call keeps every CPU core busy.
	FillsCPU() bool
}

// FillsCPU returns d.FillsCPU() when d implements CPUFiller, and false
// otherwise (nil included): for a model that says nothing, running two
// calls concurrently is the default.
func FillsCPU(d Denoiser) bool {
	if IsNil(d) {
		return false
	}
	f, ok := d.(CPUFiller)
	return ok && f.FillsCPU()
}
