package controllers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
)

const (
	// maxMessageBytes bounds any text the operator copies from a Pod into
	// status, so a broken extractor cannot bloat the job object.
	maxMessageBytes = 1024
	// maxResultBytes is the largest success result the operator keeps.
	maxResultBytes = 4096
)

// errorTypePrefix is the Pod contract's "ErrorType: message" first line.
var errorTypePrefix = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]{0,63}): `)

// parseErrorLine reads the error type and message from an extractor's
// termination message. Without a contract-conforming first line it returns
// ok=false and the cleaned text as the message.
func parseErrorLine(raw string) (errorType, message string, ok bool) {
	firstLine, _, _ := strings.Cut(raw, "\n")
	firstLine = strings.TrimSuffix(firstLine, "\r")
	if m := errorTypePrefix.FindStringSubmatch(firstLine); m != nil {
		return m[1], cleanText(strings.TrimSpace(firstLine[len(m[0]):])), true
	}
	return "", cleanText(strings.TrimSpace(raw)), false
}

// cleanText makes untrusted text safe to store and print: valid UTF-8,
// control characters replaced by spaces, and at most maxMessageBytes long.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return truncateUTF8(s, maxMessageBytes)
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune, marking
// the cut with an ellipsis.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// maxResultDepth keeps results well inside what the API server decodes.
const maxResultDepth = 32

// jsonDepth is the deepest nesting of objects and arrays in valid JSON.
func jsonDepth(valid string) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for i := 0; i < len(valid); i++ {
		c := valid[i]
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

var errResultNotObject = errors.New("the termination message is not a JSON object")

// parseResult reads a successful extractor's summary: a JSON object of at most
// maxResultBytes. An empty message is no result and no error.
func parseResult(raw string) (*runtime.RawExtension, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	if len(raw) > maxResultBytes {
		return nil, fmt.Errorf("the result is %d bytes, more than the %d allowed", len(raw), maxResultBytes)
	}
	if !utf8.ValidString(raw) {
		return nil, errors.New("the result is not valid UTF-8")
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &object); err != nil || object == nil {
		return nil, errResultNotObject
	}
	if jsonDepth(raw) > maxResultDepth {
		return nil, fmt.Errorf("the result nests deeper than %d levels", maxResultDepth)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(raw)); err != nil {
		return nil, errResultNotObject
	}
	return &runtime.RawExtension{Raw: compact.Bytes()}, nil
}
