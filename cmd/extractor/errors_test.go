package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestFailure(t *testing.T) {
	t.Run("every error type has a sysexits code and makes a line the operator reads back, without its cause", func(t *testing.T) {
		for _, errorType := range podcontract.ErrorTypes() {
			f := fail(errorType, errors.New("cause"), "something")
			if code := f.exitCode(); code < 64 || code > 78 {
				t.Errorf("%s exits %d", errorType, code)
			}
			gotType, gotMessage, ok := podcontract.ParseFailure(f.terminationMessage())
			if !ok || gotType != errorType || gotMessage != "something" {
				t.Errorf("%q reads as (%q, %q, %v)", f.terminationMessage(), gotType, gotMessage, ok)
			}
		}
	})
	t.Run("the operator classifies every exit code alone as it classifies the error type", func(t *testing.T) {
		for _, errorType := range podcontract.ErrorTypes() {
			code := fail(errorType, nil, "something").exitCode()
			fromCode, _ := podcontract.ErrorTypeOfExitCode(code)
			if podcontract.ClassOf(fromCode) != podcontract.ClassOf(errorType) {
				t.Errorf("%s exits %d, which the operator reads as %q, of another class", errorType, code, fromCode)
			}
		}
	})
	t.Run("a message with line breaks, control characters and bad UTF-8 becomes one clean line", func(t *testing.T) {
		f := fail(podcontract.CorruptedFile, nil, "first\r\n\x00\xff line")
		if got, want := f.terminationMessage(), "CorruptedFile: first \uFFFD line"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("a huge message is cut to fit what the operator keeps, on a rune boundary", func(t *testing.T) {
		line := fail(podcontract.CorruptedFile, nil, "%s", strings.Repeat("ü", 5000)).terminationMessage()
		errorType, _, ok := podcontract.ParseFailure(line)
		if len(line) > podcontract.MaxMessageBytes || !strings.HasSuffix(line, "…") || !ok || errorType != podcontract.CorruptedFile {
			t.Errorf("%d bytes: %q…", len(line), line[:40])
		}
	})
	t.Run("an error nobody classified is an InternalError", func(t *testing.T) {
		if f := asFailure(errors.New("oops")); f.errorType != podcontract.InternalError || f.exitCode() != 70 {
			t.Errorf("got %s exiting %d", f.terminationMessage(), f.exitCode())
		}
	})
	t.Run("a misspelt error type is reported as an InternalError that names it", func(t *testing.T) {
		f := fail("Corrupted File", nil, "bad xref")
		if got, want := f.terminationMessage(), `InternalError: error type "Corrupted File" is not`; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, ": bad xref") || f.exitCode() != 70 {
			t.Errorf("got %q exiting %d, want %q… exiting 70", got, f.exitCode(), want)
		}
	})
	t.Run("a wrapped failure keeps its type", func(t *testing.T) {
		wrapped := errors.Join(errors.New("context"), fail(podcontract.RateLimitExceeded, nil, "slow down"))
		if f := asFailure(wrapped); f.errorType != podcontract.RateLimitExceeded {
			t.Errorf("got %s", f.terminationMessage())
		}
	})
}
