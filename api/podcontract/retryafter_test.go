package podcontract

import (
	"strings"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	cases := []struct {
		name    string
		raw     string
		want    time.Duration
		wantErr string // a part of the error, "" for none
	}{
		{"whole seconds are read", "RateLimitExceeded: slow down\nRetry-After: 60", time.Minute, ""},
		{"a Go duration is read", "RateLimitExceeded: slow down\nRetry-After: 1m30s", 90 * time.Second, ""},
		{"the field name is matched without regard to case, with spaces around", "ServiceUnavailable: 503\r\n  retry-after:   7  \r\n", 7 * time.Second, ""},
		{"the hint may come on the fifth line", "ServiceUnavailable: 503\na\nb\nc\nRetry-After: 5", 5 * time.Second, ""},
		{"a hint after the fifth line is not read", "ServiceUnavailable: 503\na\nb\nc\nd\nRetry-After: 5", 0, ""},
		{"the first hint counts", "ServiceUnavailable: 503\nRetry-After: 5\nRetry-After: 500", 5 * time.Second, ""},
		{"a message without a hint has none", "ConnectionError: refused\nstack trace", 0, ""},
		{"a hint on the first line is no failure line, so no hint", "Retry-After: 60", 0, ""},
		{"without a failure line, as in a log tail, a hint is not trusted", "2026-12-01 log line\nRetry-After: 60", 0, ""},
		{"zero asks for no wait", "RateLimitExceeded: x\nRetry-After: 0", 0, ""},
		{"years are read as they are, for the operator to cap", "RateLimitExceeded: x\nRetry-After: 315360000", 315360000 * time.Second, ""},
		{"a negative number is refused", "RateLimitExceeded: x\nRetry-After: -60", 0, "negative"},
		{"a negative duration is refused", "RateLimitExceeded: x\nRetry-After: -1m", 0, "negative"},
		{"garbage is refused", "RateLimitExceeded: x\nRetry-After: soon", 0, `"soon" is not`},
		{"an empty value is refused", "RateLimitExceeded: x\nRetry-After:", 0, "is not"},
		{"an HTTP date is refused: the extractor turns it into seconds", "RateLimitExceeded: x\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT", 0, "is not"},
		{"seconds beyond a time.Duration are refused", "RateLimitExceeded: x\nRetry-After: 9999999999999", 0, "out of range"},
		{"a number beyond int64 is refused", "RateLimitExceeded: x\nRetry-After: 99999999999999999999", 0, "is not"},
		{"a duration beyond a time.Duration is refused", "RateLimitExceeded: x\nRetry-After: 3000000h", 0, "is not"},
		{"control characters in a refused value are not repeated", "RateLimitExceeded: x\nRetry-After: 1\x1b[31m", 0, `"1 [31m" is not`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRetryAfter(tc.raw)
			if got != tc.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.raw, got, tc.want)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("ParseRetryAfter(%q): unexpected error %v", tc.raw, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("ParseRetryAfter(%q) error = %v, want one with %q", tc.raw, err, tc.wantErr)
			}
		})
	}
}

func TestFormatFailureWithRetryAfter(t *testing.T) {
	cases := []struct {
		name string
		wait time.Duration
		want string
	}{
		{"whole seconds are written as they are", time.Minute, "RateLimitExceeded: slow down\nRetry-After: 60"},
		{"a fraction of a second is rounded up, never down", 1500 * time.Millisecond, "RateLimitExceeded: slow down\nRetry-After: 2"},
		{"no wait writes no hint", 0, "RateLimitExceeded: slow down"},
		{"a negative wait writes no hint", -time.Second, "RateLimitExceeded: slow down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FormatFailure(RateLimitExceeded, "slow down", WithRetryAfter(tc.wait))
			if err != nil || got != tc.want {
				t.Errorf("FormatFailure(WithRetryAfter(%v)) = %q, %v; want %q", tc.wait, got, err, tc.want)
			}
			if wait, err := ParseRetryAfter(got); err != nil || wait < tc.wait {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want at least %v", got, wait, err, tc.wait)
			}
			if errorType, message, ok := ParseFailure(got); !ok || errorType != RateLimitExceeded || message != "slow down" {
				t.Errorf("ParseFailure(%q) = (%q, %q, %v): the hint changed the failure line", got, errorType, message, ok)
			}
		})
	}
}
