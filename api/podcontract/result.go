package podcontract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

const (
	// MaxResultBytes is the largest success result the operator keeps, as
	// status.result of the job.
	MaxResultBytes = 4096
	// MaxResultDepth is the deepest nesting of objects and arrays in a result
	// the operator keeps, well inside what the API server decodes.
	MaxResultDepth = 32
)

var errResultNotObject = errors.New("the termination message is not a JSON object")

// ParseResult checks a successful extractor's termination message as the
// operator does, and returns it compacted. A result is a JSON object of at
// most MaxResultBytes (before compaction) in valid UTF-8, nested at most
// MaxResultDepth deep. An empty or all-blank message is no result and no
// error: nil, nil.
func ParseResult(raw string) (json.RawMessage, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	if len(raw) > MaxResultBytes {
		return nil, fmt.Errorf("the result is %d bytes, more than the %d allowed", len(raw), MaxResultBytes)
	}
	if !utf8.ValidString(raw) {
		return nil, errors.New("the result is not valid UTF-8")
	}
	var object map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &object); err != nil || object == nil {
		return nil, errResultNotObject
	}
	if jsonDepth(raw) > MaxResultDepth {
		return nil, fmt.Errorf("the result nests deeper than %d levels", MaxResultDepth)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(raw)); err != nil {
		return nil, errResultNotObject
	}
	return compact.Bytes(), nil
}

// MarshalResult encodes v as a success's termination message: JSON without
// HTML escaping (which would only lengthen names taken from files), refused
// unless ParseResult would keep it as it is.
func MarshalResult(v any) (json.RawMessage, error) {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(v); err != nil {
		return nil, fmt.Errorf("encoding the result: %w", err)
	}
	return ParseResult(out.String())
}

// jsonDepth is the deepest nesting of objects and arrays in valid JSON. The
// decoder of encoding/json has no depth limit to set, and decoding to count
// would allocate the whole document; a scan of the bytes needs neither.
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
