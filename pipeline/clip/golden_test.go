package clip

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// realDir holds CLIP's vocab.json and merges.txt (testdata/clip/README.md).
var realDir = filepath.Join("..", "..", "testdata", "clip")

var realTokenizers = sync.OnceValues(func() (map[string]*Tokenizer, error) {
	sd1, err := Load(realDir)
	if err != nil {
		return nil, err
	}
	vocab, err := parseVocab(must(os.ReadFile(filepath.Join(realDir, "vocab.json"))))
	if err != nil {
		return nil, err
	}
	merges, err := ParseMerges(string(must(os.ReadFile(filepath.Join(realDir, "merges.txt")))))
	if err != nil {
		return nil, err
	}
	sd2, err := New(vocab, merges, Options{Pad: "!"})
	if err != nil {
		return nil, err
	}
	return map[string]*Tokenizer{"sd1": sd1, "sd2": sd2}, nil
})

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// realTokenizer is CLIP's tokenizer as Stable Diffusion 1.x loads it.
func realTokenizer(t testing.TB) *Tokenizer {
	toks, err := realTokenizers()
	require.NoError(t, err)
	return toks["sd1"]
}

type goldenCase struct {
	Config string   `json:"config"`
	Text   string   `json:"text"`
	Tokens []string `json:"tokens"`
	IDs    []int    `json:"ids"`
	Padded []int    `json:"padded"`
}

func goldenCases(t testing.TB) []goldenCase {
	data, err := os.ReadFile(filepath.Join(realDir, "golden.json"))
	require.NoError(t, err)
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &g))
	require.NotEmpty(t, g.Cases)
	return g.Cases
}

// TestTransformersGolden checks the tokens and ids of real prompts against
// those transformers' CLIPTokenizer gives over the same vocabulary files
// (tools/clip/golden.py), with Stable Diffusion 1.x's padding token and
// with 2.x's ("!", which CLIPTokenizer then also splits out of the text as
// a special token).
func TestTransformersGolden(t *testing.T) {
	toks, err := realTokenizers()
	require.NoError(t, err)
	require.Equal(t, 49408, toks["sd1"].VocabSize())
	n := 0
	for _, c := range goldenCases(t) {
		if c.Config == "ftfy" {
			continue // TestFtfyPathDifferences
		}
		n++
		tok := toks[c.Config]
		require.NotNil(t, tok, c.Config)
		if c.Tokens == nil {
			c.Tokens = []string{}
		}
		got := tok.Tokenize(c.Text)
		if got == nil {
			got = []string{}
		}
		require.Equal(t, c.Tokens, got, "%s tokens of %q", c.Config, c.Text)
		require.Equal(t, c.IDs, tok.Encode(c.Text), "%s ids of %q", c.Config, c.Text)
		padded, truncated := tok.EncodePadded(c.Text)
		require.Equal(t, c.Padded, padded, "%s padded ids of %q", c.Config, c.Text)
		require.Equal(t, len(c.IDs) > MaxLength, truncated, "%s truncation of %q", c.Config, c.Text)
	}
	require.Equal(t, 2*51, n)
}

// ftfyDiffers lists (by their first characters) the golden prompts whose
// ids differ between CLIPTokenizer's two paths, with and without ftfy; the
// package doc says why. For every other prompt Tokenizer gives the ftfy
// path's ids too.
var ftfyDiffers = []string{
	"一只猫",             // CJK ideographs are not set apart
	"東京の",             // the same
	"STRASSE ẞ ǅ",     // the digraphs ǅ ǈ are spelt out
	"a cat 🐱",         // ZERO WIDTH JOINER is kept
	"“a ‘quoted’",     // curly quotes are straightened
	"Tom &amp;",       // HTML entities are unescaped
	"ＡＢＣ",             // full-width forms become ASCII
	"ﬁne",             // ligatures are spelt out
	"cafÃ©",           // mojibake is repaired
	"zero\u200bwidth", // format characters and U+FFFD are kept
	"vt\x0bff",        // U+0085 becomes "…", U+000C a space
	"<|endof\u200b",   // U+200B is kept, so no end token
}

func TestFtfyPathDifferences(t *testing.T) {
	tok := realTokenizer(t)
	n := 0
	for _, c := range goldenCases(t) {
		if c.Config != "ftfy" {
			continue
		}
		n++
		want := slices.ContainsFunc(ftfyDiffers, func(p string) bool { return strings.HasPrefix(c.Text, p) })
		got := !slices.Equal(c.IDs, tok.Encode(c.Text))
		require.Equal(t, want, got, "does %q differ on the ftfy path", c.Text)
	}
	require.Equal(t, 51, n, "golden.json has the ftfy path's ids of every prompt")
}

// TestTransformersRandom checks the text ids of 2,000 random strings of
// tricky characters (tools/clip/golden.py's random_texts: control and
// format characters, combining marks, special lower-casing, special token
// pieces, any assigned code point) against CLIPTokenizer's.
func TestTransformersRandom(t *testing.T) {
	tok := realTokenizer(t)
	data, err := os.ReadFile(filepath.Join(realDir, "golden.json"))
	require.NoError(t, err)
	var g struct {
		Random []struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"random"`
	}
	require.NoError(t, json.Unmarshal(data, &g))
	require.Len(t, g.Random, 2000)
	bad := 0
	for _, c := range g.Random {
		got := tok.IDs(tok.Tokenize(c.Text))
		if !slices.Equal(c.IDs, got) && (len(c.IDs) > 0 || len(got) > 0) {
			bad++
			t.Errorf("%+q: ids %v, CLIPTokenizer %v", c.Text, got, c.IDs)
		}
		if bad > 10 {
			t.Fatal("too many differences")
		}
	}
}
