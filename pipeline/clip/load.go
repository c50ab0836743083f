package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxFileSize bounds the size of each tokenizer file Load reads (CLIP's
// tokenizer.json is about 2 MB).
const MaxFileSize = 64 << 20

// Load reads the tokenizer of a diffusers or optimum model folder's
// tokenizer/ directory: vocab.json and merges.txt (CLIPTokenizer's files),
// or else tokenizer.json (CLIPTokenizerFast's), with the special tokens
// and model_max_length of tokenizer_config.json and special_tokens_map.json
// when present (the latter wins). A model_max_length above
// MaxSequenceLength (transformers writes 1e30 for "unset") is ignored.
//
// Added tokens are read as transformers reads them for CLIPTokenizer: from
// tokenizer_config.json's added_tokens_decoder when it has one, else from
// added_tokens.json and tokenizer.json's added_tokens; additional special
// tokens (additional_special_tokens) must be in the vocabulary or among the
// added tokens. Their lstrip, rstrip and normalized flags cannot change
// CLIP's ids and are not read; single_word is not honoured.
//
// Malformed or inconsistent files give a *FormatError naming the file;
// a missing or unreadable file gives the *fs.PathError of the read.
func Load(dir string) (*Tokenizer, error) {
	var cfg config
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		path := filepath.Join(dir, name)
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := cfg.parse(data, name == "tokenizer_config.json"); err != nil {
			return nil, inFile(err, path)
		}
	}
	if cfg.added == nil {
		// Legacy: added_tokens.json (tokenizer.json's added tokens are
		// read below).
		path := filepath.Join(dir, "added_tokens.json")
		data, err := readFile(path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if err == nil {
			if cfg.added, err = parseAddedTokens(data); err != nil {
				return nil, inFile(err, path)
			}
		}
	}
	vocabPath, mergesPath := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	_, verr := os.Stat(vocabPath)
	_, merr := os.Stat(mergesPath)
	if verr == nil && merr == nil {
		data, err := readFile(vocabPath)
		if err != nil {
			return nil, err
		}
		vocab, err := parseVocab(data)
		if err != nil {
			return nil, inFile(err, vocabPath)
		}
		data, err = readFile(mergesPath)
		if err != nil {
			return nil, err
		}
		merges, err := ParseMerges(string(data))
		if err != nil {
			return nil, inFile(err, mergesPath)
		}
		tok, err := cfg.build(vocab, merges, nil)
		return tok, inFile(err, vocabPath)
	}
	jsonPath := filepath.Join(dir, "tokenizer.json")
	data, err := readFile(jsonPath)
	if err == nil {
		vocab, merges, added, err := parseTokenizerJSON(data)
		if err != nil {
			return nil, inFile(err, jsonPath)
		}
		tok, err := cfg.build(vocab, merges, added)
		return tok, inFile(err, jsonPath)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var missing []string
	if verr != nil {
		missing = append(missing, vocabPath)
	}
	if merr != nil {
		missing = append(missing, mergesPath)
	}
	return nil, &fs.PathError{Op: "clip: load tokenizer", Path: dir,
		Err: fmt.Errorf("missing %s (and no tokenizer.json): %w", strings.Join(missing, " and "), fs.ErrNotExist)}
}

// readFile reads a file of at most MaxFileSize bytes.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxFileSize {
		return nil, &FormatError{File: path, Reason: fmt.Sprintf("%d bytes, larger than %d", fi.Size(), MaxFileSize)}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if len(data) > MaxFileSize {
		return nil, &FormatError{File: path, Reason: fmt.Sprintf("larger than %d bytes", MaxFileSize)}
	}
	return data, nil
}

// parseVocab reads a vocab.json: one JSON object of token -> id, the ids
// of n tokens being 0..n-1.
func parseVocab(data []byte) (map[string]int, error) {
	if !utf8.Valid(data) {
		return nil, &FormatError{Item: "vocabulary", Reason: "not valid UTF-8"}
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, &FormatError{Item: "vocabulary", Reason: "want a JSON object of token -> integer id: " + err.Error()}
	}
	if err := checkVocab(vocab); err != nil {
		return nil, err
	}
	return vocab, nil
}

// ParseMerges parses a merges.txt file: an optional "#version" header line,
// then one merge per line, two symbols separated by a space, in rank order.
// As in CLIPTokenizer, only the first 48894 merges are read. A line that is
// not valid UTF-8 or not two symbols, or a merge that repeats an earlier
// one, gives a *FormatError with its line number.
func ParseMerges(text string) ([][2]string, error) {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	first := 1 // line number of lines[0]
	if len(lines) > 0 && strings.HasPrefix(lines[0], "#version") {
		lines, first = lines[1:], 2
	}
	if len(lines) == 1 && strings.TrimSpace(lines[0]) == "" {
		lines = nil
	}
	if len(lines) > maxMerges {
		lines = lines[:maxMerges]
	}
	merges := make([][2]string, 0, len(lines))
	seen := make(map[[2]string]int, len(lines))
	for i, l := range lines {
		if !utf8.ValidString(l) {
			return nil, &FormatError{Line: first + i, Item: fmt.Sprintf("%.80q", l), Reason: "not valid UTF-8"}
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, &FormatError{Line: first + i, Item: fmt.Sprintf("%.80q", l), Reason: "not a merge of two symbols"}
		}
		m := [2]string{f[0], f[1]}
		if prev, dup := seen[m]; dup {
			return nil, &FormatError{Line: first + i, Item: fmt.Sprintf("%.80q", l), Reason: fmt.Sprintf("repeats the merge of line %d", first+prev)}
		}
		seen[m] = i
		merges = append(merges, m)
	}
	return merges, nil
}

// parseTokenizerJSON reads the BPE model of a Hugging Face tokenizer.json
// written for CLIP (model type "BPE", end_of_word_suffix "</w>"):
// model.vocab, model.merges (as "a b" strings or [a, b] pairs) and the
// added tokens (token -> id), which join the vocabulary and must agree
// with model.vocab where both have a token.
func parseTokenizerJSON(data []byte) (vocab map[string]int, merges [][2]string, added map[string]int, err error) {
	var tj struct {
		Model *struct {
			Type            string            `json:"type"`
			Vocab           map[string]int    `json:"vocab"`
			Merges          []json.RawMessage `json:"merges"`
			EndOfWordSuffix *string           `json:"end_of_word_suffix"`
		} `json:"model"`
		AddedTokens []struct {
			ID      *int    `json:"id"`
			Content *string `json:"content"`
		} `json:"added_tokens"`
	}
	if !utf8.Valid(data) {
		return nil, nil, nil, &FormatError{Reason: "not valid UTF-8"}
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, nil, nil, &FormatError{Reason: err.Error()}
	}
	if tj.Model == nil {
		return nil, nil, nil, &FormatError{Item: "model", Reason: "missing"}
	}
	if tj.Model.Type != "BPE" {
		return nil, nil, nil, &FormatError{Item: "model.type", Reason: fmt.Sprintf("%q, want BPE", tj.Model.Type)}
	}
	if s := tj.Model.EndOfWordSuffix; s == nil || *s != EndOfWord {
		return nil, nil, nil, &FormatError{Item: "model.end_of_word_suffix", Reason: "not \"</w>\": not a CLIP tokenizer"}
	}
	if len(tj.Model.Vocab) == 0 {
		return nil, nil, nil, &FormatError{Item: "model.vocab", Reason: "missing or empty"}
	}
	vocab = tj.Model.Vocab
	added = make(map[string]int, len(tj.AddedTokens))
	for i, a := range tj.AddedTokens {
		if a.ID == nil || a.Content == nil {
			return nil, nil, nil, &FormatError{Item: fmt.Sprintf("added_tokens[%d]", i), Reason: "needs an id and a content"}
		}
		if id, ok := vocab[*a.Content]; ok && id != *a.ID {
			return nil, nil, nil, &FormatError{Item: fmt.Sprintf("added_tokens[%d] %q", i, *a.Content), Reason: fmt.Sprintf("id %d, but model.vocab has %d", *a.ID, id)}
		}
		added[*a.Content] = *a.ID
		vocab[*a.Content] = *a.ID
	}
	if err := checkVocab(vocab); err != nil {
		return nil, nil, nil, err
	}
	merges = make([][2]string, 0, len(tj.Model.Merges))
	seen := make(map[[2]string]int, len(tj.Model.Merges))
	for i, raw := range tj.Model.Merges {
		item := fmt.Sprintf("model.merges[%d]", i)
		var s string
		var pair []string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			pair = strings.Fields(s)
		case json.Unmarshal(raw, &pair) == nil:
		default:
			return nil, nil, nil, &FormatError{Item: item, Reason: fmt.Sprintf("%.80s is neither \"a b\" nor [a, b]", raw)}
		}
		if len(pair) != 2 {
			return nil, nil, nil, &FormatError{Item: item, Reason: fmt.Sprintf("%.80s is not a pair of symbols", raw)}
		}
		m := [2]string{pair[0], pair[1]}
		if err := checkMerge(m); err != nil {
			err.Item = item
			return nil, nil, nil, err
		}
		if prev, dup := seen[m]; dup {
			return nil, nil, nil, &FormatError{Item: item, Reason: fmt.Sprintf("repeats model.merges[%d]", prev)}
		}
		seen[m] = i
		merges = append(merges, m)
	}
	return vocab, merges, added, nil
}

// config is what tokenizer_config.json and special_tokens_map.json say.
type config struct {
	opts       Options
	added      map[string]int // added_tokens_decoder or added_tokens.json; nil if neither
	additional []string       // additional_special_tokens
}

// parse reads a special_tokens_map.json or tokenizer_config.json:
// bos_token, eos_token, pad_token, unk_token as strings or {"content": ...}
// objects (null: not set), additional_special_tokens (a list of those),
// model_max_length, and (in tokenizer_config.json) added_tokens_decoder,
// an object of id -> {"content": ...}.
func (c *config) parse(data []byte, tokenizerConfig bool) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return &FormatError{Reason: "want a JSON object: " + err.Error()}
	}
	opts := &c.opts
	for key, dst := range map[string]*string{"bos_token": &opts.Start, "eos_token": &opts.End, "pad_token": &opts.Pad, "unk_token": &opts.Unknown} {
		raw, ok := m[key]
		if !ok || string(raw) == "null" {
			continue
		}
		s, err := tokenString(key, raw)
		if err != nil {
			return err
		}
		if s != "" {
			*dst = s
		}
	}
	if raw, ok := m["additional_special_tokens"]; ok && string(raw) != "null" {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return &FormatError{Item: "additional_special_tokens", Reason: "want a list"}
		}
		for i, r := range list {
			s, err := tokenString(fmt.Sprintf("additional_special_tokens[%d]", i), r)
			if err != nil {
				return err
			}
			if s == "" {
				return &FormatError{Item: fmt.Sprintf("additional_special_tokens[%d]", i), Reason: "empty"}
			}
			c.additional = append(c.additional, s)
		}
	}
	if raw, ok := m["model_max_length"]; ok && string(raw) != "null" {
		var n float64 // transformers writes 1e30 when unset
		if err := json.Unmarshal(raw, &n); err != nil || n < 2 || n <= MaxSequenceLength && n != math.Trunc(n) {
			return &FormatError{Item: "model_max_length", Reason: fmt.Sprintf("%.80s is not a whole number of at least 2", raw)}
		}
		if n <= MaxSequenceLength {
			opts.MaxLength = int(n)
		}
	}
	if raw, ok := m["added_tokens_decoder"]; ok && tokenizerConfig && string(raw) != "null" {
		var dec map[string]json.RawMessage
		if err := json.Unmarshal(raw, &dec); err != nil {
			return &FormatError{Item: "added_tokens_decoder", Reason: "want an object of id -> token"}
		}
		c.added = make(map[string]int, len(dec))
		for _, key := range slices.Sorted(maps.Keys(dec)) {
			item := fmt.Sprintf("added_tokens_decoder[%q]", key)
			id, err := strconv.Atoi(key)
			if err != nil {
				return &FormatError{Item: item, Reason: "the key is not an integer id"}
			}
			s, err := tokenString(item, dec[key])
			if err != nil {
				return err
			}
			if s == "" {
				return &FormatError{Item: item, Reason: "empty token"}
			}
			if prev, dup := c.added[s]; dup {
				return &FormatError{Item: item, Reason: fmt.Sprintf("%q is also added with id %d", s, prev)}
			}
			c.added[s] = id
		}
	}
	return nil
}

// tokenString reads a token written as a string or as {"content": ...}.
func tokenString(item string, raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var o struct {
		Content *string `json:"content"`
	}
	if json.Unmarshal(raw, &o) != nil || o.Content == nil {
		return "", &FormatError{Item: item, Reason: fmt.Sprintf("%.80s is neither a string nor {\"content\": string}", raw)}
	}
	return *o.Content, nil
}

// parseAddedTokens reads an added_tokens.json: an object of token -> id.
func parseAddedTokens(data []byte) (map[string]int, error) {
	if !utf8.Valid(data) {
		return nil, &FormatError{Item: "added tokens", Reason: "not valid UTF-8"}
	}
	var added map[string]int
	if err := json.Unmarshal(data, &added); err != nil {
		return nil, &FormatError{Item: "added tokens", Reason: "want a JSON object of token -> integer id: " + err.Error()}
	}
	if added == nil {
		added = map[string]int{}
	}
	return added, nil
}

// build makes the tokenizer: the configuration's added tokens (or, when it
// names none, those of tokenizer.json) and its additional special tokens
// are added to the vocabulary.
func (c *config) build(vocab map[string]int, merges [][2]string, jsonAdded map[string]int) (*Tokenizer, error) {
	opts := c.opts
	added := c.added
	if added == nil {
		added = jsonAdded
	}
	opts.AddedTokens = maps.Clone(added)
	for i, tok := range c.additional {
		if _, ok := opts.AddedTokens[tok]; ok {
			continue
		}
		id, ok := vocab[tok]
		if !ok {
			return nil, &FormatError{Item: fmt.Sprintf("additional_special_tokens[%d]", i), Reason: fmt.Sprintf("%q is neither in the vocabulary nor an added token", tok)}
		}
		if opts.AddedTokens == nil {
			opts.AddedTokens = map[string]int{}
		}
		opts.AddedTokens[tok] = id
	}
	return New(vocab, merges, opts)
}
