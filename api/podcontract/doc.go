// Package podcontract is the Pod contract between the ExtractionJob operator
// and an extractor: what the operator gives the extractor container of an
// attempt's Pod, and how the extractor reports its outcome. The operator
// reads Pods with this package and the reference extractor (cmd/extractor)
// writes with it, so the two cannot drift apart.
//
// It is a Go module of its own that imports only the standard library, so
// that an extractor written in Go can import it without pulling Kubernetes
// into its build:
//
//	go get github.com/pybase/extraction-operator/api/podcontract@latest
//
// Its versions are tagged api/podcontract/vX.Y.Z. An extractor in another
// language follows the rules below; nothing in them is specific to Go.
//
// # Input
//
// The operator runs one Pod per attempt, with restartPolicy Never, a single
// container named "extractor" that runs as the non-root user 65532 on a
// read-only root file system, with an emptyDir at /tmp for scratch space.
// The container gets these environment variables:
//
//   - EXTRACTION_FORMAT (EnvFormat): the job's format: pdf, dxf, ifc, step or werk24.
//   - EXTRACTION_SOURCE_URL (EnvSourceURL): the URL of the source file.
//   - EXTRACTION_OPTIONS (EnvOptions): the job's options, a JSON object of
//     strings; "{}" when there are none.
//   - EXTRACTION_ATTEMPT (EnvAttempt): the attempt's number, 1 for the first.
//
// The keys of the job's source.secretRef, if it names a Secret, come beside
// them, for credentials. The ExtractorClass's env comes too, and wins over
// the Secret's keys; one of its variables is the contract's:
//
//   - EXTRACTOR_ALLOWED_DESTINATIONS (EnvAllowedDestinations): the internal
//     networks and hosts the administrator allows, comma-separated; set empty
//     by the operator when the class does not set it, so the job's author
//     cannot set it through the Secret.
//
// # Destinations
//
// The job's author chooses the source URL, and the Pod fetches it from
// inside the cluster. An extractor therefore refuses to connect to internal
// addresses unless EnvAllowedDestinations allows them: loopback, link-local
// (which holds the cloud metadata services, 169.254.169.254 and
// fd00:ec2::254), private (RFC 1918, RFC 4193), unspecified, multicast and
// carrier-grade NAT (100.64.0.0/10) addresses, IPv4 addresses written as
// IPv6 (::ffff:a.b.c.d, 64:ff9b::/96) judged as the IPv4 address. It checks
// the address it connects to, after name resolution, on every connection:
// redirects and S3 endpoints included. It reports a refusal as the
// Permanent DestinationNotAllowed, naming the class of the address and not
// the address (a host name's answer is the resolver's, not the author's).
//
// Whatever it fetched, it copies none of it into the termination log on a
// failure: it says what was wrong (a status code, a length, the type the
// content looks like), never what the content said, since the job's author
// reads status.lastFailure.message and could otherwise read what the Pod,
// and not they, may reach.
//
// # Success
//
// Exit 0, after writing the result to the termination log,
// /dev/termination-log (TerminationLogPath): a JSON object of at most 4 KiB
// (MaxResultBytes) in valid UTF-8, nested at most 32 levels deep
// (MaxResultDepth). It becomes the job's status.result, compacted
// (ParseResult). MarshalResult encodes a Go value so that it passes. An empty
// termination log is a success without a result; anything else that is not
// such an object is a success whose result the operator drops, with a
// ResultIgnored event.
//
// # Failure
//
// Exit non-zero, after writing "ErrorType: message" as the first line of the
// termination log (FormatFailure). An error type is a letter followed by at
// most 63 letters, digits or underscores (ValidErrorType), and ": " follows
// it. Only the first line is read; more lines, such as a stack trace, may
// follow for people. The operator keeps at most 1 KiB (MaxMessageBytes) of
// the message, made valid UTF-8 with control characters as spaces
// (ParseFailure, Sanitize); FormatFailure keeps the whole line within that.
// Keep the whole termination log under 4 KiB: the kubelet keeps only a
// file's last 4 KiB, so in a longer one the first line is lost and the
// operator reads the exit code instead (the real-node tests show it).
//
// # Retry-After
//
// A failure may carry a hint: how long the service the extractor talks to
// asked it to wait before the next try, as in HTTP's Retry-After. It is a
// line "Retry-After: <value>" among the first RetryAfterLines (5) lines of
// the termination log, after the "ErrorType: message" line (WithRetryAfter
// writes it, ParseRetryAfter reads it). The value is whole seconds ("60") or
// a Go duration ("1m30s"); an extractor that got an HTTP date turns it into
// seconds from its own clock, since the operator's may differ. The field
// name is matched without regard to case, and the first such line counts:
//
//	RateLimitExceeded: api.example answered 429 Too Many Requests
//	Retry-After: 60
//
// The operator reads a hint only after an "ErrorType: message" first line,
// so a log tail (see Logs) never sets one. A value of 0 asks for no wait and
// is no hint. A value that is neither form, negative, or beyond about 292
// years is ignored as a whole and counted in the operator's
// extractionjob_retry_after_ignored_total{reason="unparsable"}; none of it
// is trusted. A job whose spec.retryPolicy.retryAfter is Honor (the default)
// waits the longer of its own backoff and the hint, the hint capped at
// maxRetryAfter, with the backoff's jitter on the result; a hint never adds
// a retry and never shortens the policy's wait.
//
// The error type decides the failure's class when no rule of the job
// matches (ClassOf). The built-in table is matched by case-insensitive
// substring (ErrorTypeMatches), retryable entries first, so that
// "PdfCorruptedFileError" is Permanent and "S3TimeoutError" is Retryable:
//
//   - Retryable: ConnectionError, TimeoutError, ServiceUnavailable,
//     RateLimitExceeded, TemporaryFailure, S3ConnectionError, Werk24Timeout.
//   - Permanent: UnsupportedFormat, CorruptedFile, InvalidFileType,
//     AuthenticationFailed, PermissionDenied, FileTooLarge,
//     DestinationNotAllowed.
//   - Any other error type is Retryable.
//
// A Retryable failure is retried after a growing backoff, up to the job's
// maxRetries; a Permanent one fails the job at once. The job's rules (by
// error type, exit code or reason) come before the table. The operator has a
// third class, Disruption, for what the cluster does to a Pod (an eviction,
// a preemption, a lost node), which no extractor reports.
//
// # Exit codes
//
// When the termination log has no "ErrorType: " line (the extractor died, or
// wrote only logs), the operator reads the exit code as sysexits.h does
// (ErrorTypeOfExitCode): 65 (EX_DATAERR) CorruptedFile, 68 (EX_NOHOST)
// ConnectionError, 69 (EX_UNAVAILABLE) ServiceUnavailable, 75 (EX_TEMPFAIL)
// TemporaryFailure, 77 (EX_NOPERM) PermissionDenied; any other code is an
// unknown error, which is Retryable. An extractor should therefore exit with a
// code whose reading has the same class as its error type, so that the class
// survives a lost message. ExitCode gives such a code for every error type:
//
//	Error type            Exit  sysexits         Class
//	UsageError              64  EX_USAGE         Retryable (unknown)
//	UnsupportedFormat       65  EX_DATAERR       Permanent
//	InvalidFileType         65  EX_DATAERR       Permanent
//	CorruptedFile           65  EX_DATAERR       Permanent
//	FileTooLarge            65  EX_DATAERR       Permanent
//	SourceNotFound          66  EX_NOINPUT       Retryable (unknown)
//	ServiceUnavailable      69  EX_UNAVAILABLE   Retryable
//	InternalError           70  EX_SOFTWARE      Retryable (unknown)
//	IOError                 74  EX_IOERR         Retryable (unknown)
//	ConnectionError         75  EX_TEMPFAIL      Retryable
//	S3ConnectionError       75  EX_TEMPFAIL      Retryable
//	TimeoutError            75  EX_TEMPFAIL      Retryable
//	Werk24Timeout           75  EX_TEMPFAIL      Retryable
//	RateLimitExceeded       75  EX_TEMPFAIL      Retryable
//	TemporaryFailure        75  EX_TEMPFAIL      Retryable
//	Interrupted             75  EX_TEMPFAIL      Retryable (unknown)
//	UnexpectedResponse      76  EX_PROTOCOL      Retryable (unknown)
//	AuthenticationFailed    77  EX_NOPERM        Permanent
//	PermissionDenied        77  EX_NOPERM        Permanent
//	DestinationNotAllowed   77  EX_NOPERM        Permanent
//	any other Permanent     65  EX_DATAERR       Permanent
//	any other Retryable     70  EX_SOFTWARE      Retryable
//
// # Logs
//
// The container has terminationMessagePolicy FallbackToLogsOnError: when a
// failed extractor leaves the termination log empty, the kubelet puts the
// tail of its log there instead (its last 80 lines, at most 2 KiB), so that people
// see why it died. The operator reads that tail's first line like any
// termination message, which is why no log line should look like
// "ErrorType: message": start log lines with a timestamp, for example. It
// then finds no error type and reads the exit code, which is why the exit
// code matters.
package podcontract
