package podcontract

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzFailureRoundTrip checks that the writer and the reader of failures
// agree on anything an extractor may pass: a valid error type comes back as
// it was, in one printable line within MaxMessageBytes, and an invalid one is
// refused rather than written so that the operator would misread it.
func FuzzFailureRoundTrip(f *testing.F) {
	for _, seed := range [][2]string{
		{CorruptedFile, "no trailer"}, {"", "x"}, {"Bad Type", "x"}, {"A" + strings.Repeat("b", 64), "x"},
		{TimeoutError, "a\nb\r\nc"}, {IOError, "\x00\x1b[31m red \xff"}, {InternalError, strings.Repeat("日本", 1000)},
		{"X", "Y: z"}, {ConnectionError, ""}, {RateLimitExceeded, "x\nRetry-After: 60"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, errorType, message string) {
		line, err := FormatFailure(errorType, message)
		if !ValidErrorType(errorType) {
			if err == nil {
				t.Fatalf("FormatFailure(%q) = %q, want an error", errorType, line)
			}
			return
		}
		if err != nil {
			t.Fatalf("FormatFailure(%q): %v", errorType, err)
		}
		if len(line) > MaxMessageBytes || !utf8.ValidString(line) || strings.ContainsFunc(line, unicode.IsControl) {
			t.Fatalf("line %q is longer than %d bytes, invalid UTF-8 or holds control characters", line, MaxMessageBytes)
		}
		gotType, gotMessage, ok := ParseFailure(line)
		if !ok || gotType != errorType || line != errorType+": "+gotMessage {
			t.Fatalf("ParseFailure(%q) = (%q, %q, %v)", line, gotType, gotMessage, ok)
		}
		// Whatever the message, no hint can be smuggled into it.
		if wait, err := ParseRetryAfter(line); wait != 0 || err != nil {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v; want no hint", line, wait, err)
		}
	})
}
