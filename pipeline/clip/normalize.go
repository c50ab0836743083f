package clip

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Normalize applies CLIPTokenizer's text clean-up (transformers' path
// without ftfy, its BasicTokenizer with strip_accents=False and no
// punctuation splitting): NUL, U+FFFD, invalid UTF-8 and characters of the
// Unicode categories C* other than tab, newline and carriage return are
// dropped; tab, newline, carriage return and Zs spaces become spaces; CJK
// ideographs are set apart by spaces; the text is put in Unicode NFC, split
// on white space, each word lower-cased as Python's str.lower does, and the
// words joined by single spaces.
func Normalize(text string) string {
	var b strings.Builder
	b.Grow(len(text))
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

// isCJK reports the CJK ideograph blocks BasicTokenizer sets apart.
func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) || (r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// lower lower-cases a word as Python's str.lower does: the simple lower-case
// mapping, plus Unicode's two special rules for lower-casing: capital I with
// dot above becomes i + combining dot above, and a capital sigma in the
// Final_Sigma context (after a cased letter and not before one, skipping
// case-ignorable characters) becomes final sigma.
func lower(w string) string {
	if !strings.ContainsFunc(w, func(r rune) bool { return r >= 0x80 || ('A' <= r && r <= 'Z') }) {
		return w
	}
	rs := []rune(w)
	var b strings.Builder
	b.Grow(len(w) + 1)
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ':
			if finalSigma(rs, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && caseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !cased(rs[j])
}

// cased is Unicode's Cased property.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.In(r, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// caseIgnorable is Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk
// and the Word_Break classes MidLetter, MidNumLet and Single_Quote.
func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '\u00B7', '\u0387', '\u055F', '\u05F4', '\u2018', '\u2019', '\u2024',
		'\u2027', '\uFE13', '\uFE52', '\uFE55', '\uFF07', '\uFF0E', '\uFF1A':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
