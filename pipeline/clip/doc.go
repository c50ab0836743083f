// Package clip implements the tokenizer of OpenAI's CLIP text encoder, the
// one Stable Diffusion 1.x and 2.x condition on, in pure Go.
//
// # What it reproduces
//
// Tokenizer follows transformers' CLIPTokenizer (and CLIPTokenizerFast,
// which agrees with it on ordinary text):
//
//   - Normalisation (Normalize): NUL, U+FFFD and control characters are
//     dropped, any whitespace becomes one space, CJK ideographs are set
//     apart, the text is put in Unicode NFC and lower-cased.
//   - Pre-tokenisation: CLIP's pattern splits the text into contractions
//     ('s 't 're 've 'm 'll 'd), runs of letters, single digits and runs of
//     other symbols; spaces separate pieces and are not tokens.
//   - Byte-level BPE: each piece's UTF-8 bytes are mapped to CLIP's 256 base
//     symbols (ByteSymbols, GPT-2's bytes_to_unicode), the last one marked
//     with "</w>", and merged pair by pair in the rank order of merges.txt.
//   - Special tokens: <|startoftext|> (49406 in CLIP's vocabulary) and
//     <|endoftext|> (49407) frame the ids; EncodePadded truncates to 75 text
//     tokens and pads to 77 with the pad token (<|endoftext|> for SD 1.x,
//     "!" for SD 2.x, read from special_tokens_map.json), which is what
//     diffusers' pipelines feed the text encoder.
//
// Load reads a model folder's tokenizer/ directory: vocab.json + merges.txt,
// or tokenizer.json.
//
// transformers uses the ftfy package instead of its own clean-up when ftfy
// is installed; ftfy also repairs mojibake and straightens curly quotes,
// which this package does not do. For text without such characters both
// give the same ids. Lower-casing follows Python's str.lower for every
// character except rare context-dependent rules beyond the final sigma.
//
// # Tests
//
// The tests build their vocabularies: transformers' own CLIP tokenizer test
// vocabulary ("lower newer" -> lo w er</w> n e w er</w>, ids 10 2 16 9 3 2 16),
// and a vocabulary laid out like CLIP's (512 byte symbols, 48894 merges,
// then the two special tokens) in which the published ids of
// "a photo of a cat", 49406 320 1125 539 320 2368 49407, come out of the
// layout: 320 is the byte symbol "a</w>", and a merge of rank r has id 512+r.
// The real 49408-token vocabulary is not shipped or downloaded.
package clip
