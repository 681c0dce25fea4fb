// Command extractor is the reference extractor of the ExtractionJob operator:
// the default image, and the model for extractor authors. It fetches one
// source file, checks that it really is of the declared format, and reports a
// small summary, or the failure, the way the operator's Pod contract asks.
//
// # Input
//
// The operator sets EXTRACTION_FORMAT (pdf, dxf, ifc, step or werk24),
// EXTRACTION_SOURCE_URL, EXTRACTION_OPTIONS (a JSON object of strings) and
// EXTRACTION_ATTEMPT; the job's source.secretRef adds credentials:
//
//   - http:// and https:// are fetched with GET. User information in the URL
//     is sent as basic authentication; EXTRACTION_HTTP_AUTHORIZATION, if set,
//     is sent as the Authorization header (for example "Bearer …").
//   - file:///path reads a file on the Pod's own file system, such as a
//     mounted volume.
//   - s3://bucket/key is fetched with the s3 client of the AWS SDK for Go v2,
//     its retries off (the operator retries), from AWS_ACCESS_KEY_ID,
//     AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN, AWS_REGION (or
//     AWS_DEFAULT_REGION; default us-east-1) and optional AWS_ENDPOINT_URL_S3
//     or AWS_ENDPOINT_URL for S3-compatible stores, which are addressed
//     path-style. The body is checked against the checksum S3 sends, if any.
//     Without credentials an s3:// source fails with AuthenticationFailed:
//     there is no anonymous access, because a public object can be fetched by
//     its https URL.
//
// # Destinations
//
// The job's author chooses the URL and the Pod fetches it from inside the
// cluster, so the extractor refuses to connect to internal addresses:
// loopback, link-local (with the metadata services 169.254.169.254 and
// fd00:ec2::254), private (RFC 1918, RFC 4193), unspecified, multicast and
// carrier-grade NAT, also as IPv4-mapped IPv6 or behind NAT64. The check
// runs on the address of every connection, after name resolution and right
// before connect, for the source, every redirect and the S3 endpoint alike,
// and fails with DestinationNotAllowed, naming the class of the address but
// not the address. EXTRACTOR_ALLOWED_DESTINATIONS, which only the
// ExtractorClass sets, lists the networks, addresses and host names allowed
// all the same, comma-separated. Proxies in the environment are not used:
// they would connect in the extractor's place. No failure message quotes
// what came back: it says the status, the length and what the content
// looks like, never the content.
//
// Options: maxBytes limits the size of the source (bytes, or with a Ki, Mi,
// Gi or Ti suffix; default 256Mi), timeout limits fetching and checking
// together (a Go duration; default 15m). Other options are ignored. The flags
// --max-bytes and --timeout set the same for runs by hand, and
// --termination-log (env EXTRACTION_TERMINATION_LOG; "-" for stdout) moves the
// termination message away from /dev/termination-log.
//
// The extractor streams the source through its checks, and for every format
// but PDF keeps memory bounded whatever the file's size. A PDF is read with
// pdfcpu, which needs to seek and holds the file's objects in memory: the
// extractor spools it to an unlinked scratch file in $TMPDIR (the Pod's /tmp
// emptyDir, which must have room for maxBytes) and needs memory of about the
// file's size to read it. Apart from that it writes nothing but its
// termination message, so it runs on the read-only root file system of the
// Pod.
//
// # Output
//
// On success it exits 0 and writes a JSON object of at most 4 KiB as the
// termination message: format, size (bytes), sha256 (hex) and what the format
// shows cheaply:
//
//   - pdf: version (the catalog's, else the header's), pages, and encrypted,
//     objectStreams and linearized when true. A PDF encrypted with a user
//     (open) password shows nothing but that it is encrypted: no version, no
//     pages.
//   - dxf, ASCII or binary alike: version ($ACADVER) and release, sections,
//     entities (records in the ENTITIES section) and entityTypes (the 16 most
//     frequent, with omittedEntityTypes saying how many types were left out).
//   - ifc, step: schema (from FILE_SCHEMA), entities (instances "#n=…") and
//     entityTypes as for DXF; a complex instance counts as "(complex)".
//   - werk24: drawingType (png, jpeg or pdf); width and height of an image;
//     a PDF's fields for a PDF.
//
// What is checked: PDF has "%PDF-" in its first 1 KiB and "%%EOF" in its
// last 2 KiB, and pdfcpu reads and validates it (relaxed validation, which
// rebuilds a broken cross-reference table as poppler does). DXF is ASCII DXF
// of group code and value lines, or binary DXF ("AutoCAD Binary DXF" and
// binary pairs), in SECTION … ENDSEC blocks, ending with EOF. IFC and STEP
// start with "ISO-10303-21;", have a HEADER with FILE_SCHEMA and DATA
// sections of entity instances, and end with "END-ISO-10303-21;"; an IFC
// file's schema must be an IFC schema, while a STEP job also accepts IFC,
// itself a STEP schema. Werk24 drawings are PNG (ending in IEND), JPEG (with
// an end-of-image marker in the last 1 KiB) or PDF.
//
// On failure it exits with a sysexits.h code and writes "ErrorType: message"
// as the first line of the termination message. The error types, their
// classes and exit codes are those of the Pod contract (package
// github.com/pybase/extraction-operator/api/podcontract), whose exit codes
// give the operator the type's own class from the code alone: the class
// survives when the termination message is lost.
//
//	Error type            Exit  sysexits         Operator's class   When
//	UsageError              64  EX_USAGE         retryable*         bad flags, environment or options
//	UnsupportedFormat       65  EX_DATAERR       permanent          unknown format or URL scheme
//	InvalidFileType         65  EX_DATAERR       permanent          wrong magic bytes: the file is something else
//	CorruptedFile           65  EX_DATAERR       permanent          empty, truncated or structurally broken file
//	FileTooLarge            65  EX_DATAERR       permanent          larger than maxBytes
//	SourceNotFound          66  EX_NOINPUT       retryable*         HTTP 404 or 410, S3 NoSuchKey or NoSuchBucket, no such file
//	ServiceUnavailable      69  EX_UNAVAILABLE   retryable          HTTP 5xx, S3 InternalError
//	InternalError           70  EX_SOFTWARE      retryable*         a bug in the extractor
//	IOError                 74  EX_IOERR         retryable*         reading a local file or writing the PDF's scratch file failed
//	ConnectionError         75  EX_TEMPFAIL      retryable          refused, reset or cut-short connections, DNS and TLS failures, S3 checksum mismatch
//	TimeoutError            75  EX_TEMPFAIL      retryable          the timeout ran out, HTTP 408, S3 RequestTimeout
//	RateLimitExceeded       75  EX_TEMPFAIL      retryable          HTTP 429, S3 SlowDown or ThrottlingException
//	Interrupted             75  EX_TEMPFAIL      retryable*         SIGTERM or SIGINT, as when the Pod is deleted
//	UnexpectedResponse      76  EX_PROTOCOL      retryable*         any other HTTP status, more than 10 redirects, a redirect to another scheme
//	AuthenticationFailed    77  EX_NOPERM        permanent          HTTP 401, bad S3 credentials or signature, s3:// without credentials
//	PermissionDenied        77  EX_NOPERM        permanent          HTTP 403, S3 AccessDenied, unreadable file
//	DestinationNotAllowed   77  EX_NOPERM        permanent          the source, a redirect or the S3 endpoint leads to an internal address
//
// * Not in the operator's built-in table, so retried as an unknown type; a
// job that wants otherwise adds a rule, for example errorTypes
// [SourceNotFound] with action Fail. SourceNotFound is retryable on purpose:
// a file that is still being uploaded appears later.
//
// When a service answers 429 or 503, or S3 throttles (SlowDown,
// ThrottlingException, a 503), and says in a Retry-After header how long to
// wait, in seconds or as an HTTP date (counted from this program's clock when
// the answer came), the wait follows the failure line as the Pod contract's
// hint "Retry-After: <seconds>". A date in the past, or a value that does not
// parse, passes nothing on.
//
// Progress goes to stderr in lines that start with a timestamp, so that no
// log line can be taken for an "ErrorType: " line should the kubelet fall back
// to the logs; the failure line comes last.
package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "", log.LstdFlags|log.LUTC)
	cfg, err := parseConfig(args, env, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return reportFailure(cfg.terminationLog, err, stdout, stderr, logger)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout,
		fmt.Errorf("gave up after the timeout of %s (option %s)", cfg.timeout, optionTimeout))
	defer cancel()
	logger.Printf("attempt %s: checking the %s source %s (at most %d bytes, within %s)",
		cmp.Or(cfg.attempt, "?"), cfg.format, displayURL(cfg.sourceURL), cfg.maxBytes, cfg.timeout)
	result, err := extract(ctx, cfg, newHTTPClient(cfg.allowed))
	if err != nil {
		return reportFailure(cfg.terminationLog, err, stdout, stderr, logger)
	}
	logger.Printf("succeeded: %s", result)
	if err := writeTerminationMessage(cfg.terminationLog, result, stdout); err != nil {
		// The extraction itself succeeded; failing now would only make the
		// operator retry work that is done.
		logger.Printf("the result is lost: %v", err)
	}
	return 0
}

// reportFailure writes the failure where the operator reads it, and as the
// last log line for when the kubelet falls back to the logs; it returns the
// exit code.
func reportFailure(terminationLog string, err error, stdout, stderr io.Writer, logger *log.Logger) int {
	f := asFailure(err)
	message := f.terminationMessage()
	if err := writeTerminationMessage(terminationLog, []byte(message+"\n"), stdout); err != nil {
		logger.Printf("%v", err)
	}
	// The failure line alone: a hint in the logs would never be read, since
	// the operator reads none from a log tail.
	line, _, _ := strings.Cut(message, "\n")
	fmt.Fprintln(stderr, line)
	return f.exitCode()
}

// extract fetches the source and passes it through the format's inspector
// and a hash at once, so the file is read only once and never stored.
func extract(ctx context.Context, cfg config, client *http.Client) ([]byte, error) {
	// The format is checked before anything is fetched, so a job with a
	// format this image cannot read fails without network traffic.
	inspect, err := newInspector(ctx, cfg.format)
	if err != nil {
		return nil, err
	}
	// The PDF inspector spools to a scratch file, which goes however the
	// run ends.
	if closer, ok := inspect.(io.Closer); ok {
		defer closer.Close()
	}
	src, err := openSource(ctx, cfg, client)
	if err != nil {
		return nil, err
	}
	defer src.body.Close()
	if src.size > cfg.maxBytes {
		return nil, tooLarge(cfg.maxBytes, fmt.Sprintf(": it declares %d bytes", src.size))
	}

	hash := sha256.New()
	body := &limitedReader{r: src.body, limit: cfg.maxBytes}
	if _, err := io.Copy(io.MultiWriter(hash, inspect), body); err != nil {
		return nil, fmt.Errorf("reading the source: %w", err)
	}
	summary, err := inspect.finish(body.n)
	if err != nil {
		return nil, err
	}
	return encodeResult(cfg.format, body.n, hash.Sum(nil), summary)
}
