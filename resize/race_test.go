//go:build race

package resize

// raceEnabled is set under the race detector, which makes sync.Pool drop
// items at random: allocation counts are not meaningful then.
const raceEnabled = true
