package clip

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// small is a valid vocab.json / merges.txt pair.
const (
	smallVocab  = `{"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "!</w>": 5, "<|startoftext|>": 6, "<|endoftext|>": 7}`
	smallMerges = "#version: 0.2\na b</w>\n"
)

func smallJSON(vocab, merges, added string) string {
	return `{"model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": ` + vocab + `, "merges": ` + merges + `}, "added_tokens": ` + added + `}`
}

// TestLoadRefuses loads corrupted tokenizer folders: each must fail with
// the typed error it documents, naming the file (and line) at fault.
func TestLoadRefuses(t *testing.T) {
	noSpecial := `{"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4}`
	cases := []struct {
		name  string
		files map[string]string
		file  string // the file the *FormatError names; "" for a *fs.PathError
		line  int
		want  string
	}{
		{"nothing", map[string]string{}, "", 0, "missing %DIR%/vocab.json and %DIR%/merges.txt (and no tokenizer.json)"},
		{"no merges", map[string]string{"vocab.json": smallVocab}, "", 0, "missing %DIR%/merges.txt"},
		{"vocab not an object", map[string]string{"vocab.json": "[1,2]", "merges.txt": smallMerges}, "vocab.json", 0, "want a JSON object"},
		{"vocab truncated", map[string]string{"vocab.json": smallVocab[:20], "merges.txt": smallMerges}, "vocab.json", 0, "want a JSON object"},
		{"vocab empty", map[string]string{"vocab.json": "{}", "merges.txt": smallMerges}, "vocab.json", 0, "vocabulary: empty"},
		{"vocab null", map[string]string{"vocab.json": "null", "merges.txt": smallMerges}, "vocab.json", 0, "vocabulary: empty"},
		{"negative id", map[string]string{"vocab.json": `{"a": -1, "<|startoftext|>": 0, "<|endoftext|>": 1}`, "merges.txt": smallMerges}, "vocab.json", 0, `token "a": negative id -1`},
		{"duplicate id", map[string]string{"vocab.json": `{"a": 0, "b": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}`, "merges.txt": smallMerges}, "vocab.json", 0, `token "b": id 0 is also the id of "a"`},
		{"huge id", map[string]string{"vocab.json": `{"a": 4611686018427387904, "<|startoftext|>": 0, "<|endoftext|>": 1}`, "merges.txt": smallMerges}, "vocab.json", 0, "out of range"},
		{"id beyond int64", map[string]string{"vocab.json": `{"a": 1e30, "<|startoftext|>": 0, "<|endoftext|>": 1}`, "merges.txt": smallMerges}, "vocab.json", 0, "want a JSON object"},
		{"fractional id", map[string]string{"vocab.json": `{"a": 0.5, "<|startoftext|>": 0, "<|endoftext|>": 1}`, "merges.txt": smallMerges}, "vocab.json", 0, "want a JSON object"},
		{"id hole", map[string]string{"vocab.json": `{"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 3}`, "merges.txt": smallMerges}, "vocab.json", 0, "ids must be 0..2"},
		{"merge of three", map[string]string{"vocab.json": smallVocab, "merges.txt": "#version: 0.2\na b c\n"}, "merges.txt", 2, "not a merge of two symbols"},
		{"merge of one", map[string]string{"vocab.json": smallVocab, "merges.txt": "#version: 0.2\na b</w>\nab\n"}, "merges.txt", 3, "not a merge of two symbols"},
		{"blank merge line", map[string]string{"vocab.json": smallVocab, "merges.txt": "#version: 0.2\na b\n\nb a\n"}, "merges.txt", 3, "not a merge of two symbols"},
		{"merge without header", map[string]string{"vocab.json": smallVocab, "merges.txt": "a b\nb\n"}, "merges.txt", 2, "not a merge of two symbols"},
		{"repeated merge", map[string]string{"vocab.json": smallVocab, "merges.txt": "#version: 0.2\na b\nb a\na b\n"}, "merges.txt", 4, "repeats the merge of line 2"},
		{"missing special", map[string]string{"vocab.json": noSpecial, "merges.txt": smallMerges}, "vocab.json", 0, `start token: "<|startoftext|>" is not in the vocabulary`},
		{"pad not in vocab", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "special_tokens_map.json": `{"pad_token": "<pad>"}`}, "vocab.json", 0, `pad token: "<pad>" is not in the vocabulary`},
		{"special map not JSON", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "special_tokens_map.json": "{"}, "special_tokens_map.json", 0, "want a JSON object"},
		{"special token a number", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "special_tokens_map.json": `{"eos_token": 7}`}, "special_tokens_map.json", 0, "eos_token"},
		{"special token object without content", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"bos_token": {"lstrip": false}}`}, "tokenizer_config.json", 0, "bos_token"},
		{"max length 1", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"model_max_length": 1}`}, "tokenizer_config.json", 0, "model_max_length"},
		{"max length negative", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"model_max_length": -77}`}, "tokenizer_config.json", 0, "model_max_length"},
		{"max length fractional", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"model_max_length": 76.5}`}, "tokenizer_config.json", 0, "model_max_length"},
		{"max length a string", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"model_max_length": "77"}`}, "tokenizer_config.json", 0, "model_max_length"},
		{"tokenizer.json not JSON", map[string]string{"tokenizer.json": "{"}, "tokenizer.json", 0, "unexpected end"},
		{"tokenizer.json no model", map[string]string{"tokenizer.json": `{"added_tokens": []}`}, "tokenizer.json", 0, "model: missing"},
		{"tokenizer.json WordPiece", map[string]string{"tokenizer.json": `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`}, "tokenizer.json", 0, `model.type: "WordPiece", want BPE`},
		{"tokenizer.json GPT-2 BPE", map[string]string{"tokenizer.json": `{"model": {"type": "BPE", "end_of_word_suffix": null, "vocab": {"a": 0}, "merges": []}}`}, "tokenizer.json", 0, "end_of_word_suffix"},
		{"tokenizer.json no vocab", map[string]string{"tokenizer.json": `{"model": {"type": "BPE", "end_of_word_suffix": "</w>", "merges": []}}`}, "tokenizer.json", 0, "model.vocab: missing or empty"},
		{"tokenizer.json merge a number", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[3]`, `[]`)}, "tokenizer.json", 0, "model.merges[0]: 3 is neither"},
		{"tokenizer.json merge of three", map[string]string{"tokenizer.json": smallJSON(smallVocab, `["a b c"]`, `[]`)}, "tokenizer.json", 0, "model.merges[0]: \"a b c\" is not a pair"},
		{"tokenizer.json empty symbol", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[["a", ""]]`, `[]`)}, "tokenizer.json", 0, "model.merges[0]: a symbol is empty"},
		{"tokenizer.json space in symbol", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[["a b", "c"]]`, `[]`)}, "tokenizer.json", 0, "model.merges[0]: a symbol contains white space"},
		{"tokenizer.json repeated merge", map[string]string{"tokenizer.json": smallJSON(smallVocab, `["a b", ["a", "b"]]`, `[]`)}, "tokenizer.json", 0, "model.merges[1]: repeats model.merges[0]"},
		{"tokenizer.json added token conflicts", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[]`, `[{"id": 3, "content": "<|endoftext|>"}]`)}, "tokenizer.json", 0, "id 3, but model.vocab has 7"},
		{"tokenizer.json added token negative", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[]`, `[{"id": -8, "content": "<x>"}]`)}, "tokenizer.json", 0, "negative id -8"},
		{"tokenizer.json added token huge", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[]`, `[{"id": 1000000000, "content": "<x>"}]`)}, "tokenizer.json", 0, "out of range"},
		{"tokenizer.json added token without id", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[]`, `[{"content": "<x>"}]`)}, "tokenizer.json", 0, "needs an id and a content"},
		{"added token conflicts", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "added_tokens.json": `{"ab</w>": 8}`}, "vocab.json", 0, `added token "ab</w>": id 8, but the vocabulary has 4`},
		{"added token leaves a hole", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "added_tokens.json": `{"<x>": 9}`}, "vocab.json", 0, "ids must be 0..8"},
		{"added token reuses an id", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "added_tokens.json": `{"<x>": 3}`}, "vocab.json", 0, "is also the id of"},
		{"added_tokens.json not an object", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "added_tokens.json": `["<x>"]`}, "added_tokens.json", 0, "want a JSON object"},
		{"added_tokens_decoder key not an id", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"added_tokens_decoder": {"x": {"content": "<x>"}}}`}, "tokenizer_config.json", 0, "not an integer id"},
		{"added_tokens_decoder token twice", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"added_tokens_decoder": {"8": "<x>", "9": {"content": "<x>"}}}`}, "tokenizer_config.json", 0, "also added with id 8"},
		{"added_tokens_decoder empty token", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "tokenizer_config.json": `{"added_tokens_decoder": {"8": {"content": ""}}}`}, "tokenizer_config.json", 0, "empty token"},
		{"additional special token unknown", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "special_tokens_map.json": `{"additional_special_tokens": ["<y>"]}`}, "vocab.json", 0, `"<y>" is neither in the vocabulary nor an added token`},
		{"additional special tokens not a list", map[string]string{"vocab.json": smallVocab, "merges.txt": smallMerges, "special_tokens_map.json": `{"additional_special_tokens": "<y>"}`}, "special_tokens_map.json", 0, "want a list"},
		{"merges not UTF-8", map[string]string{"vocab.json": smallVocab, "merges.txt": "#version: 0.2\n\xe3 \x80\x80\n"}, "merges.txt", 2, "not valid UTF-8"},
		{"vocab not UTF-8", map[string]string{"vocab.json": "{\"\xff\": 0}", "merges.txt": smallMerges}, "vocab.json", 0, "not valid UTF-8"},
		{"tokenizer.json added token twice", map[string]string{"tokenizer.json": smallJSON(smallVocab, `[]`, `[{"id": 8, "content": "<x>"}, {"id": 9, "content": "<x>"}]`)}, "tokenizer.json", 0, "id 9, but model.vocab has 8"},
		{"tokenizer.json vocab with a duplicate id", map[string]string{"tokenizer.json": smallJSON(`{"a": 0, "b": 0}`, `[]`, `[]`)}, "tokenizer.json", 0, "is also the id of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, c.files)
			tok, err := Load(dir)
			require.Nil(t, tok)
			require.Error(t, err)
			require.ErrorContains(t, err, strings.ReplaceAll(c.want, "%DIR%", dir))
			if c.file == "" {
				var pe *fs.PathError
				require.ErrorAs(t, err, &pe)
				require.ErrorIs(t, err, fs.ErrNotExist)
				return
			}
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, filepath.Join(dir, c.file), fe.File)
			require.Equal(t, c.line, fe.Line)
		})
	}
}

// TestAddedTokens loads folders with added tokens (textual-inversion
// tokens, additional special tokens) in each place transformers reads them
// from. As CLIPTokenizer.tokenize does, each is split out of the text
// exactly as written and becomes its id.
func TestAddedTokens(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
	}{
		{"added_tokens_decoder", map[string]string{"tokenizer_config.json": `{"added_tokens_decoder": {"8": {"content": "<cat-toy>", "lstrip": false, "special": false}}}`}},
		{"added_tokens.json", map[string]string{"added_tokens.json": `{"<cat-toy>": 8}`}},
		{"added_tokens_decoder wins over added_tokens.json", map[string]string{
			"tokenizer_config.json": `{"added_tokens_decoder": {"8": "<cat-toy>"}}`, "added_tokens.json": `{"<dog>": 8}`}},
		{"additional special token", map[string]string{
			"added_tokens.json": `{"<cat-toy>": 8}`, "special_tokens_map.json": `{"additional_special_tokens": [{"content": "<cat-toy>"}, "ab</w>"]}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.files["vocab.json"], c.files["merges.txt"] = smallVocab, smallMerges
			tok, err := Load(writeFiles(t, c.files))
			require.NoError(t, err)
			require.Equal(t, 9, tok.VocabSize())
			require.Equal(t, []string{"a</w>", "<cat-toy>", "b</w>", "<cat-toy>", "<</w>", "c", "a", "t</w>"}, tok.Tokenize("a<cat-toy>b <cat-toy> <CAT"))
			require.Equal(t, []int{6, 2, 8, 3, 7}, tok.Encode("a<cat-toy>b"))
			require.Equal(t, []int{6, 7, 8, 7}, tok.Encode("<|endoftext|><cat-toy>"))
		})
	}
	t.Run("tokenizer.json", func(t *testing.T) {
		tok, err := Load(writeFiles(t, map[string]string{"tokenizer.json": smallJSON(smallVocab, `["a b</w>"]`, `[{"id": 7, "content": "<|endoftext|>"}, {"id": 8, "content": "<cat-toy>"}]`)}))
		require.NoError(t, err)
		require.Equal(t, []int{6, 2, 8, 4, 7}, tok.Encode("a<cat-toy>ab"))
	})
	t.Run("New does not change the caller's vocabulary", func(t *testing.T) {
		vocab := map[string]int{StartToken: 0, EndToken: 1}
		tok, err := New(vocab, nil, Options{AddedTokens: map[string]int{"<x>": 2}})
		require.NoError(t, err)
		require.Len(t, vocab, 2)
		require.Equal(t, []int{0, 2, 1}, tok.Encode("<x>"))
	})
}

func TestLoadRefusesHugeFile(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "vocab.json"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(MaxFileSize+1)) // sparse: no disk used
	require.NoError(t, f.Close())
	require.NoError(t, os.WriteFile(filepath.Join(dir, "merges.txt"), []byte(smallMerges), 0o644))
	_, err = Load(dir)
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.Reason, "larger than")
}

func TestLoadAccepts(t *testing.T) {
	// transformers writes model_max_length 1e30 when unset, null special
	// tokens mean "not set", and "content" objects carry flags.
	dir := writeFiles(t, map[string]string{
		"vocab.json": smallVocab, "merges.txt": smallMerges,
		"tokenizer_config.json":   `{"model_max_length": 1e30, "unk_token": null, "bos_token": {"content": "<|startoftext|>", "lstrip": false}}`,
		"special_tokens_map.json": `{"pad_token": "!</w>"}`,
	})
	tok, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, MaxLength, tok.MaxLength())
	require.Equal(t, 5, tok.PadID())
}

func TestNewRejects(t *testing.T) {
	v := map[string]int{StartToken: 0, EndToken: 1}
	cases := []struct {
		name   string
		vocab  map[string]int
		merges [][2]string
		opts   Options
		want   string
	}{
		{"nil vocabulary", nil, nil, Options{}, "vocabulary: empty"},
		{"negative id", map[string]int{StartToken: 0, EndToken: -1}, nil, Options{}, "negative id"},
		{"huge id", map[string]int{StartToken: 0, EndToken: 1 << 62}, nil, Options{}, "out of range"},
		{"duplicate id", map[string]int{StartToken: 0, EndToken: 0}, nil, Options{}, "is also the id of"},
		{"empty symbol", v, [][2]string{{"a", ""}}, Options{}, "a symbol is empty"},
		{"space in symbol", v, [][2]string{{"a\u00a0b", "c"}}, Options{}, "white space"},
		{"repeated merge", v, [][2]string{{"a", "b"}, {"a", "b"}}, Options{}, "repeats merge 0"},
		{"max length 1", v, nil, Options{MaxLength: 1}, "max length: 1 is outside"},
		{"max length negative", v, nil, Options{MaxLength: -5}, "max length: -5 is outside"},
		{"max length huge", v, nil, Options{MaxLength: 1 << 40}, "is outside"},
		{"unknown special", v, nil, Options{Unknown: "<unk>"}, `unknown token: "<unk>" is not in the vocabulary`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := New(c.vocab, c.merges, c.opts)
			require.Nil(t, tok)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.ErrorContains(t, err, c.want)
		})
	}
}

// checkEncoding checks what must hold for any text: no panic, ids in the
// vocabulary, the start and end tokens around Encode's ids, EncodePadded
// of exactly MaxLength ids whose text part is a prefix of Encode's.
func checkEncoding(t testing.TB, tok *Tokenizer, text string) {
	ids := tok.Encode(text)
	if len(ids) < 2 || ids[0] != tok.StartID() || ids[len(ids)-1] != tok.EndID() {
		t.Fatalf("Encode(%q) = %v: not framed by the start and end tokens", text, ids)
	}
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("Encode(%q): id %d outside the vocabulary", text, id)
		}
	}
	padded, truncated := tok.EncodePadded(text)
	n := tok.MaxLength()
	if len(padded) != n || padded[0] != tok.StartID() {
		t.Fatalf("EncodePadded(%q) = %v", text, padded)
	}
	body := ids[1 : len(ids)-1]
	if truncated != (len(body) > n-2) {
		t.Fatalf("EncodePadded(%q): truncated %v with %d text tokens", text, truncated, len(body))
	}
	k := min(len(body), n-2)
	for i := range k {
		if padded[1+i] != body[i] {
			t.Fatalf("EncodePadded(%q) = %v, Encode = %v", text, padded, ids)
		}
	}
	if padded[1+k] != tok.EndID() {
		t.Fatalf("EncodePadded(%q): no end token after the text", text)
	}
	for _, id := range padded[2+k:] {
		if id != tok.PadID() {
			t.Fatalf("EncodePadded(%q): %d where padding belongs", text, id)
		}
	}
}

// TestEncodeHostile encodes hostile text with CLIP's vocabulary: invalid
// UTF-8, every special token shape, control characters, huge words.
func TestEncodeHostile(t *testing.T) {
	tok := realTokenizer(t)
	texts := []string{
		"", "\x00", "\xff\xfe\xfd", "a\xc3", "\xed\xa0\x80", // invalid UTF-8 and a UTF-8-encoded surrogate
		strings.Repeat("<|endoftext|>", 1000), strings.Repeat("<|ENDOFTEXT|>", 1000), "<|", "|>", "<||>",
		strings.Repeat("\u200b", 1000), strings.Repeat("\u0345", 100), strings.Repeat("İ", 100), strings.Repeat("Σ", 100),
		strings.Repeat("a", 20000),               // one pre-token of 20,000 letters: BPE must stay fast (O(n log n))
		strings.Repeat("ab", 10000),              // one pre-token that merges at every position
		strings.Repeat("!", 20000),               // one run of punctuation
		strings.Repeat("日", 5000),                // 5,000 CJK words
		strings.Repeat("'s", 3000),               // 3,000 contractions
		strings.Repeat("a ", 20000),              // 20,000 words
		strings.Repeat("\U0001F600", 3000),       // a run of 4-byte characters
		string([]rune{0x10FFFF, 0xFFFE, 0xE000}), // noncharacters, private use
	}
	// Random byte strings and random strings of tricky characters.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aAzZ09'sS ſ<|>!.\t\n\u00a0\u0345\u0301İΣσ日本\U0001F600\u200b\ufffd\x00")
	for range 100 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		texts = append(texts, string(b))
		r := make([]rune, rng.IntN(64))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		texts = append(texts, string(r))
	}
	for _, text := range texts {
		checkEncoding(t, tok, text)
	}
	require.Equal(t, []int{49406, 49407}, tok.Encode("\xff\u200b\x00"), "invalid UTF-8 and control characters are dropped")
}

// TestBPELongWord checks the BPE on long words against merging by
// repeated scans (the way CLIPTokenizer.bpe works).
func TestBPELongWord(t *testing.T) {
	tok := realTokenizer(t)
	rng := rand.New(rand.NewPCG(3, 4))
	letters := []rune("abcdefghijklmnopqrstuvwxyzéß")
	for range 200 {
		r := make([]rune, 1+rng.IntN(200))
		for i := range r {
			r[i] = letters[rng.IntN(len(letters))]
		}
		var sym []byte
		for _, c := range []byte(string(r)) {
			sym = utf8.AppendRune(sym, byteRunes[c])
		}
		word := string(sym) + EndOfWord
		require.Equal(t, scanBPE(tok, word), tok.bpe(word, nil), "%q", string(r))
	}
}

// scanBPE is the quadratic BPE: find the lowest-ranked adjacent pair, merge
// its occurrences left to right, repeat.
func scanBPE(t *Tokenizer, word string) []string {
	rs := []rune(word[:len(word)-len(EndOfWord)])
	w := make([]string, len(rs))
	for i, r := range rs {
		w[i] = string(r)
	}
	w[len(w)-1] += EndOfWord
	for len(w) > 1 {
		best, bestRank := [2]string{}, -1
		for i := 0; i+1 < len(w); i++ {
			p := [2]string{w[i], w[i+1]}
			if r, ok := t.ranks[p]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = p, r
			}
		}
		if bestRank < 0 {
			break
		}
		var m []string
		for i := 0; i < len(w); i++ {
			if i+1 < len(w) && w[i] == best[0] && w[i+1] == best[1] {
				m = append(m, best[0]+best[1])
				i++
			} else {
				m = append(m, w[i])
			}
		}
		w = m
	}
	return w
}

// TestBPEBatchOrder checks a vocabulary whose merges are out of training
// order: after "b c" merges, "bc bc" (of lower rank) must wait until every
// "b c" has merged, as CLIPTokenizer.bpe does.
func TestBPEBatchOrder(t *testing.T) {
	tok := byteTokenizer(t, [2]string{"bc", "b"}, [2]string{"b", "c"}, [2]string{"bc", "c</w>"})
	for _, text := range []string{"bcbc", "bcbcbc", "bbcbc", "bcb"} {
		var sym []byte
		for _, c := range []byte(text) {
			sym = utf8.AppendRune(sym, byteRunes[c])
		}
		word := string(sym) + EndOfWord
		require.Equal(t, scanBPE(tok, word), tok.bpe(word, nil), text)
	}
}

// Fuzz targets: every parser of a tokenizer file, and Encode. `make test`
// runs their seed corpora; `make fuzz` fuzzes them.

func FuzzParseVocab(f *testing.F) {
	for _, s := range []string{smallVocab, "{}", "[]", `{"a": -1}`, `{"a": 1}`, `{"a": 0, "b": 0}`, `{"a": 1e3}`, "null", `{"\u0000": 0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vocab, err := parseVocab(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		seen := make([]bool, len(vocab))
		for tok, id := range vocab {
			if id < 0 || id >= len(vocab) || seen[id] {
				t.Fatalf("accepted id %d of %q", id, tok)
			}
			seen[id] = true
		}
	})
}

func FuzzParseMerges(f *testing.F) {
	for _, s := range []string{smallMerges, "", "#version: 0.2", "a b\nb c", "a b c", "a b\n\nc d", "a b\na b", "#version\n\u00a0 b", "a\tb\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		merges, err := ParseMerges(text)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Line < 1 {
				t.Fatalf("error %v is not a *FormatError with a line", err)
			}
			return
		}
		seen := map[[2]string]bool{}
		for _, m := range merges {
			if m[0] == "" || m[1] == "" || strings.ContainsAny(m[0]+m[1], " \t\n\r") || seen[m] {
				t.Fatalf("accepted merge %q", m)
			}
			seen[m] = true
		}
		// What ParseMerges accepts, New accepts.
		if _, err := New(map[string]int{StartToken: 0, EndToken: 1}, merges, Options{}); err != nil {
			t.Fatalf("New refuses parsed merges: %v", err)
		}
	})
}

func FuzzParseTokenizerJSON(f *testing.F) {
	for _, s := range []string{
		smallJSON(smallVocab, `["a b</w>"]`, `[]`),
		smallJSON(smallVocab, `[["a", "b</w>"]]`, `[{"id": 8, "content": "<x>"}]`),
		smallJSON(smallVocab, `[3]`, `[]`),
		smallJSON(`{"a": 0}`, `[]`, `[{"id": 0, "content": "a"}]`),
		`{"model": null}`, `{"model": {"type": "BPE"}}`, "{", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vocab, merges, _, err := parseTokenizerJSON(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		if err := checkVocab(vocab); err != nil {
			t.Fatalf("accepted a bad vocabulary: %v", err)
		}
		tok, err := New(vocab, merges, Options{})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("New: error %v is not a *FormatError", err)
			}
			return
		}
		checkEncoding(t, tok, "a b ab <|endoftext|>!")
	})
}

func FuzzParseAddedTokens(f *testing.F) {
	for _, s := range []string{`{"<x>": 8}`, `{}`, `[]`, `{"<x>": -1}`, `{"": 0}`, "null", `{"a": 1e40}`} {
		f.Add([]byte(s))
	}
	vocab, err := parseVocab([]byte(smallVocab))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		added, err := parseAddedTokens(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		tok, err := New(vocab, nil, Options{AddedTokens: added})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("New: error %v is not a *FormatError", err)
			}
			return
		}
		for s, id := range added {
			if got := tok.Encode(s); !slices.Equal(got, []int{6, id, 7}) {
				t.Fatalf("Encode(%q) = %v, want [6 %d 7]", s, got, id)
			}
		}
	})
}

func FuzzParseSpecial(f *testing.F) {
	for _, s := range []string{
		`{"pad_token": "!", "model_max_length": 77}`, `{"bos_token": {"content": "<s>"}}`, `{"eos_token": 3}`,
		`{"model_max_length": 1e30}`, `{"model_max_length": -1}`, `{"unk_token": null}`, "[]", "{",
		`{"added_tokens_decoder": {"8": {"content": "<x>"}}, "additional_special_tokens": ["<x>", {"content": "<y>"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c config
		err := c.parse(data, true)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		if n := c.opts.MaxLength; n != 0 && (n < 2 || n > MaxSequenceLength) {
			t.Fatalf("accepted max length %d", n)
		}
		for tok := range c.added {
			if tok == "" {
				t.Fatal("accepted an empty added token")
			}
		}
	})
}

func FuzzEncode(f *testing.F) {
	for _, c := range goldenCases(f) {
		if c.Config == "sd1" {
			f.Add(c.Text)
		}
	}
	f.Add("\xff\xfe<|endoftext|>\u0345")
	tok := realTokenizer(f)
	f.Fuzz(func(t *testing.T, text string) {
		checkEncoding(t, tok, text)
	})
}

func TestZeroTokenizerPanics(t *testing.T) {
	var zero Tokenizer
	var nilTok *Tokenizer
	for name, f := range map[string]func(){
		"zero Encode":       func() { zero.Encode("a") },
		"zero EncodePadded": func() { zero.EncodePadded("a") },
		"nil Tokenize":      func() { nilTok.Tokenize("a") },
		"nil IDs":           func() { nilTok.IDs([]string{"a"}) },
	} {
		require.PanicsWithValue(t, "clip: Tokenizer used without New or Load", f, name)
	}
}
