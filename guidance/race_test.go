//go:build race

package guidance

// raceEnabled shortens the quantitative tests under the race detector.
const raceEnabled = true
