//go:build race

package picture

// raceEnabled: the race detector makes sync.Pool drop items at random.
const raceEnabled = true
