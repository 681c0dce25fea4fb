package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// failure is an error that knows how it must be reported under the Pod
// contract. Everything that can go wrong ends up as one.
type failure struct {
	errorType string
	message   string
	cause     error
	// retryAfter is how long the service asked to wait before the next try
	// (HTTP's Retry-After); 0 when it did not say.
	retryAfter time.Duration
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

// exitCode is the process exit status for the failure: the Pod contract's
// code for its error type, from which the operator reaches the type's class
// even when the termination message is lost.
func (f *failure) exitCode() int {
	return podcontract.ExitCode(f.errorType)
}

// terminationMessage is what the operator parses: the "ErrorType: message"
// line, and the Retry-After hint line when the service asked for a wait.
func (f *failure) terminationMessage() string {
	message := f.message
	if f.cause != nil {
		message += ": " + f.cause.Error()
	}
	line, err := podcontract.FormatFailure(f.errorType, message, podcontract.WithRetryAfter(f.retryAfter))
	if err != nil {
		// Only a misspelt error type in this program gets here.
		line, _ = podcontract.FormatFailure(podcontract.InternalError, err.Error()+": "+message)
	}
	return line
}

// asFailure finds the failure in err's chain, or calls err an internal error:
// an error nobody classified is a bug in this program, not in the input.
func asFailure(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	return fail(podcontract.InternalError, err, "unexpected error")
}

// oneLine makes untrusted text printable on one line of at most n bytes.
func oneLine(s string, n int) string {
	return podcontract.OneLine(s, n)
}

// quoteExcerpt shows a piece of untrusted input in a message, short and safe.
func quoteExcerpt(b []byte) string {
	return fmt.Sprintf("%q", oneLine(string(b), 40))
}
