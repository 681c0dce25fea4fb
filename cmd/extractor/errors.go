package main

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error types this extractor reports. The operator matches them against its
// built-in table by case-insensitive substring; the ones not in that table
// (UsageError, SourceNotFound, UnexpectedResponse, IOError, Interrupted,
// InternalError) are retried like any unknown type unless a job's rules say
// otherwise.
const (
	typeUsage              = "UsageError"
	typeUnsupportedFormat  = "UnsupportedFormat"
	typeInvalidFileType    = "InvalidFileType"
	typeCorruptedFile      = "CorruptedFile"
	typeFileTooLarge       = "FileTooLarge"
	typeSourceNotFound     = "SourceNotFound"
	typeServiceUnavailable = "ServiceUnavailable"
	typeInternal           = "InternalError"
	typeIO                 = "IOError"
	typeConnection         = "ConnectionError"
	typeTimeout            = "TimeoutError"
	typeRateLimit          = "RateLimitExceeded"
	typeInterrupted        = "Interrupted"
	typeUnexpectedResponse = "UnexpectedResponse"
	typeAuthentication     = "AuthenticationFailed"
	typePermission         = "PermissionDenied"
)

// exitCodes gives every error type exactly one sysexits.h code, chosen so
// that the operator, reading a code alone as sysexits.h (65 CorruptedFile, 69
// ServiceUnavailable, 75 TemporaryFailure, 77 PermissionDenied, others
// unknown), arrives at the same class as from the type: the class survives
// when the termination message is lost.
var exitCodes = map[string]int{
	typeUsage:              64, // EX_USAGE
	typeUnsupportedFormat:  65, // EX_DATAERR
	typeInvalidFileType:    65, // EX_DATAERR
	typeCorruptedFile:      65, // EX_DATAERR
	typeFileTooLarge:       65, // EX_DATAERR
	typeSourceNotFound:     66, // EX_NOINPUT
	typeServiceUnavailable: 69, // EX_UNAVAILABLE
	typeInternal:           70, // EX_SOFTWARE
	typeIO:                 74, // EX_IOERR
	typeConnection:         75, // EX_TEMPFAIL
	typeTimeout:            75, // EX_TEMPFAIL
	typeRateLimit:          75, // EX_TEMPFAIL
	typeInterrupted:        75, // EX_TEMPFAIL
	typeUnexpectedResponse: 76, // EX_PROTOCOL
	typeAuthentication:     77, // EX_NOPERM
	typePermission:         77, // EX_NOPERM
}

// failure is an error that knows how it must be reported under the Pod
// contract. Everything that can go wrong ends up as one.
type failure struct {
	errorType string
	message   string
	cause     error
}

// fail builds a failure; cause may be nil.
func fail(errorType string, cause error, format string, args ...any) *failure {
	return &failure{errorType: errorType, message: fmt.Sprintf(format, args...), cause: cause}
}

func (f *failure) Error() string {
	if f.cause == nil {
		return f.errorType + ": " + f.message
	}
	return f.errorType + ": " + f.message + ": " + f.cause.Error()
}

func (f *failure) Unwrap() error { return f.cause }

// exitCode is the process exit status for the failure.
func (f *failure) exitCode() int {
	if code, ok := exitCodes[f.errorType]; ok {
		return code
	}
	return exitCodes[typeInternal]
}

// maxMessageBytes keeps the first line within what the operator copies into
// status (1 KiB), so the operator never has to cut it.
const maxMessageBytes = 1000

// terminationLine is the "ErrorType: message" line the operator parses. The
// message is flattened to one line because only the first line counts.
func (f *failure) terminationLine() string {
	message := f.message
	if f.cause != nil {
		message += ": " + f.cause.Error()
	}
	return f.errorType + ": " + oneLine(message, maxMessageBytes-len(f.errorType)-2)
}

// asFailure finds the failure in err's chain, or calls err an internal error:
// an error nobody classified is a bug in this program, not in the input.
func asFailure(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	return fail(typeInternal, err, "unexpected error")
}

// oneLine makes text printable on one line of at most n bytes: valid UTF-8,
// control characters as spaces, runs of spaces collapsed.
func oneLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
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

// quoteExcerpt shows a piece of untrusted input in a message, short and safe.
func quoteExcerpt(b []byte) string {
	return fmt.Sprintf("%q", oneLine(string(b), 40))
}
