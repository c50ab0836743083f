package clip

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestWordCache checks that remembered pre-tokens give the tokens BPE
// gives (on the real CLIP merges, for random words and their repeats), that
// the tokens handed out are copies, that at most maxCachedWords are kept,
// and that concurrent use is safe (run with -race).
func TestWordCache(t *testing.T) {
	toks, err := realTokenizers()
	require.NoError(t, err)
	tok := toks["sd1"]
	rapid.Check(t, func(rt *rapid.T) {
		words := rapid.SliceOfN(rapid.StringMatching(`[a-z]{1,12}`), 1, 6).Draw(rt, "words")
		text := strings.Join(words, " ")
		var want []string
		for _, w := range words {
			sym := []byte{}
			for i := 0; i < len(w); i++ {
				sym = append(sym, string(byteRunes[w[i]])...)
			}
			want = tok.bpe(string(append(sym, EndOfWord...)), want)
		}
		first := tok.Tokenize(text)
		if len(first) > 0 {
			first[0] = "changed by the caller"
		}
		require.Equal(rt, want, tok.Tokenize(text), "%q", text)
	})

	fresh := byteTokenizer(t, [2]string{"l", "l"})
	for i := range maxCachedWords + 100 {
		fresh.Tokenize("w" + strings.Repeat("l", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676%26)))
	}
	require.LessOrEqual(t, fresh.nWords.Load(), int64(maxCachedWords))
	require.Equal(t, []string{"w", "ll", "l</w>"}, fresh.Tokenize("wlll"))

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				text := strings.Repeat("hello ", 1+(g+i)%3) + "world"
				if got := tok.Tokenize(text); len(got) != 2+(g+i)%3 {
					t.Errorf("%q: %v", text, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
