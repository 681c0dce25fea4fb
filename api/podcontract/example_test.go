package podcontract_test

import (
	"fmt"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// An extractor that succeeds writes a JSON object to the termination log and
// exits 0; the operator keeps the object as the job's status.result.
func Example_success() {
	summary := struct {
		Format string `json:"format"`
		Pages  int    `json:"pages"`
	}{Format: "pdf", Pages: 12}
	result, err := podcontract.MarshalResult(summary)
	if err != nil {
		// Not an object, or more than 4 KiB: a bug in the extractor.
		fmt.Println(err)
		return
	}
	// A real extractor writes result to podcontract.TerminationLogPath with
	// os.WriteFile, then exits 0.
	fmt.Printf("termination log: %s\n", result)

	// What the operator keeps:
	kept, err := podcontract.ParseResult(string(result) + "\n")
	fmt.Printf("status.result: %s (error: %v)\n", kept, err)
	// Output:
	// termination log: {"format":"pdf","pages":12}
	// status.result: {"format":"pdf","pages":12} (error: <nil>)
}

// An extractor that fails writes "ErrorType: message" as the first line of
// the termination log, prints it as its last log line, and exits with the
// error type's exit code, so that the class survives a lost message.
func Example_failure() {
	errorType := podcontract.CorruptedFile
	line, err := podcontract.FormatFailure(errorType, "no startxref in the last 2 KiB\n(the file may be truncated)")
	if err != nil {
		// Not a valid error type: a bug in the extractor.
		fmt.Println(err)
		return
	}
	code := podcontract.ExitCode(errorType)
	// A real extractor writes line+"\n" to podcontract.TerminationLogPath,
	// then calls os.Exit(code).
	fmt.Printf("termination log: %s\nexit code: %d\n", line, code)

	// What the operator reads:
	parsedType, message, ok := podcontract.ParseFailure(line + "\n")
	fmt.Printf("error type %s (%s, found: %v), message %q\n", parsedType, podcontract.ClassOf(parsedType), ok, message)
	// and what it would read from the exit code alone:
	fromCode, _ := podcontract.ErrorTypeOfExitCode(code)
	fmt.Printf("from the exit code: %s (%s)\n", fromCode, podcontract.ClassOf(fromCode))
	// Output:
	// termination log: CorruptedFile: no startxref in the last 2 KiB (the file may be truncated)
	// exit code: 65
	// error type CorruptedFile (Permanent, found: true), message "no startxref in the last 2 KiB (the file may be truncated)"
	// from the exit code: CorruptedFile (Permanent)
}

// An extractor whose service answered "429 Too Many Requests" with
// "Retry-After: 60" passes the wait on; the operator waits at least that long
// before the next attempt, if the job's policy honours hints.
func Example_failureWithRetryAfter() {
	message, err := podcontract.FormatFailure(podcontract.RateLimitExceeded, "api.example answered 429 Too Many Requests",
		podcontract.WithRetryAfter(60*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A real extractor writes message+"\n" to podcontract.TerminationLogPath,
	// then exits with podcontract.ExitCode(podcontract.RateLimitExceeded).
	fmt.Printf("termination log:\n%s\n", message)

	// What the operator reads:
	errorType, text, _ := podcontract.ParseFailure(message + "\n")
	wait, err := podcontract.ParseRetryAfter(message + "\n")
	fmt.Printf("error type %s, message %q, wait %v (error: %v)\n", errorType, text, wait, err)
	// and what it ignores, and counts:
	_, err = podcontract.ParseRetryAfter(podcontract.RateLimitExceeded + ": x\nRetry-After: soon")
	fmt.Println(err)
	// Output:
	// termination log:
	// RateLimitExceeded: api.example answered 429 Too Many Requests
	// Retry-After: 60
	// error type RateLimitExceeded, message "api.example answered 429 Too Many Requests", wait 1m0s (error: <nil>)
	// the Retry-After hint "soon" is not a number of seconds nor a Go duration
}

// The built-in table matches error types by case-insensitive substring,
// retryable entries first; unknown types are retryable.
func ExampleClassOf() {
	for _, errorType := range []string{"PdfCorruptedFileError", "S3TimeoutError", "s3connectionerror", "QuotaExceeded"} {
		fmt.Println(errorType, podcontract.ClassOf(errorType))
	}
	// Output:
	// PdfCorruptedFileError Permanent
	// S3TimeoutError Retryable
	// s3connectionerror Retryable
	// QuotaExceeded Retryable
}
