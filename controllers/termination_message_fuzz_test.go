package controllers

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"k8s.io/utils/ptr"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// FuzzTerminationMessage feeds what hostile or broken extractors may write
// into the parsers and the classifier: none of it may panic, and nothing
// unbounded, invalid or unprintable may reach the job's status.
func FuzzTerminationMessage(f *testing.F) {
	for _, seed := range []string{
		"", "ConnectionError: refused", "CorruptedFile: x\nstack", `{"pages":1}`, "[1,2]", "null",
		"\xff\xfe", strings.Repeat("A", 70) + ": x", "Err:\x00\x1b[31m red", strings.Repeat(`{"a":`, 50),
		strings.Repeat("x\n", 3000), "RateLimitExceeded: 429\nRetry-After: 60", "ServiceUnavailable: x\nretry-after: 99999999999999999999",
	} {
		f.Add(seed, int32(1))
	}
	f.Fuzz(func(t *testing.T, raw string, exitCode int32) {
		errorType, message, ok := podcontract.ParseFailure(raw)
		if ok && !podcontract.ValidErrorType(errorType) {
			t.Fatalf("error type %q does not match the contract", errorType)
		}
		checkBoundedText(t, "parsed message", message)

		failure, _ := classify(attemptFailure{exitCode: ptr.To(exitCode), message: raw}, nil)
		checkBoundedText(t, "failure message", failure.Message)
		if len(failure.ErrorType) > 64 || failure.ErrorType == "" {
			t.Fatalf("error type %q is empty or longer than 64 bytes", failure.ErrorType)
		}

		result, err := parseResult(raw)
		if err == nil && result != nil {
			if len(result.Raw) > podcontract.MaxResultBytes || !utf8.Valid(result.Raw) {
				t.Fatalf("result of %d bytes kept", len(result.Raw))
			}
			var object map[string]any
			if json.Unmarshal(result.Raw, &object) != nil || object == nil {
				t.Fatalf("kept result %q is not a JSON object", result.Raw)
			}
		}
	})
}

func checkBoundedText(t *testing.T, what, text string) {
	t.Helper()
	if len(text) > podcontract.MaxMessageBytes {
		t.Fatalf("%s is %d bytes, more than %d", what, len(text), podcontract.MaxMessageBytes)
	}
	if !utf8.ValidString(text) {
		t.Fatalf("%s is not valid UTF-8: %q", what, text)
	}
	if strings.ContainsFunc(text, unicode.IsControl) {
		t.Fatalf("%s holds control characters: %q", what, text)
	}
}
