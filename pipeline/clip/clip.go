package clip

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// Default special tokens and length of CLIP's tokenizer.
const (
	StartToken = "<|startoftext|>"
	EndToken   = "<|endoftext|>"
	// MaxLength is CLIP's context length: 75 text tokens between the start
	// and end tokens.
	MaxLength = 77
	// EndOfWord marks the last symbol of a word in CLIP's vocabulary.
	EndOfWord = "</w>"
	// maxMerges is how many merges CLIPTokenizer reads from merges.txt
	// (49152 - 256 - 2), ignoring any further lines.
	maxMerges = 49152 - 256 - 2
	// MaxSequenceLength bounds Options.MaxLength.
	MaxSequenceLength = 1 << 16
)

// Options sets the special tokens and the padded length of a Tokenizer.
// Empty fields take CLIP's defaults.
type Options struct {
	// Start, End, Pad and Unknown name the special tokens, which must be in
	// the vocabulary. Defaults: StartToken, EndToken, EndToken, EndToken
	// (Stable Diffusion 2 pads with "!" instead).
	Start, End, Pad, Unknown string
	// MaxLength is the padded length of EncodePadded (default MaxLength;
	// at least 2, at most MaxSequenceLength).
	MaxLength int
	// AddedTokens are transformers' added tokens (textual-inversion
	// tokens, additional special tokens), token -> id. Like the special
	// tokens, each is split out of the text exactly as written and kept as
	// one token. A token already in the vocabulary must have the same id
	// there; the others join the vocabulary, whose ids must stay 0..n-1.
	AddedTokens map[string]int
}

// Tokenizer is CLIP's byte-level BPE tokenizer. It is immutable and safe for
// concurrent use. Make one with New or Load: Tokenize, IDs, Encode and
// EncodePadded on a nil or zero Tokenizer panic (a programmer error),
// saying so.
type Tokenizer struct {
	vocab   map[string]int
	ranks   map[[2]string]int
	start   int
	end     int
	pad     int
	unk     int
	maxLen  int
	special []string // the special and added tokens' strings, longest first

	// words remembers the BPE tokens of pre-tokens already merged (byte
	// symbols with EndOfWord -> []string), as CLIPTokenizer's own cache
	// does, for at most maxCachedWords pre-tokens: merging looks up each
	// candidate pair in a map of 49k merges, which a model run has just
	// evicted from the caches.
	words  sync.Map
	nWords atomic.Int64
}

// maxCachedWords bounds the pre-tokens a Tokenizer remembers (about a
// megabyte); later new ones are merged every time.
const maxCachedWords = 1 << 14

// New returns a tokenizer over vocab (token -> id) and merges (in rank
// order). The ids of a vocabulary of n tokens must be 0..n-1, each once;
// each merge must be two non-empty UTF-8 symbols without white space, and
// no merge may repeat. Errors are *FormatError.
func New(vocab map[string]int, merges [][2]string, opts Options) (*Tokenizer, error) {
	if len(opts.AddedTokens) > 0 {
		full := make(map[string]int, len(vocab)+len(opts.AddedTokens))
		for tok, id := range vocab {
			full[tok] = id
		}
		for _, tok := range slices.Sorted(maps.Keys(opts.AddedTokens)) {
			id := opts.AddedTokens[tok]
			if tok == "" {
				return nil, &FormatError{Item: "added token", Reason: "empty"}
			}
			if old, ok := vocab[tok]; ok && old != id {
				return nil, &FormatError{Item: fmt.Sprintf("added token %q", tok), Reason: fmt.Sprintf("id %d, but the vocabulary has %d", id, old)}
			}
			full[tok] = id
		}
		vocab = full
	}
	if err := checkVocab(vocab); err != nil {
		return nil, err
	}
	def := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	opts.Start = def(opts.Start, StartToken)
	opts.End = def(opts.End, EndToken)
	opts.Pad = def(opts.Pad, opts.End)
	opts.Unknown = def(opts.Unknown, EndToken)
	if opts.MaxLength == 0 {
		opts.MaxLength = MaxLength
	}
	if opts.MaxLength < 2 || opts.MaxLength > MaxSequenceLength {
		return nil, &FormatError{Item: "max length", Reason: fmt.Sprintf("%d is outside [2, %d]: the start and end tokens need 2", opts.MaxLength, MaxSequenceLength)}
	}
	t := &Tokenizer{vocab: vocab, ranks: make(map[[2]string]int, len(merges)), maxLen: opts.MaxLength}
	for _, sp := range []struct {
		name, token string
		id          *int
	}{{"start token", opts.Start, &t.start}, {"end token", opts.End, &t.end}, {"pad token", opts.Pad, &t.pad}, {"unknown token", opts.Unknown, &t.unk}} {
		id, ok := vocab[sp.token]
		if !ok {
			return nil, &FormatError{Item: sp.name, Reason: fmt.Sprintf("%q is not in the vocabulary", sp.token)}
		}
		*sp.id = id
		if !slices.Contains(t.special, sp.token) {
			t.special = append(t.special, sp.token)
		}
	}
	for _, tok := range slices.Sorted(maps.Keys(opts.AddedTokens)) {
		if !slices.Contains(t.special, tok) {
			t.special = append(t.special, tok)
		}
	}
	slices.SortStableFunc(t.special, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for i, m := range merges {
		if err := checkMerge(m); err != nil {
			err.Item = fmt.Sprintf("merge %d %q", i, m[0]+" "+m[1])
			return nil, err
		}
		if prev, dup := t.ranks[m]; dup {
			return nil, &FormatError{Item: fmt.Sprintf("merge %d %q", i, m[0]+" "+m[1]), Reason: fmt.Sprintf("repeats merge %d", prev)}
		}
		t.ranks[m] = i
	}
	return t, nil
}

// checkVocab requires the ids of n tokens to be 0..n-1, each once.
func checkVocab(vocab map[string]int) error {
	if len(vocab) == 0 {
		return &FormatError{Item: "vocabulary", Reason: "empty"}
	}
	owner := make([]string, len(vocab))
	seen := make([]bool, len(vocab))
	// Visit tokens in a fixed order so that the error names the same
	// token every time.
	tokens := make([]string, 0, len(vocab))
	for tok := range vocab {
		tokens = append(tokens, tok)
	}
	slices.Sort(tokens)
	for _, tok := range tokens {
		id := vocab[tok]
		switch {
		case id < 0:
			return &FormatError{Item: fmt.Sprintf("token %q", tok), Reason: fmt.Sprintf("negative id %d", id)}
		case id >= len(vocab):
			return &FormatError{Item: fmt.Sprintf("token %q", tok), Reason: fmt.Sprintf("id %d is out of range for a vocabulary of %d tokens (ids must be 0..%d)", id, len(vocab), len(vocab)-1)}
		case seen[id]:
			return &FormatError{Item: fmt.Sprintf("token %q", tok), Reason: fmt.Sprintf("id %d is also the id of %q", id, owner[id])}
		}
		seen[id], owner[id] = true, tok
	}
	return nil
}

func checkMerge(m [2]string) *FormatError {
	if m[0] == "" || m[1] == "" {
		return &FormatError{Reason: "a symbol is empty"}
	}
	if !utf8.ValidString(m[0]) || !utf8.ValidString(m[1]) {
		return &FormatError{Reason: "a symbol is not valid UTF-8"}
	}
	if strings.ContainsFunc(m[0], unicode.IsSpace) || strings.ContainsFunc(m[1], unicode.IsSpace) {
		return &FormatError{Reason: "a symbol contains white space"}
	}
	return nil
}

// check panics on a Tokenizer not made by New or Load.
func (t *Tokenizer) check() {
	if t == nil || t.vocab == nil {
		panic("clip: Tokenizer used without New or Load")
	}
}

// MaxLength returns the padded length of EncodePadded.
func (t *Tokenizer) MaxLength() int { return t.maxLen }

// StartID returns the id of the start-of-text token.
func (t *Tokenizer) StartID() int { return t.start }

// EndID returns the id of the end-of-text token.
func (t *Tokenizer) EndID() int { return t.end }

// PadID returns the id of the padding token.
func (t *Tokenizer) PadID() int { return t.pad }

// VocabSize returns the number of tokens in the vocabulary; every id is
// below it.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// Tokenize returns the BPE tokens of text, without start and end tokens, as
// CLIPTokenizer.tokenize does:
//
//  1. The strings of the special tokens (start, end, pad, unknown) and of
//     the added tokens are split out of text exactly as written, each kept
//     as one token.
//  2. Each piece of text between them is normalised (Normalize) and
//     pre-tokenised with CLIP's pattern, which keeps "<|startoftext|>" and
//     "<|endoftext|>" written in any case as those tokens where a
//     pre-token may start (not right after other punctuation, as in
//     "!<|ENDOFTEXT|>").
//  3. Every other pre-token's UTF-8 bytes become byte symbols
//     (ByteSymbols), the last one marked with EndOfWord, merged by BPE.
func (t *Tokenizer) Tokenize(text string) []string {
	t.check()
	var out []string
	t.splitSpecial(text, func(chunk string, special bool) {
		if special {
			out = append(out, chunk)
			return
		}
		var sym []byte
		for _, piece := range pattern.FindAllString(Normalize(chunk), -1) {
			if piece == StartToken || piece == EndToken {
				out = append(out, piece)
				continue
			}
			sym = sym[:0]
			for i := 0; i < len(piece); i++ {
				sym = utf8.AppendRune(sym, byteRunes[piece[i]])
			}
			sym = append(sym, EndOfWord...)
			out = t.mergeWord(sym, out)
		}
	})
	return out
}

// mergeWord appends the BPE tokens of the pre-token sym (byte symbols
// followed by EndOfWord), remembered from an earlier call or merged now.
func (t *Tokenizer) mergeWord(sym []byte, out []string) []string {
	word := string(sym)
	if toks, ok := t.words.Load(word); ok {
		return append(out, toks.([]string)...)
	}
	n := len(out)
	out = t.bpe(word, out)
	if t.nWords.Load() < maxCachedWords {
		if _, loaded := t.words.LoadOrStore(word, slices.Clone(out[n:])); !loaded {
			t.nWords.Add(1)
		}
	}
	return out
}

// splitSpecial calls f on the pieces of text between the special tokens'
// strings (special false, empty pieces skipped) and on those strings
// (special true), in order. At each point the earliest occurrence wins, the
// longest of those starting there.
func (t *Tokenizer) splitSpecial(text string, f func(chunk string, special bool)) {
	// next[i] caches the offset of the next occurrence of special[i] at or
	// after pos (-1: none), so the scan is linear in len(text).
	next := make([]int, len(t.special))
	pos := 0
	for i, s := range t.special {
		next[i] = strings.Index(text, s)
	}
	for pos < len(text) {
		at, which := -1, -1
		for i, s := range t.special {
			if next[i] >= 0 && next[i] < pos {
				if j := strings.Index(text[pos:], s); j >= 0 {
					next[i] = pos + j
				} else {
					next[i] = -1
				}
			}
			if next[i] >= 0 && (at < 0 || next[i] < at) {
				at, which = next[i], i
			}
		}
		if at < 0 {
			f(text[pos:], false)
			return
		}
		if at > pos {
			f(text[pos:at], false)
		}
		f(t.special[which], true)
		pos = at + len(t.special[which])
	}
}

// IDs maps tokens to ids; tokens missing from the vocabulary become the
// unknown token's id.
func (t *Tokenizer) IDs(tokens []string) []int {
	t.check()
	ids := make([]int, len(tokens))
	for i, tok := range tokens {
		id, ok := t.vocab[tok]
		if !ok {
			id = t.unk
		}
		ids[i] = id
	}
	return ids
}

// Encode returns the ids of text between the start and end tokens, neither
// truncated nor padded: tokenizer(text).input_ids.
func (t *Tokenizer) Encode(text string) []int {
	ids := append([]int{t.start}, t.IDs(t.Tokenize(text))...)
	return append(ids, t.end)
}

// EncodePadded returns the MaxLength ids that Stable Diffusion pipelines
// feed the text encoder, tokenizer(text, padding="max_length",
// max_length=MaxLength, truncation=True).input_ids: the start token, at most
// MaxLength-2 text tokens, the end token, then padding. truncated reports
// whether text tokens were dropped.
func (t *Tokenizer) EncodePadded(text string) (ids []int, truncated bool) {
	body := t.IDs(t.Tokenize(text))
	if len(body) > t.maxLen-2 {
		body, truncated = body[:t.maxLen-2], true
	}
	ids = make([]int, 0, t.maxLen)
	ids = append(ids, t.start)
	ids = append(ids, body...)
	ids = append(ids, t.end)
	for len(ids) < t.maxLen {
		ids = append(ids, t.pad)
	}
	return ids, truncated
}
