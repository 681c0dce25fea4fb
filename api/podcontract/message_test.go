package podcontract

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseFailure(t *testing.T) {
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
		{"a type with an empty message is still a type", "CorruptedFile: ", "CorruptedFile", "", true},
		{"without a type the whole text is the message, on one line", "Traceback:\n  line 1", "", "Traceback:   line 1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errorType, message, ok := ParseFailure(tc.raw)
			if errorType != tc.wantErrorType || message != tc.wantMessage || ok != tc.wantOK {
				t.Errorf("ParseFailure(%q) = (%q, %q, %v), want (%q, %q, %v)", tc.raw, errorType, message, ok, tc.wantErrorType, tc.wantMessage, tc.wantOK)
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
			_, message, _ := ParseFailure(raw)
			if len(message) > MaxMessageBytes {
				t.Errorf("message is %d bytes, more than %d", len(message), MaxMessageBytes)
			}
			if !utf8.ValidString(message) {
				t.Errorf("message is not valid UTF-8")
			}
		})
	}
}

func TestFormatFailure(t *testing.T) {
	cases := []struct {
		name      string
		errorType string
		message   string
		want      string
	}{
		{"a type and a message make one line", CorruptedFile, "no trailer", "CorruptedFile: no trailer"},
		{"line breaks, control characters and bad UTF-8 become single spaces", CorruptedFile, "first\r\n\x00\xff line: second\nline",
			"CorruptedFile: first \uFFFD line: second line"},
		{"white space around the message is dropped", TimeoutError, "\t slow \n", "TimeoutError: slow"},
		{"an empty message leaves the type alone", InternalError, "", "InternalError: "},
		{"a huge message is cut on a rune boundary so that the line fits", CorruptedFile, strings.Repeat("ü", 5000),
			"CorruptedFile: " + strings.Repeat("ü", (MaxMessageBytes-len("CorruptedFile: ")-len("…"))/2) + "…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FormatFailure(tc.errorType, tc.message)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("FormatFailure(%q, %q) = %q, want %q", tc.errorType, tc.message, got, tc.want)
			}
			if len(got) > MaxMessageBytes {
				t.Errorf("the line is %d bytes, more than %d", len(got), MaxMessageBytes)
			}
		})
	}
}

func TestFormatFailureRefusesWhatParseFailureWouldNotRead(t *testing.T) {
	for _, errorType := range []string{"", "Bad Type", "1Error", "Error:", "É", "A" + strings.Repeat("b", 64)} {
		if line, err := FormatFailure(errorType, "x"); err == nil {
			t.Errorf("FormatFailure(%q) = %q, want an error", errorType, line)
		}
	}
}

func TestParseFailureReadsWhatFormatFailureWrites(t *testing.T) {
	for _, errorType := range ErrorTypes() {
		line, err := FormatFailure(errorType, "a\nb "+strings.Repeat("x", 2000))
		if err != nil {
			t.Fatal(err)
		}
		gotType, gotMessage, ok := ParseFailure(line + "\nstack trace")
		if !ok || gotType != errorType || line != errorType+": "+gotMessage {
			t.Errorf("ParseFailure(%q) = (%q, %q, %v)", line, gotType, gotMessage, ok)
		}
	}
}

func TestSanitizeAndOneLine(t *testing.T) {
	cases := []struct {
		name     string
		clean    func(string, int) string
		text     string
		maxBytes int
		want     string
	}{
		{"text that fits is kept", Sanitize, "plain text", 100, "plain text"},
		{"control characters become spaces, one each", Sanitize, "a\x00\tb\n\nc\u0085d", 100, "a  b  c d"},
		{"invalid UTF-8 becomes U+FFFD", Sanitize, "a\xff\xfeb", 100, "a\uFFFDb"},
		{"a cut is marked with an ellipsis", Sanitize, "abcdefghij", 8, "abcde…"},
		{"a cut never splits a rune", Sanitize, "aéééé", 7, "aé…"},
		{"without room for the ellipsis the cut is bare", Sanitize, "abcdef", 2, "ab"},
		{"without room for a whole rune nothing is left", Sanitize, "éa", 1, ""},
		{"a limit of zero leaves nothing", Sanitize, "abc", 0, ""},
		{"on one line, runs of white space and control characters become one space", OneLine, "a \t\n\x00 b\r\nc", 100, "a b c"},
		{"on one line, no space is left at the ends", OneLine, "\n  a  \x00", 100, "a"},
		{"on one line, invalid UTF-8 becomes U+FFFD", OneLine, "a \xff b", 100, "a \uFFFD b"},
		{"on one line, the cut comes after the collapse", OneLine, "a    b    c    d", 6, "a b…"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.clean(tc.text, tc.maxBytes)
			if got != tc.want {
				t.Errorf("got %q from %q cut to %d bytes, want %q", got, tc.text, tc.maxBytes, tc.want)
			}
			if len(got) > tc.maxBytes || !utf8.ValidString(got) {
				t.Errorf("got %q from %q cut to %d bytes: too long or not UTF-8", got, tc.text, tc.maxBytes)
			}
		})
	}
}
