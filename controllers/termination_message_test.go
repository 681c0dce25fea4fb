package controllers

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseErrorLine(t *testing.T) {
	long64 := "A" + strings.Repeat("b", 63)
	cases := []struct {
		name          string
		raw           string
		wantErrorType string
		wantMessage   string
		wantOK        bool
	}{
		{"a contract line gives type and message", "ConnectionError: refused", "ConnectionError", "refused", true},
		{"only the first line counts", "TimeoutError: slow\nat frame 1\nat frame 2", "TimeoutError", "slow", true},
		{"a CRLF line ending is dropped", "TimeoutError: slow\r\nmore", "TimeoutError", "slow", true},
		{"an empty message is no error type", "", "", "", false},
		{"a type without the space after the colon is not one", "ConnectionError:refused", "", "ConnectionError:refused", false},
		{"a type must start with a letter", "1Error: x", "", "1Error: x", false},
		{"a type of 64 characters is accepted", long64 + ": x", long64, "x", true},
		{"a type of 65 characters is refused", long64 + "c: x", "", long64 + "c: x", false},
		{"a type must be the start of the line", " ConnectionError: x", "", "ConnectionError: x", false},
		{"control characters become spaces", "IOError: a\x00b\x1bc", "IOError", "a b c", true},
		{"invalid UTF-8 is replaced", "IOError: a\xffb", "IOError", "a\uFFFDb", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errorType, message, ok := parseErrorLine(tc.raw)
			if errorType != tc.wantErrorType || message != tc.wantMessage || ok != tc.wantOK {
				t.Errorf("parseErrorLine(%q) = (%q, %q, %v), want (%q, %q, %v)", tc.raw, errorType, message, ok, tc.wantErrorType, tc.wantMessage, tc.wantOK)
			}
		})
	}
}

func TestHugeAndBrokenMessagesStayBounded(t *testing.T) {
	for name, raw := range map[string]string{
		"4 KiB of one line":         "ConnectionError: " + strings.Repeat("x", 4096),
		"many lines":                strings.Repeat("line\n", 10000),
		"invalid UTF-8 at the cut":  strings.Repeat("é", 600) + "\xff",
		"multi-byte runes at a cut": "IOError: " + strings.Repeat("日本", 400),
	} {
		t.Run(name, func(t *testing.T) {
			_, message, _ := parseErrorLine(raw)
			if len(message) > maxMessageBytes {
				t.Errorf("message is %d bytes, more than %d", len(message), maxMessageBytes)
			}
			if !utf8.ValidString(message) {
				t.Errorf("message is not valid UTF-8")
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		want    string
		wantErr bool
	}{
		{"an empty message is no result", "  \n", "", false},
		{"an object is kept, compacted", "{ \"pages\": 12,\n \"sha256\": \"ab\" }\n", `{"pages":12,"sha256":"ab"}`, false},
		{"an array is not a result", "[1,2]", "", true},
		{"a string is not a result", `"done"`, "", true},
		{"null is not a result", "null", "", true},
		{"broken JSON is not a result", `{"pages":`, "", true},
		{"invalid UTF-8 is not a result", "{\"a\":\"\xff\"}", "", true},
		{"more than 4 KiB is not a result", `{"a":"` + strings.Repeat("x", 4096) + `"}`, "", true},
		{"deep nesting is not a result", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40), "", true},
		{"brackets inside strings do not count as nesting", `{"a":"` + strings.Repeat("[", 100) + `"}`, `{"a":"` + strings.Repeat("[", 100) + `"}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseResult(tc.raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseResult error = %v, wantErr %v", err, tc.wantErr)
			}
			gotText := ""
			if got != nil {
				gotText = string(got.Raw)
			}
			if gotText != tc.want {
				t.Errorf("parseResult = %s, want %s", gotText, tc.want)
			}
		})
	}
}
