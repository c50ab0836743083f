package noise

// mt19937 is the 32-bit Mersenne Twister (Matsumoto and Nishimura, 1998)
// seeded the way torch's CPUGeneratorImpl seeds it: the low 32 bits of the
// seed go through the standard init_genrand recurrence.
type mt19937 struct {
	state [mtN]uint32
	next  int // index of the next tempered word; mtN means "twist first"
}

const (
	mtN       = 624
	mtM       = 397
	mtMatrixA = 0x9908b0df
	mtUpper   = 0x80000000
	mtLower   = 0x7fffffff
)

func (m *mt19937) seed(seed uint64) {
	m.state[0] = uint32(seed)
	for j := 1; j < mtN; j++ {
		prev := m.state[j-1]
		m.state[j] = 1812433253*(prev^(prev>>30)) + uint32(j)
	}
	m.next = mtN
}

// twist regenerates the whole state block.
func (m *mt19937) twist() {
	s := &m.state
	for k := 0; k < mtN; k++ {
		y := (s[k] & mtUpper) | (s[(k+1)%mtN] & mtLower)
		v := s[(k+mtM)%mtN] ^ (y >> 1)
		if y&1 != 0 {
			v ^= mtMatrixA
		}
		s[k] = v
	}
	m.next = 0
}

// uint32 returns the next tempered 32-bit output.
func (m *mt19937) uint32() uint32 {
	if m.next >= mtN {
		m.twist()
	}
	y := m.state[m.next]
	m.next++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

// uint64 returns two successive outputs, the first in the high half, as
// torch's CPUGeneratorImpl::random64 does.
func (m *mt19937) uint64() uint64 {
	hi := uint64(m.uint32())
	return hi<<32 | uint64(m.uint32())
}
