package main

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The operator's side of the Pod contract, as issue 2 states it: its built-in
// table, matched by case-insensitive substring with retryable types first and
// unknown types retryable, and its reading of an exit code without a type.
var (
	operatorRetryable = []string{"ConnectionError", "TimeoutError", "ServiceUnavailable", "RateLimitExceeded",
		"TemporaryFailure", "S3ConnectionError", "Werk24Timeout"}
	operatorPermanent = []string{"UnsupportedFormat", "CorruptedFile", "InvalidFileType", "AuthenticationFailed",
		"PermissionDenied", "FileTooLarge"}
	operatorSysexits = map[int]string{65: "CorruptedFile", 68: "ConnectionError", 69: "ServiceUnavailable",
		75: "TemporaryFailure", 77: "PermissionDenied"}
)

func operatorIsPermanent(errorType string) bool {
	matches := func(pattern string) bool {
		return strings.Contains(strings.ToLower(errorType), strings.ToLower(pattern))
	}
	return !slices.ContainsFunc(operatorRetryable, matches) && slices.ContainsFunc(operatorPermanent, matches)
}

func TestFailure(t *testing.T) {
	contractLine := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}: [^\n]*$`)
	t.Run("every error type has a sysexits code and makes a contract line", func(t *testing.T) {
		for errorType, code := range exitCodes {
			f := fail(errorType, nil, "something")
			if f.exitCode() != code || code < 64 || code > 78 {
				t.Errorf("%s exits %d", errorType, f.exitCode())
			}
			if !contractLine.MatchString(f.terminationLine()) {
				t.Errorf("%q breaks the contract", f.terminationLine())
			}
		}
	})
	t.Run("the operator classifies every exit code alone as it classifies the error type", func(t *testing.T) {
		for errorType, code := range exitCodes {
			fromCode, known := operatorSysexits[code]
			if !known {
				fromCode = "Unknown"
			}
			if operatorIsPermanent(errorType) != operatorIsPermanent(fromCode) {
				t.Errorf("%s exits %d, which the operator reads as %s, of another class", errorType, code, fromCode)
			}
		}
	})
	t.Run("a message with line breaks, control characters and bad UTF-8 becomes one clean line", func(t *testing.T) {
		f := fail(typeCorruptedFile, errors.New("second\nline"), "first\r\n\x00\xff line")
		if got, want := f.terminationLine(), "CorruptedFile: first \uFFFD line: second line"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("a huge message is cut to fit what the operator keeps, on a rune boundary", func(t *testing.T) {
		line := fail(typeCorruptedFile, nil, "%s", strings.Repeat("ü", 5000)).terminationLine()
		if len(line) > maxMessageBytes || !strings.HasSuffix(line, "…") || !contractLine.MatchString(line) {
			t.Errorf("%d bytes: %q…", len(line), line[:40])
		}
	})
	t.Run("an error nobody classified is an InternalError", func(t *testing.T) {
		if f := asFailure(errors.New("oops")); f.errorType != typeInternal || f.exitCode() != 70 {
			t.Errorf("got %s exiting %d", f.terminationLine(), f.exitCode())
		}
	})
	t.Run("a wrapped failure keeps its type", func(t *testing.T) {
		wrapped := errors.Join(errors.New("context"), fail(typeRateLimit, nil, "slow down"))
		if f := asFailure(wrapped); f.errorType != typeRateLimit {
			t.Errorf("got %s", f.terminationLine())
		}
	})
}
