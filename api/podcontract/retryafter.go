package podcontract

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// RetryAfterLines is how many lines at the start of a failure's termination
// message the operator looks through for the Retry-After hint: the
// "ErrorType: message" line and the four after it. A hint further down, in a
// stack trace say, is not read.
const RetryAfterLines = 5

// retryAfterField opens the hint's line; it is matched without regard to case,
// as HTTP matches its header names.
const retryAfterField = "retry-after:"

// A FailureOption adds a line to the termination message FormatFailure writes.
type FailureOption func(*[]string)

// WithRetryAfter adds the hint "Retry-After: <seconds>" after the
// "ErrorType: message" line: the service the extractor talks to asked it to
// wait that long before it tries again. The seconds are rounded up, so the
// operator never reads a shorter wait than the one asked for. A wait of zero
// or less adds nothing: it asks for no wait.
func WithRetryAfter(wait time.Duration) FailureOption {
	return func(lines *[]string) {
		if wait <= 0 {
			return
		}
		seconds := int64(wait / time.Second)
		if wait%time.Second != 0 {
			seconds++
		}
		*lines = append(*lines, "Retry-After: "+strconv.FormatInt(seconds, 10))
	}
}

// ParseRetryAfter reads the Retry-After hint of a failed extractor's
// termination message: a line "Retry-After: <value>" among its first
// RetryAfterLines lines, after the "ErrorType: message" line, where the value
// is whole seconds ("60") or a Go duration ("90s", "1m30s"). The first such
// line counts.
//
// It returns 0 and no error when the message has no hint, when the value is
// 0 (the service asked for no wait), or when the first line is not an
// "ErrorType: message" line (the text may then be the tail of the
// extractor's logs, which the extractor did not write as a hint). A value
// that is not a number of seconds nor a Go duration, is negative, or does not
// fit in a time.Duration (about 292 years) is an error: the caller must
// ignore it, never trust a part of it.
func ParseRetryAfter(raw string) (time.Duration, error) {
	if _, _, ok := ParseFailure(raw); !ok {
		return 0, nil
	}
	lines := strings.SplitN(raw, "\n", RetryAfterLines+1)
	for _, line := range lines[1:min(len(lines), RetryAfterLines)] {
		line = strings.TrimSpace(line)
		if len(line) < len(retryAfterField) || !strings.EqualFold(line[:len(retryAfterField)], retryAfterField) {
			continue
		}
		return parseRetryAfterValue(strings.TrimSpace(line[len(retryAfterField):]))
	}
	return 0, nil
}

// parseRetryAfterValue reads a hint's value. Its errors quote the value made
// printable, never the raw text.
func parseRetryAfterValue(value string) (time.Duration, error) {
	shown := OneLine(value, 64)
	wait, err := time.ParseDuration(value)
	if seconds, intErr := strconv.ParseInt(value, 10, 64); intErr == nil {
		if limit := int64(math.MaxInt64 / time.Second); seconds > limit || seconds < -limit {
			return 0, fmt.Errorf("the Retry-After hint %q is out of range", shown)
		}
		wait, err = time.Duration(seconds)*time.Second, nil
	}
	switch {
	case err != nil:
		// time.ParseDuration also refuses what overflows a time.Duration.
		return 0, fmt.Errorf("the Retry-After hint %q is not a number of seconds nor a Go duration", shown)
	case wait < 0:
		return 0, fmt.Errorf("the Retry-After hint %q is negative", shown)
	}
	return wait, nil
}
