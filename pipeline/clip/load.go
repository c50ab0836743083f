package clip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
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
// Malformed or inconsistent files give a *FormatError naming the file;
// a missing or unreadable file gives the *fs.PathError of the read.
func Load(dir string) (*Tokenizer, error) {
	var opts Options
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		path := filepath.Join(dir, name)
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := parseSpecial(data, &opts); err != nil {
			return nil, inFile(err, path)
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
		tok, err := New(vocab, merges, opts)
		return tok, inFile(err, vocabPath)
	}
	jsonPath := filepath.Join(dir, "tokenizer.json")
	data, err := readFile(jsonPath)
	if err == nil {
		vocab, merges, err := parseTokenizerJSON(data)
		if err != nil {
			return nil, inFile(err, jsonPath)
		}
		tok, err := New(vocab, merges, opts)
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
// not two symbols, or a merge that repeats an earlier one, gives a
// *FormatError with its line number.
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
// added tokens, which must agree with model.vocab where both have a token.
func parseTokenizerJSON(data []byte) (map[string]int, [][2]string, error) {
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
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, nil, &FormatError{Reason: err.Error()}
	}
	if tj.Model == nil {
		return nil, nil, &FormatError{Item: "model", Reason: "missing"}
	}
	if tj.Model.Type != "BPE" {
		return nil, nil, &FormatError{Item: "model.type", Reason: fmt.Sprintf("%q, want BPE", tj.Model.Type)}
	}
	if s := tj.Model.EndOfWordSuffix; s == nil || *s != EndOfWord {
		return nil, nil, &FormatError{Item: "model.end_of_word_suffix", Reason: "not \"</w>\": not a CLIP tokenizer"}
	}
	if len(tj.Model.Vocab) == 0 {
		return nil, nil, &FormatError{Item: "model.vocab", Reason: "missing or empty"}
	}
	vocab := tj.Model.Vocab
	for i, a := range tj.AddedTokens {
		if a.ID == nil || a.Content == nil {
			return nil, nil, &FormatError{Item: fmt.Sprintf("added_tokens[%d]", i), Reason: "needs an id and a content"}
		}
		if id, ok := vocab[*a.Content]; ok && id != *a.ID {
			return nil, nil, &FormatError{Item: fmt.Sprintf("added_tokens[%d] %q", i, *a.Content), Reason: fmt.Sprintf("id %d, but model.vocab has %d", *a.ID, id)}
		}
		vocab[*a.Content] = *a.ID
	}
	if err := checkVocab(vocab); err != nil {
		return nil, nil, err
	}
	merges := make([][2]string, 0, len(tj.Model.Merges))
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
			return nil, nil, &FormatError{Item: item, Reason: fmt.Sprintf("%.80s is neither \"a b\" nor [a, b]", raw)}
		}
		if len(pair) != 2 {
			return nil, nil, &FormatError{Item: item, Reason: fmt.Sprintf("%.80s is not a pair of symbols", raw)}
		}
		m := [2]string{pair[0], pair[1]}
		if err := checkMerge(m); err != nil {
			err.Item = item
			return nil, nil, err
		}
		if prev, dup := seen[m]; dup {
			return nil, nil, &FormatError{Item: item, Reason: fmt.Sprintf("repeats model.merges[%d]", prev)}
		}
		seen[m] = i
		merges = append(merges, m)
	}
	return vocab, merges, nil
}

// parseSpecial fills opts from a special_tokens_map.json or
// tokenizer_config.json: bos_token, eos_token, pad_token and unk_token as
// strings or {"content": ...} objects (null: not set), and
// model_max_length.
func parseSpecial(data []byte, opts *Options) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return &FormatError{Reason: "want a JSON object: " + err.Error()}
	}
	for key, dst := range map[string]*string{"bos_token": &opts.Start, "eos_token": &opts.End, "pad_token": &opts.Pad, "unk_token": &opts.Unknown} {
		raw, ok := m[key]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var o struct {
				Content *string `json:"content"`
			}
			if json.Unmarshal(raw, &o) != nil || o.Content == nil {
				return &FormatError{Item: key, Reason: fmt.Sprintf("%.80s is neither a string nor {\"content\": string}", raw)}
			}
			s = *o.Content
		}
		if s != "" {
			*dst = s
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
	return nil
}
