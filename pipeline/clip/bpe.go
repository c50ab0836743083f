package clip

import (
	"container/heap"
	"regexp"
	"slices"
	"unicode/utf8"
)

// pattern is CLIP's pre-tokenisation, applied to normalised (lower-case,
// single-spaced) text: the two special token strings, contractions
// ('s 't 're 've 'm 'll 'd), runs of letters, single digits, runs of other
// non-space characters. CLIP compiles it case-insensitively with Python's
// regex module; only the literal alternatives are affected (the special
// tokens in any case, "'ſ" as "'s"), and U+0345 (combining ypogegrammeni,
// whose upper case is a letter) falls in no class and is skipped.
var pattern = regexp.MustCompile(`(?i:<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}|[^\s\p{L}\p{N}\x{345}]+`)

// byteRunes is CLIP's bytes_to_unicode table: printable bytes map to
// themselves, the others to code points from 256 on, in byte order.
var byteRunes = func() [256]rune {
	var t [256]rune
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			t[b] = rune(b)
		} else {
			t[b] = rune(256 + n)
			n++
		}
	}
	return t
}()

// ByteSymbols returns CLIP's 256 base symbols in vocabulary order (the
// order of the first 256 entries of CLIP's vocab.json): the printable bytes
// '!'..'~', '¡'..'¬', '®'..'ÿ', then the remaining bytes mapped from U+0100 on.
func ByteSymbols() []string {
	var out []string
	var rest []string
	for b := range 256 {
		s := string(byteRunes[b])
		if byteRunes[b] < 256 {
			out = append(out, s)
		} else {
			rest = append(rest, s)
		}
	}
	return append(out, rest...)
}

// symbol is a BPE symbol: the bytes [start, end) of the word being merged.
// Merging extends the left symbol over the right one, so a live symbol's
// index orders it in the word.
type symbol struct {
	start, end int
	prev, next int // neighbouring live symbols, -1 at the ends
	dead       bool
}

// candidate is an adjacent pair of symbols with a merge rank, as it was
// when pushed: it is stale once either symbol has changed.
type candidate struct {
	rank, left, right int
	leftEnd, rightEnd int
}

type candidates []candidate

func (h candidates) Len() int { return len(h) }
func (h candidates) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].left < h[j].left
}
func (h candidates) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candidates) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candidates) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bpe appends to out the BPE tokens of one pre-token, given as its byte
// symbols followed by EndOfWord. It computes what CLIPTokenizer.bpe does
// (start from the characters, the last one carrying EndOfWord; repeatedly
// take the adjacent pair of lowest merge rank and merge all its
// non-overlapping occurrences from left to right) in O(n log n) for a word
// of n characters: each round merges every valid occurrence of the
// lowest-ranked pair, in word order, before the pairs it creates are
// considered.
func (t *Tokenizer) bpe(word string, out []string) []string {
	body := len(word) - len(EndOfWord)
	syms := make([]symbol, 0, body)
	for i := 0; i < body; {
		_, n := utf8.DecodeRuneInString(word[i:])
		syms = append(syms, symbol{start: i, end: i + n, prev: len(syms) - 1, next: len(syms) + 1})
		i += n
	}
	if len(syms) == 0 {
		return out
	}
	syms[len(syms)-1].end = len(word)
	syms[len(syms)-1].next = -1

	str := func(i int) string { return word[syms[i].start:syms[i].end] }
	var h candidates
	push := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		if rank, ok := t.ranks[[2]string{str(l), str(r)}]; ok {
			heap.Push(&h, candidate{rank, l, r, syms[l].end, syms[r].end})
		}
	}
	valid := func(c candidate) bool {
		l, r := &syms[c.left], &syms[c.right]
		return !l.dead && !r.dead && l.next == c.right && l.end == c.leftEnd && r.end == c.rightEnd
	}
	for i := 0; i+1 < len(syms); i++ {
		push(i, i+1)
	}
	var batch []candidate
	var merged []int
	for h.Len() > 0 {
		c := heap.Pop(&h).(candidate)
		if !valid(c) {
			continue
		}
		batch = append(batch[:0], c)
		for h.Len() > 0 && h[0].rank == c.rank {
			batch = append(batch, heap.Pop(&h).(candidate))
		}
		slices.SortFunc(batch, func(a, b candidate) int { return a.left - b.left })
		merged = merged[:0]
		for _, c := range batch {
			if !valid(c) {
				continue
			}
			l, r := &syms[c.left], &syms[c.right]
			l.end = r.end
			l.next = r.next
			r.dead = true
			if r.next >= 0 {
				syms[r.next].prev = c.left
			}
			merged = append(merged, c.left)
		}
		for _, i := range merged {
			if syms[i].dead {
				continue
			}
			push(syms[i].prev, i)
			push(i, syms[i].next)
		}
	}
	for i := 0; i >= 0; i = syms[i].next {
		out = append(out, str(i))
	}
	return out
}
