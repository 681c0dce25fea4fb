package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// failure is an error that knows how it must be reported under the Pod
// contract. Everything that can go wrong ends up as one.
//
// Its message is all that is reported: the cause is kept for errors.Is and
// errors.As, never shown, because errors of the network, of TLS and of the
// parsers quote what the other side sent (net/http quotes a malformed
// answer, pdfcpu the objects it could not parse), and the termination
// message becomes the job's status, which the job's author reads. Whoever
// builds a failure writes into its message only what the program itself
// knows, the job's own input, and facts about what came back (a status, a
// length, the type it looks like), never its content.
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

func (f *failure) Error() string { return f.errorType + ": " + f.message }

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
	line, err := podcontract.FormatFailure(f.errorType, f.message, podcontract.WithRetryAfter(f.retryAfter))
	if err != nil {
		// Only a misspelt error type in this program gets here.
		line, _ = podcontract.FormatFailure(podcontract.InternalError, err.Error()+": "+f.message)
	}
	return line
}

// asFailure finds the failure in err's chain, or calls err an internal error:
// an error nobody classified is a bug in this program, not in the input. Its
// text is not shown, since nobody checked what it quotes; its type is.
func asFailure(err error) *failure {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	return fail(podcontract.InternalError, err, "unexpected error (%T)", err)
}

// oneLine makes untrusted text printable on one line of at most n bytes.
func oneLine(s string, n int) string {
	return podcontract.OneLine(s, n)
}

// describeText describes a piece of the file for a message without quoting
// it: its length and what it looks like.
func describeText(text string) string {
	if text == "" {
		return "nothing"
	}
	return fmt.Sprintf("%d bytes that look like %s", len(text), describeContent([]byte(text)))
}
