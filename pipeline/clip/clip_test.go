package clip

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// hfTestTokenizer is the vocabulary of transformers' CLIP tokenizer test
// (tests/models/clip/test_tokenization_clip.py), with its unknown token.
func hfTestTokenizer(t *testing.T) *Tokenizer {
	vocabList := []string{"l", "o", "w", "e", "r", "s", "t", "i", "d", "n", "lo", "l</w>", "w</w>", "r</w>", "t</w>",
		"low</w>", "er</w>", "lowest</w>", "newer</w>", "wider", "<unk>", "<|startoftext|>", "<|endoftext|>"}
	vocab := map[string]int{}
	for i, v := range vocabList {
		vocab[v] = i
	}
	merges, err := ParseMerges("#version: 0.2\nl o\nlo w</w>\ne r</w>")
	require.NoError(t, err)
	tok, err := New(vocab, merges, Options{Unknown: "<unk>"})
	require.NoError(t, err)
	return tok
}

func TestTransformersTestVocabulary(t *testing.T) {
	tok := hfTestTokenizer(t)
	tokens := tok.Tokenize("lower newer")
	require.Equal(t, []string{"lo", "w", "er</w>", "n", "e", "w", "er</w>"}, tokens)
	require.Equal(t, []int{10, 2, 16, 9, 3, 2, 16, 20}, tok.IDs(append(tokens, "<unk>")))
	require.Equal(t, []int{21, 10, 2, 16, 9, 3, 2, 16, 22}, tok.Encode("lower newer"))
}

// clipLayout builds a vocabulary laid out as CLIP's: the 256 byte symbols,
// the same with </w>, then one token per merge (id 512+rank), then the
// start and end tokens. The merges needed for "a photo of a cat" sit at the
// ranks that give CLIP's published ids; the others are fillers that never
// apply. With 48894 merges the special tokens get ids 49406 and 49407.
func clipLayout(t testing.TB) (map[string]int, [][2]string) {
	want := map[int][2]string{ // rank -> merge
		27:   {"o", "f</w>"},    // of</w> = 539
		100:  {"p", "h"},        // ph
		101:  {"ph", "o"},       // pho
		102:  {"t", "o</w>"},    // to</w>
		613:  {"pho", "to</w>"}, // photo</w> = 1125
		200:  {"c", "a"},        // ca
		1856: {"ca", "t</w>"},   // cat</w> = 2368
	}
	merges := make([][2]string, maxMerges)
	for r := range merges {
		if m, ok := want[r]; ok {
			merges[r] = m
		} else {
			merges[r] = [2]string{fmt.Sprintf("Ā%d", r), "Ā"}
		}
	}
	vocab := map[string]int{}
	for i, s := range ByteSymbols() {
		vocab[s] = i
		vocab[s+EndOfWord] = 256 + i
	}
	for r, m := range merges {
		vocab[m[0]+m[1]] = 512 + r
	}
	vocab[StartToken] = len(vocab)
	vocab[EndToken] = len(vocab)
	return vocab, merges
}

func TestPublishedIDs(t *testing.T) {
	vocab, merges := clipLayout(t)
	require.Equal(t, 49406, vocab[StartToken])
	require.Equal(t, 49407, vocab[EndToken])
	tok, err := New(vocab, merges, Options{})
	require.NoError(t, err)
	for _, text := range []string{"a photo of a cat", "A Photo  of a\tCAT", " a photo of a cat\n"} {
		require.Equal(t, []int{49406, 320, 1125, 539, 320, 2368, 49407}, tok.Encode(text), "%q", text)
	}
	ids, truncated := tok.EncodePadded("a photo of a cat")
	require.False(t, truncated)
	require.Len(t, ids, 77)
	require.Equal(t, []int{49406, 320, 1125, 539, 320, 2368, 49407, 49407}, ids[:8])
	require.Equal(t, 49407, ids[76], "SD 1.x pads with <|endoftext|>")
}

// TestMergesFileCap checks that, like CLIPTokenizer, only the first 48894
// merges of merges.txt are read.
func TestMergesFileCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("#version: 0.2\n")
	for i := range maxMerges + 10 {
		fmt.Fprintf(&b, "x%d y\n", i)
	}
	m, err := ParseMerges(b.String())
	require.NoError(t, err)
	require.Len(t, m, maxMerges)
	require.Equal(t, [2]string{"x0", "y"}, m[0])
}

// byteTokenizer has only the 512 byte symbols: every token is one byte.
func byteTokenizer(t *testing.T, merges ...[2]string) *Tokenizer {
	vocab := map[string]int{}
	for i, s := range ByteSymbols() {
		vocab[s] = i
		vocab[s+EndOfWord] = 256 + i
	}
	for r, m := range merges {
		vocab[m[0]+m[1]] = 512 + r
	}
	vocab[StartToken] = len(vocab)
	vocab[EndToken] = len(vocab)
	tok, err := New(vocab, merges, Options{})
	require.NoError(t, err)
	return tok
}

func TestTokenize(t *testing.T) {
	tok := byteTokenizer(t, [2]string{"l", "l"}, [2]string{"ll", "o</w>"}, [2]string{"he", "llo</w>"}, [2]string{"h", "e"})
	cases := []struct {
		text string
		want []string
	}{
		{"it's 42!", []string{"i", "t</w>", "'", "s</w>", "4</w>", "2</w>", "!</w>"}},
		{"we'll", []string{"w", "e</w>", "'", "l", "l</w>"}},
		{"hello", []string{"hello</w>"}}, // merges by rank: l l, ll o</w>, h e, he llo</w>
		{"Hello!!", []string{"hello</w>", "!", "!</w>"}},
		{"a-b", []string{"a</w>", "-</w>", "b</w>"}},
		{"", nil},
		{"  \t\n ", nil},
		{"é", []string{"Ã", "©</w>"}}, // UTF-8 C3 A9 through bytes_to_unicode
		{"a<|endoftext|>b", []string{"a</w>", EndToken, "b</w>"}},
	}
	for _, c := range cases {
		require.Equal(t, c.want, tok.Tokenize(c.text), "%q", c.text)
	}
	// As in CLIPTokenizer, the two CLIP special tokens are also found in any
	// case where a pre-token starts, but not glued after punctuation.
	require.Equal(t, []string{EndToken}, tok.Tokenize("<|ENDOFTEXT|>"))
	require.Equal(t, []string{"a</w>", StartToken, "b</w>"}, tok.Tokenize("a<|StartOfText|>b"))
	require.Equal(t, []string{"!", "<", "|</w>"}, tok.Tokenize("!<|ENDOFTEXT|>")[:3])
}

func TestNormalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"A\n'll  11p223RF☆ho!!to?'d", "a 'll 11p223rf☆ho!!to?'d"},
		{"xa\u0303y", "x\u00e3y"}, // NFC
		{"x\u00e3y", "x\u00e3y"},
		{"a\u200eb\u0000c\ufffdd\u0007e", "abcde"}, // format and control characters dropped
		{"a\u00a0b\u3000c", "a b c"},               // Zs spaces
		{"a\u2028b", "a b"},
		{"日本語", "日 本 語"},
		{"ΟΔΥΣΣΕΥΣ", "οδυσσευς"},
		{"İstanbul", "i\u0307stanbul"},
		{"\t \u000b\u000c \r\n", ""},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Normalize(c.in), "%q", c.in)
	}
}

func TestEncodePaddedTruncates(t *testing.T) {
	tok := byteTokenizer(t)
	ids, truncated := tok.EncodePadded(strings.Repeat("a ", 100))
	require.True(t, truncated)
	require.Len(t, ids, 77)
	require.Equal(t, tok.StartID(), ids[0])
	require.Equal(t, tok.EndID(), ids[76])
	for _, id := range ids[1:76] {
		require.Equal(t, 320, id, "a</w>")
	}
	ids, truncated = tok.EncodePadded(strings.Repeat("a ", 75))
	require.False(t, truncated, "exactly 75 tokens fit")
	require.Equal(t, tok.EndID(), ids[76])
}

func TestUnknownToken(t *testing.T) {
	tok := hfTestTokenizer(t)
	require.Equal(t, []int{21, 20, 22}, tok.Encode("x"), "a symbol missing from the vocabulary is <unk>")
}

func TestByteSymbols(t *testing.T) {
	syms := ByteSymbols()
	require.Len(t, syms, 256)
	seen := map[string]bool{}
	for _, s := range syms {
		require.False(t, seen[s], "duplicate %q", s)
		seen[s] = true
	}
	require.Equal(t, "!", syms[0])
	require.Equal(t, "a", syms[64])
	require.Equal(t, "Ā", syms[188], "byte 0 maps to U+0100, after the 188 printable bytes")
	require.Equal(t, "Ġ", syms[188+32], "the space byte is U+0120")
}

func writeFiles(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return dir
}

func TestLoad(t *testing.T) {
	vocab := map[string]int{"a": 0, "b": 1, "a</w>": 2, "b</w>": 3, "ab</w>": 4, "!</w>": 5, "<|startoftext|>": 6, "<|endoftext|>": 7}
	vj, err := json.Marshal(vocab)
	require.NoError(t, err)
	merges := "#version: 0.2\na b</w>\n"

	t.Run("vocab and merges", func(t *testing.T) {
		tok, err := Load(writeFiles(t, map[string]string{"vocab.json": string(vj), "merges.txt": merges}))
		require.NoError(t, err)
		require.Equal(t, []int{6, 4, 7}, tok.Encode("ab"))
		require.Equal(t, 77, tok.MaxLength())
		require.Equal(t, 7, tok.PadID())
		require.Equal(t, 8, tok.VocabSize())
	})
	t.Run("SD 2 padding and max length", func(t *testing.T) {
		tok, err := Load(writeFiles(t, map[string]string{
			"vocab.json": string(vj), "merges.txt": merges,
			"special_tokens_map.json": `{"pad_token": "!</w>", "bos_token": {"content": "<|startoftext|>"}}`,
			"tokenizer_config.json":   `{"model_max_length": 8}`,
		}))
		require.NoError(t, err)
		ids, _ := tok.EncodePadded("ab")
		require.Equal(t, []int{6, 4, 7, 5, 5, 5, 5, 5}, ids)
	})
	for _, form := range []string{`["a b</w>"]`, `[["a", "b</w>"]]`} {
		t.Run("tokenizer.json "+form, func(t *testing.T) {
			delete(vocab, "<|startoftext|>")
			delete(vocab, "<|endoftext|>")
			vj2, _ := json.Marshal(vocab)
			tj := fmt.Sprintf(`{"model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": %s, "merges": %s},
				"added_tokens": [{"id": 6, "content": "<|startoftext|>"}, {"id": 7, "content": "<|endoftext|>"}]}`, vj2, form)
			tok, err := Load(writeFiles(t, map[string]string{"tokenizer.json": tj}))
			require.NoError(t, err)
			require.Equal(t, []int{6, 4, 7}, tok.Encode("ab"))
			vocab["<|startoftext|>"], vocab["<|endoftext|>"] = 6, 7
		})
	}
}

func BenchmarkEncodePadded(b *testing.B) {
	vocab, merges := clipLayout(b)
	tok, err := New(vocab, merges, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tok.EncodePadded("a photo of a cat sitting on a wooden table, highly detailed, 4k")
	}
}
