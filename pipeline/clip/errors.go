package clip

import (
	"fmt"
	"strings"
)

// FormatError reports tokenizer data that cannot be CLIP's: a malformed or
// inconsistent vocabulary, merge list, tokenizer.json or tokenizer
// configuration, whether read by Load or passed to New. Load wraps errors
// reading a file (a *fs.PathError, matching fs.ErrNotExist when the file is
// missing) without a FormatError.
type FormatError struct {
	// File is the path of the file at fault; empty for New's arguments.
	File string
	// Line is the 1-based line of merges.txt at fault, or 0.
	Line int
	// Item names what is wrong: a token, a merge, a JSON key.
	Item string
	// Reason says what is wrong with it.
	Reason string
}

// Error returns "clip: FILE:LINE: ITEM: REASON", without the parts that are
// empty.
func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString("clip: ")
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Item != "" {
		b.WriteString(e.Item)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// inFile returns err with File set to path when err is a *FormatError
// without a file.
func inFile(err error, path string) error {
	if fe, ok := err.(*FormatError); ok && fe.File == "" {
		c := *fe
		c.File = path
		return &c
	}
	return err
}
