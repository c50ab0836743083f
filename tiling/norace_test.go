//go:build !race

package tiling

// raceEnabled turns allocation checks off under the race detector.
const raceEnabled = false
