package podcontract

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageBytes bounds a failure's message as the operator keeps it in the
// job's status, and any other text it copies there from a Pod, so that a
// broken extractor cannot bloat the job object. FormatFailure keeps the whole
// first line within it, so the operator never has to cut a message.
const MaxMessageBytes = 1024

// failurePrefix is the "ErrorType: " that opens a failure's termination message.
var failurePrefix = regexp.MustCompile(`^(` + errorTypeSyntax + `): `)

// FormatFailure writes a failure's termination message: the line
// "ErrorType: message", then the lines its options add (WithRetryAfter),
// without a final line break. The message is made one clean line (valid
// UTF-8, control characters and runs of white space as one space) and cut so
// that the first line fits in MaxMessageBytes. It fails only if errorType is
// not ValidErrorType.
func FormatFailure(errorType, message string, options ...FailureOption) (string, error) {
	if !ValidErrorType(errorType) {
		return "", fmt.Errorf("error type %q is not a letter followed by at most 63 letters, digits or underscores", errorType)
	}
	lines := []string{errorType + ": " + OneLine(message, MaxMessageBytes-len(errorType)-len(": "))}
	for _, option := range options {
		option(&lines)
	}
	return strings.Join(lines, "\n"), nil
}

// ParseFailure reads the error type and the message from the first line of a
// failed extractor's termination message, as the operator does. Without an
// "ErrorType: " first line, ok is false and the message is the whole text.
// The message is Sanitize'd to MaxMessageBytes and trimmed either way.
func ParseFailure(raw string) (errorType, message string, ok bool) {
	firstLine, _, _ := strings.Cut(raw, "\n")
	firstLine = strings.TrimSuffix(firstLine, "\r")
	if m := failurePrefix.FindStringSubmatch(firstLine); m != nil {
		return m[1], Sanitize(strings.TrimSpace(firstLine[len(m[0]):]), MaxMessageBytes), true
	}
	return "", Sanitize(strings.TrimSpace(raw), MaxMessageBytes), false
}

// Sanitize makes untrusted text safe to store and print: valid UTF-8 (an
// invalid byte becomes U+FFFD), control characters, line breaks among them,
// replaced by spaces, and at most maxBytes long, cut on a rune boundary and
// marked with "…".
func Sanitize(s string, maxBytes int) string {
	return truncate(printable(s), maxBytes)
}

// OneLine is Sanitize with every run of white space made one space and none
// left at the ends: text fit to show on one line, such as an excerpt of a
// file in a failure's message.
func OneLine(s string, maxBytes int) string {
	return truncate(strings.Join(strings.Fields(printable(s)), " "), maxBytes)
}

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// truncate cuts s to at most n bytes without splitting a rune, marking the
// cut with an ellipsis where there is room for one.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	if n < len(ellipsis) {
		return cutAtRune(s, max(n, 0))
	}
	return cutAtRune(s, n-len(ellipsis)) + ellipsis
}

// cutAtRune is the longest prefix of s, n < len(s), of at most n bytes that
// ends on a rune boundary.
func cutAtRune(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
