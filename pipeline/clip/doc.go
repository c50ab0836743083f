// Package clip implements the tokenizer of OpenAI's CLIP text encoder, the
// one Stable Diffusion 1.x and 2.x condition on, in pure Go.
//
// # What it reproduces
//
// Tokenizer gives the tokens and ids of transformers' CLIPTokenizer (the
// class diffusers' Stable Diffusion pipelines load) as it runs without the
// optional ftfy package, which neither transformers nor diffusers installs:
//
//   - Special tokens: the strings of the start, end, pad and unknown tokens
//     are split out of the text exactly as written (with Stable Diffusion
//     2's pad token "!", every "!" in a prompt becomes token "!", id 0, as
//     in transformers). "<|startoftext|>" and "<|endoftext|>" in any other
//     case are also those tokens where CLIP's pattern starts a pre-token
//     ("x<|ENDOFTEXT|>" but not "!<|ENDOFTEXT|>", where the pattern's
//     punctuation run takes "!<|").
//   - Normalisation (Normalize): NUL, U+FFFD, invalid UTF-8 and characters
//     of the categories C* other than tab, newline and carriage return are
//     dropped, white space becomes one space, CJK ideographs are set apart,
//     the text is put in Unicode NFC and lower-cased as Python's str.lower
//     does (dotted capital I and final sigma included).
//   - Pre-tokenisation: CLIP's pattern splits the text into contractions
//     ('s 't 're 've 'm 'll 'd, matched case-insensitively as Python's regex
//     module does, so "'ſ" is one), runs of letters, single digits and runs
//     of other symbols; spaces separate pieces and are not tokens.
//   - Byte-level BPE: each piece's UTF-8 bytes are mapped to CLIP's 256 base
//     symbols (ByteSymbols, GPT-2's bytes_to_unicode), the last one marked
//     with "</w>", and merged pair by pair in the rank order of merges.txt,
//     in O(n log n) for a piece of n bytes.
//   - Framing: <|startoftext|> (49406 in CLIP's vocabulary) and
//     <|endoftext|> (49407) frame the ids; EncodePadded truncates to 75 text
//     tokens and pads to 77 with the pad token (<|endoftext|> for SD 1.x,
//     "!" for SD 2.x, read from special_tokens_map.json), which is what
//     diffusers' pipelines feed the text encoder.
//
// Load reads a model folder's tokenizer/ directory: vocab.json + merges.txt,
// or tokenizer.json, and the added tokens (textual-inversion tokens,
// additional special tokens) of tokenizer_config.json, added_tokens.json
// or tokenizer.json, which are split out of the text like the special
// tokens. A folder with only tokenizer.json is tokenized the
// CLIPTokenizer way as well; CLIPTokenizerFast (the tokenizers library, not
// run here) has no counterpart of the clean-up and CJK spacing above, so
// its ids can differ on such text.
//
// # Where it differs from CLIPTokenizer with ftfy, and from openai/CLIP
//
// With ftfy installed, transformers' CLIPTokenizer replaces the
// normalisation above by ftfy.fix_text, white-space clean-up and
// lower-casing (openai/CLIP's own tokenizer also unescapes HTML twice).
// This package does not. On the 51 prompts of the golden tests the two
// paths of CLIPTokenizer (ftfy 6.3.1) give different ids for 12
// (TestFtfyPathDifferences): where fix_text changes the text (it
// straightens curly quotes “ ” ‘ ’, unescapes HTML entities such as &amp;,
// makes full-width forms such as "ＡＢＣ" half-width, spells out ligatures
// and digraphs such as "ﬁ" and "ǅ", repairs mojibake such as "cafÃ©", turns
// U+0085 into "…"), and where the ftfy path lacks the clean-up above (it
// does not set CJK ideographs apart, and keeps format characters such as
// U+200B, U+00AD, U+200F and the zero-width joiner of emoji sequences, and
// U+FFFD, all of which this package drops). On the other 39 both paths give
// the same ids.
//
// Unicode tables are Go's (Unicode 15), Python 3.11's are Unicode 14:
// characters assigned in 15 may be classified differently.
//
// # Errors
//
// New and Load refuse tokenizer data that cannot be CLIP's with a
// *FormatError naming the file, line and item: ids that are not 0..n-1
// each once (negative, repeated or out-of-range ids, added tokens that
// leave a gap or contradict the vocabulary), merges that are not two
// non-empty symbols or that repeat, files that are not UTF-8, a
// tokenizer.json that is not a CLIP BPE model, special tokens missing from
// the vocabulary, malformed special_tokens_map.json, tokenizer_config.json
// or added_tokens.json values, files larger than MaxFileSize. A missing
// or unreadable file gives the *fs.PathError of the read. Encode,
// EncodePadded and Tokenize accept any string.
//
// # Tests
//
// testdata/clip holds CLIP's real vocabulary and merges (derived from
// openai/CLIP's BPE file by tools/clip/vocab.py) and golden.json, the
// tokens and ids transformers' own CLIPTokenizer code gives for 51 prompts
// (tools/clip/golden.py): punctuation, numbers, contractions, many scripts,
// emoji, control characters, special tokens in every case, long prompts
// truncated at 77, with SD 1.x's and SD 2.x's padding; and the ids of 2,000
// random strings of tricky characters. Fuzz targets cover
// every file parser and Encode (make fuzz).
package clip
