package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
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
)

// Options sets the special tokens and the padded length of a Tokenizer.
// Empty fields take CLIP's defaults.
type Options struct {
	// Start, End, Pad and Unknown name the special tokens, which must be in
	// the vocabulary. Defaults: StartToken, EndToken, EndToken, EndToken
	// (Stable Diffusion 2 pads with "!" instead).
	Start, End, Pad, Unknown string
	// MaxLength is the padded length of EncodePadded (default MaxLength).
	MaxLength int
}

// Tokenizer is CLIP's byte-level BPE tokenizer. It is immutable and safe for
// concurrent use.
type Tokenizer struct {
	vocab   map[string]int
	ranks   map[[2]string]int
	start   int
	end     int
	pad     int
	unk     int
	maxLen  int
	special []string // special token strings split out of the text
}

// New returns a tokenizer over vocab (token -> id) and merges (in rank
// order). Each merge's pair must be made of non-empty symbols without
// spaces.
func New(vocab map[string]int, merges [][2]string, opts Options) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, errors.New("clip: empty vocabulary")
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
	if opts.MaxLength < 2 {
		return nil, fmt.Errorf("clip: max length %d leaves no room for the start and end tokens", opts.MaxLength)
	}
	t := &Tokenizer{vocab: vocab, ranks: make(map[[2]string]int, len(merges)), maxLen: opts.MaxLength}
	for _, sp := range []struct {
		name string
		id   *int
	}{{opts.Start, &t.start}, {opts.End, &t.end}, {opts.Pad, &t.pad}, {opts.Unknown, &t.unk}} {
		id, ok := vocab[sp.name]
		if !ok {
			return nil, fmt.Errorf("clip: special token %q is not in the vocabulary", sp.name)
		}
		*sp.id = id
	}
	for i, m := range merges {
		if m[0] == "" || m[1] == "" || strings.ContainsAny(m[0]+m[1], " \t\n") {
			return nil, fmt.Errorf("clip: merge %d %q is not a pair of symbols", i, m)
		}
		if _, dup := t.ranks[m]; !dup {
			t.ranks[m] = i
		}
	}
	for _, s := range []string{opts.Start, opts.End, opts.Pad, opts.Unknown} {
		if !slices.Contains(t.special, s) {
			t.special = append(t.special, s)
		}
	}
	return t, nil
}

// Load reads the tokenizer of a diffusers or optimum model folder's
// tokenizer/ directory: vocab.json and merges.txt (CLIPTokenizer's files),
// or else tokenizer.json (CLIPTokenizerFast's), with the special tokens
// and model_max_length of special_tokens_map.json and tokenizer_config.json
// when present. Errors name the missing or malformed file.
func Load(dir string) (*Tokenizer, error) {
	var opts Options
	if err := readSpecial(dir, &opts); err != nil {
		return nil, err
	}
	vocabPath, mergesPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	_, verr := os.Stat(vocabPath)
	_, merr := os.Stat(mergesPath)
	if verr == nil && merr == nil {
		vocab, err := readVocab(vocabPath)
		if err != nil {
			return nil, err
		}
		f, err := os.ReadFile(mergesPath)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		merges, err := ParseMerges(string(f))
		if err != nil {
			return nil, fmt.Errorf("clip: %s: %w", mergesPath, err)
		}
		return New(vocab, merges, opts)
	}
	jsonPath := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(jsonPath); err == nil {
		data, err := os.ReadFile(jsonPath)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		vocab, merges, err := parseTokenizerJSON(data)
		if err != nil {
			return nil, fmt.Errorf("clip: %s: %w", jsonPath, err)
		}
		return New(vocab, merges, opts)
	}
	var missing []string
	if verr != nil {
		missing = append(missing, vocabPath)
	}
	if merr != nil {
		missing = append(missing, mergesPath)
	}
	return nil, fmt.Errorf("clip: no tokenizer in %s: missing %s (and no tokenizer.json)", dir, strings.Join(missing, " and "))
}

func readVocab(path string) (map[string]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("clip: %s: %w", path, err)
	}
	return vocab, nil
}

// ParseMerges parses a merges.txt file: a "#version" header line, then one
// merge per line, two symbols separated by a space, in rank order. As in
// CLIPTokenizer, only the first 48894 merges are used.
func ParseMerges(text string) ([][2]string, error) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "#version") {
		lines = lines[1:]
	}
	if len(lines) > maxMerges {
		lines = lines[:maxMerges]
	}
	merges := make([][2]string, 0, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: %q is not a merge of two symbols", i+2, l)
		}
		merges = append(merges, [2]string{f[0], f[1]})
	}
	return merges, nil
}

// parseTokenizerJSON reads the BPE model of a Hugging Face tokenizer.json:
// model.vocab, model.merges (as "a b" strings or [a, b] pairs) and the
// added tokens.
func parseTokenizerJSON(data []byte) (map[string]int, [][2]string, error) {
	var tj struct {
		Model struct {
			Type   string            `json:"type"`
			Vocab  map[string]int    `json:"vocab"`
			Merges []json.RawMessage `json:"merges"`
		} `json:"model"`
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
		} `json:"added_tokens"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, nil, err
	}
	if tj.Model.Type != "" && tj.Model.Type != "BPE" {
		return nil, nil, fmt.Errorf("model type %q, want BPE", tj.Model.Type)
	}
	if len(tj.Model.Vocab) == 0 {
		return nil, nil, errors.New("no model.vocab")
	}
	vocab := tj.Model.Vocab
	for _, a := range tj.AddedTokens {
		vocab[a.Content] = a.ID
	}
	merges := make([][2]string, 0, len(tj.Model.Merges))
	for i, raw := range tj.Model.Merges {
		var s string
		var pair []string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			pair = strings.Fields(s)
		case json.Unmarshal(raw, &pair) == nil:
		default:
			return nil, nil, fmt.Errorf("merge %d: %s is neither \"a b\" nor [a, b]", i, raw)
		}
		if len(pair) != 2 {
			return nil, nil, fmt.Errorf("merge %d: %s is not a pair", i, raw)
		}
		merges = append(merges, [2]string{pair[0], pair[1]})
	}
	return vocab, merges, nil
}

// readSpecial fills opts from special_tokens_map.json and
// tokenizer_config.json, where the tokens are strings or {"content": ...}
// objects.
func readSpecial(dir string, opts *Options) error {
	token := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var o struct {
			Content string `json:"content"`
		}
		if json.Unmarshal(raw, &o) == nil {
			return o.Content
		}
		return ""
	}
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("clip: %w", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("clip: %s: %w", path, err)
		}
		for key, dst := range map[string]*string{"bos_token": &opts.Start, "eos_token": &opts.End, "pad_token": &opts.Pad, "unk_token": &opts.Unknown} {
			if raw, ok := m[key]; ok {
				if s := token(raw); s != "" {
					*dst = s
				}
			}
		}
		if raw, ok := m["model_max_length"]; ok {
			var n float64 // transformers writes huge floats (1e30) when unset
			if json.Unmarshal(raw, &n) == nil && n >= 2 && n <= 1<<16 {
				opts.MaxLength = int(n)
			}
		}
	}
	return nil
}

// MaxLength returns the padded length of EncodePadded.
func (t *Tokenizer) MaxLength() int { return t.maxLen }

// StartID returns the id of the start-of-text token.
func (t *Tokenizer) StartID() int { return t.start }

// EndID returns the id of the end-of-text token.
func (t *Tokenizer) EndID() int { return t.end }

// PadID returns the id of the padding token.
func (t *Tokenizer) PadID() int { return t.pad }

// VocabSize returns the number of tokens in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.vocab) }

// pattern is CLIP's pre-tokenisation: contractions, runs of letters,
// single digits, runs of other non-space characters. It is applied to
// normalised (lower-case, single-spaced) text, where \s can only be a space.
var pattern = regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+`)

// Normalize applies CLIPTokenizer's text clean-up (transformers' path
// without ftfy, which CLIPTokenizerFast also follows): control characters,
// NUL and U+FFFD are dropped, whitespace becomes single spaces, CJK
// ideographs are set apart by spaces, the text is put in Unicode NFC and
// lower-cased.
func Normalize(text string) string {
	var b strings.Builder
	for _, r := range text {
		switch {
		case r == 0 || r == unicode.ReplacementChar:
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r):
			b.WriteByte(' ')
		case isControl(r):
		case isCJK(r):
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	words := strings.Fields(norm.NFC.String(b.String()))
	for i, w := range words {
		words[i] = lower(w)
	}
	return strings.Join(words, " ")
}

// isControl reports the characters Python's unicodedata puts in a category
// starting with C (other than tab, newline and carriage return): control,
// format, surrogate, private use and unassigned.
func isControl(r rune) bool {
	if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs) {
		return true
	}
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// lower lower-cases a word as Python's str.lower does: Go's simple case
// mapping plus Unicode's two special cases that matter here, capital I with
// dot above (to i + combining dot) and a word-final capital sigma (to ς).
func lower(w string) string {
	rs := []rune(w)
	var b strings.Builder
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && i > 0 && unicode.IsLetter(rs[i-1]) && (i+1 == len(rs) || !unicode.IsLetter(rs[i+1])):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

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

// Tokenize returns the BPE tokens of text, without start and end tokens.
// The special tokens' own strings in text (exactly, case-sensitive) are kept
// as single tokens, as transformers does.
func (t *Tokenizer) Tokenize(text string) []string {
	var out []string
	for _, chunk := range t.splitSpecial(text) {
		if chunk.special {
			out = append(out, chunk.text)
			continue
		}
		for _, piece := range pattern.FindAllString(Normalize(chunk.text), -1) {
			var sym strings.Builder
			for i := 0; i < len(piece); i++ {
				sym.WriteRune(byteRunes[piece[i]])
			}
			out = append(out, t.bpe(sym.String())...)
		}
	}
	return out
}

type chunk struct {
	text    string
	special bool
}

func (t *Tokenizer) splitSpecial(text string) []chunk {
	var out []chunk
	for text != "" {
		at, which := -1, ""
		for _, s := range t.special {
			if i := strings.Index(text, s); i >= 0 && (at < 0 || i < at) {
				at, which = i, s
			}
		}
		if at < 0 {
			out = append(out, chunk{text: text})
			break
		}
		if at > 0 {
			out = append(out, chunk{text: text[:at]})
		}
		out = append(out, chunk{text: which, special: true})
		text = text[at+len(which):]
	}
	return out
}

// bpe splits one pre-token (already mapped to byte symbols) into BPE
// tokens: start from its characters, the last one carrying EndOfWord, and
// repeatedly merge every occurrence of the adjacent pair of lowest rank.
func (t *Tokenizer) bpe(token string) []string {
	rs := []rune(token)
	word := make([]string, len(rs))
	for i, r := range rs {
		word[i] = string(r)
	}
	word[len(word)-1] += EndOfWord
	for len(word) > 1 {
		best, bestRank := [2]string{}, -1
		for i := 0; i+1 < len(word); i++ {
			p := [2]string{word[i], word[i+1]}
			if r, ok := t.ranks[p]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = p, r
			}
		}
		if bestRank < 0 {
			break
		}
		merged := word[:0:0]
		for i := 0; i < len(word); i++ {
			if i+1 < len(word) && word[i] == best[0] && word[i+1] == best[1] {
				merged = append(merged, best[0]+best[1])
				i++
			} else {
				merged = append(merged, word[i])
			}
		}
		word = merged
	}
	return word
}

// IDs maps tokens to ids; tokens missing from the vocabulary become the
// unknown token's id.
func (t *Tokenizer) IDs(tokens []string) []int {
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
// truncated nor padded.
func (t *Tokenizer) Encode(text string) []int {
	ids := append([]int{t.start}, t.IDs(t.Tokenize(text))...)
	return append(ids, t.end)
}

// EncodePadded returns the MaxLength ids that Stable Diffusion pipelines
// feed the text encoder, tokenizer(text, padding="max_length",
// truncation=True): the start token, at most MaxLength-2 text tokens, the end
// token, then padding. truncated reports whether text tokens were dropped.
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
