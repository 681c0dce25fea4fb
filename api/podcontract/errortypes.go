package podcontract

import (
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Error types of the built-in table, which decides the class of a failure
// that no rule of the job matches.
const (
	ConnectionError    = "ConnectionError"
	TimeoutError       = "TimeoutError"
	ServiceUnavailable = "ServiceUnavailable"
	RateLimitExceeded  = "RateLimitExceeded"
	TemporaryFailure   = "TemporaryFailure"
	S3ConnectionError  = "S3ConnectionError"
	Werk24Timeout      = "Werk24Timeout"

	UnsupportedFormat    = "UnsupportedFormat"
	CorruptedFile        = "CorruptedFile"
	InvalidFileType      = "InvalidFileType"
	AuthenticationFailed = "AuthenticationFailed"
	PermissionDenied     = "PermissionDenied"
	FileTooLarge         = "FileTooLarge"
	// DestinationNotAllowed: the source, a redirect or the S3 endpoint led
	// to an address the extractor refuses to connect to (loopback,
	// link-local, private and other internal addresses), and the class's
	// EnvAllowedDestinations does not allow it. Permanent: the same URL
	// leads to the same place on every attempt.
	DestinationNotAllowed = "DestinationNotAllowed"
)

// Error types the reference extractor reports that are not in the built-in
// table, so they are retried like any unknown type unless a job's rules say
// otherwise.
const (
	// UsageError: bad flags, environment or options.
	UsageError = "UsageError"
	// SourceNotFound: the source does not exist (yet: a file that is still
	// being uploaded appears later, which is why it is retried).
	SourceNotFound = "SourceNotFound"
	// InternalError: a bug in the extractor.
	InternalError = "InternalError"
	// IOError: reading a local file failed.
	IOError = "IOError"
	// Interrupted: the extractor got SIGTERM or SIGINT, as when its Pod is deleted.
	Interrupted = "Interrupted"
	// UnexpectedResponse: the source answered in a way the extractor does not know.
	UnexpectedResponse = "UnexpectedResponse"
)

// Class says how the operator treats a failure of an error type when no rule
// of the job decides.
type Class string

const (
	// Retryable failures are retried after a growing backoff, up to the
	// job's maxRetries.
	Retryable Class = "Retryable"
	// Permanent failures fail the job at once.
	Permanent Class = "Permanent"
)

// The built-in table, retryable entries first: ClassOf matches them in this
// order.
var (
	retryableErrorTypes = []string{
		ConnectionError, TimeoutError, ServiceUnavailable, RateLimitExceeded,
		TemporaryFailure, S3ConnectionError, Werk24Timeout,
	}
	permanentErrorTypes = []string{
		UnsupportedFormat, CorruptedFile, InvalidFileType, AuthenticationFailed,
		PermissionDenied, FileTooLarge, DestinationNotAllowed,
	}
)

// ClassOf looks an error type up in the built-in table: an error type that
// contains a retryable entry (case-insensitively) is Retryable, else one that
// contains a permanent entry is Permanent, and any other is Retryable.
func ClassOf(errorType string) Class {
	if ErrorTypeMatches(errorType, retryableErrorTypes...) {
		return Retryable
	}
	if ErrorTypeMatches(errorType, permanentErrorTypes...) {
		return Permanent
	}
	return Retryable
}

// ErrorTypeMatches reports whether one of the patterns is a case-insensitive
// substring of errorType; an empty pattern matches nothing. The built-in
// table and the errorTypes of a job's rules match this way.
func ErrorTypeMatches(errorType string, patterns ...string) bool {
	lower := strings.ToLower(errorType)
	return slices.ContainsFunc(patterns, func(p string) bool {
		return p != "" && strings.Contains(lower, strings.ToLower(p))
	})
}

// BuiltinErrorTypes lists the built-in table's error types, retryable first.
func BuiltinErrorTypes() []string {
	return slices.Concat(retryableErrorTypes, permanentErrorTypes)
}

// ErrorTypes lists every error type this package names, sorted: the built-in
// table's and the reference extractor's.
func ErrorTypes() []string {
	return slices.Sorted(maps.Keys(exitCodes))
}

// errorTypeSyntax is what an error type looks like: a letter, then at most
// 63 letters, digits or underscores.
const errorTypeSyntax = `[A-Za-z][A-Za-z0-9_]{0,63}`

var errorTypePattern = regexp.MustCompile(`^` + errorTypeSyntax + `$`)

// ValidErrorType reports whether errorType can open a failure's termination
// message.
func ValidErrorType(errorType string) bool {
	return errorTypePattern.MatchString(errorType)
}
