package clip_test

import (
	"fmt"
	"log"

	"github.com/ugo-diffusion/ugo/pipeline/clip"
)

// Build a tokenizer laid out like CLIP's (256 byte symbols, the same with
// </w>, one token per merge, then the special tokens) and encode a prompt.
// Real models load tokenizer/ with clip.Load.
func ExampleTokenizer_Encode() {
	merges := [][2]string{{"c", "a"}, {"ca", "t</w>"}, {"h", "e</w>"}}
	vocab := map[string]int{}
	for i, s := range clip.ByteSymbols() {
		vocab[s] = i
		vocab[s+clip.EndOfWord] = 256 + i
	}
	for r, m := range merges {
		vocab[m[0]+m[1]] = 512 + r
	}
	vocab[clip.StartToken] = len(vocab)
	vocab[clip.EndToken] = len(vocab)
	tok, err := clip.New(vocab, merges, clip.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Tokenize("A cat, the cat!"))
	fmt.Println(tok.Encode("a cat"))
	ids, truncated := tok.EncodePadded("a cat")
	fmt.Println(len(ids), ids[:5], truncated)
	// Output:
	// [a</w> cat</w> ,</w> t he</w> cat</w> !</w>]
	// [515 320 513 516]
	// 77 [515 320 513 516 516] false
}

// Load CLIP's real tokenizer files (as in a Stable Diffusion folder's
// tokenizer/ directory) and encode a prompt.
func ExampleLoad() {
	tok, err := clip.Load("../../testdata/clip")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Tokenize("A photo of a cat, it's 4K!"))
	fmt.Println(tok.Encode("a photo of a cat"))
	ids, truncated := tok.EncodePadded("a photo of a cat")
	fmt.Println(len(ids), ids[6:9], truncated)
	// Output:
	// [a</w> photo</w> of</w> a</w> cat</w> ,</w> it</w> 's</w> 4</w> k</w> !</w>]
	// [49406 320 1125 539 320 2368 49407]
	// 77 [49407 49407 49407] false
}
