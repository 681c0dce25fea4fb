package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// source is an opened file, read once from front to back.
type source struct {
	body io.ReadCloser
	// size is the size the source declared, or -1 when it did not.
	size int64
}

// openSource opens the source URL. Failures name the URL without its user
// information and query, because presigned URLs carry credentials there.
func openSource(ctx context.Context, cfg config, client *http.Client) (source, error) {
	u, err := url.Parse(cfg.sourceURL)
	if err != nil {
		// url.Error repeats the whole URL; keep only what went wrong.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return source{}, fail(podcontract.UsageError, err, "%s is not a URL: %v", podcontract.EnvSourceURL, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return openHTTP(ctx, client, u, cfg.env("EXTRACTION_HTTP_AUTHORIZATION"))
	case "file":
		return openFile(ctx, u)
	case "s3":
		return openS3(ctx, client, u, cfg.env)
	default:
		return source{}, fail(podcontract.UnsupportedFormat, nil,
			"source URL scheme %q is not supported (use http, https, file or s3)", oneLine(u.Scheme, 20))
	}
}

// redactURL shows a URL in messages and logs without secrets.
func redactURL(u *url.URL) string {
	shown := *u
	shown.User = nil
	shown.Fragment, shown.RawFragment = "", ""
	if shown.RawQuery != "" || shown.ForceQuery {
		shown.RawQuery, shown.ForceQuery = "", false
		return shown.String() + "?…"
	}
	return shown.String()
}

// displayURL is redactURL for a URL that may not parse.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	return redactURL(u)
}

func openHTTP(ctx context.Context, client *http.Client, u *url.URL, authorization string) (source, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return source{}, fail(podcontract.UsageError, nil, "cannot request %s", redactURL(u))
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return doGet(ctx, client, req, redactURL(u), httpStatusFailure)
}

// statusFailure turns a response that is not 200 OK into a failure; the body
// is the start of the response, described by its length and type and never
// quoted.
type statusFailure func(status int, header http.Header, body []byte, what string) *failure

// doGet sends req and hands back the body of a 200 response, with transport
// errors during the download classified like those of the request itself.
func doGet(ctx context.Context, client *http.Client, req *http.Request, what string, onStatus statusFailure) (source, error) {
	resp, err := client.Do(req)
	if err != nil {
		return source{}, networkFailure(ctx, err, "fetching "+what)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		// Error documents are small; a bound keeps a misbehaving server from
		// making us read a large body just to report a failure.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return source{}, onStatus(resp.StatusCode, resp.Header, body, what)
	}
	return downloadBody(ctx, resp.Body, resp.ContentLength, what), nil
}

// downloadBody is the source of a response body of the given size (-1 if
// unknown), with errors during the download classified like those of the
// request itself.
func downloadBody(ctx context.Context, body io.ReadCloser, size int64, what string) source {
	return source{body: &classifyingReader{r: body, closer: body, classify: func(err error) error {
		return networkFailure(ctx, err, "downloading "+what)
	}}, size: size}
}

// maxErrorBody bounds what is read of an answer that is not 200 OK.
const maxErrorBody = 64 << 10

// httpStatusFailure maps an HTTP status to the error type the operator
// should see. The message says what the body was like, not what it said: a
// URL the Pod may reach and the job's author may not would otherwise put
// the answer into the job's status.
func httpStatusFailure(status int, header http.Header, body []byte, what string) *failure {
	answered := fmt.Sprintf("%s answered %d %s%s", what, status, http.StatusText(status), describeBody(body))
	switch {
	case status == http.StatusUnauthorized:
		return fail(podcontract.AuthenticationFailed, nil, "%s", answered)
	case status == http.StatusForbidden:
		return fail(podcontract.PermissionDenied, nil, "%s", answered)
	case status == http.StatusNotFound || status == http.StatusGone:
		return fail(podcontract.SourceNotFound, nil, "%s", answered)
	case status == http.StatusRequestTimeout:
		return fail(podcontract.TimeoutError, nil, "%s", answered)
	case status == http.StatusTooManyRequests:
		return withRetryAfter(fail(podcontract.RateLimitExceeded, nil, "%s", answered), header, time.Now())
	case status == http.StatusServiceUnavailable:
		return withRetryAfter(fail(podcontract.ServiceUnavailable, nil, "%s", answered), header, time.Now())
	case status >= 500:
		return fail(podcontract.ServiceUnavailable, nil, "%s", answered)
	default:
		return fail(podcontract.UnexpectedResponse, nil, "%s", answered)
	}
}

// withRetryAfter passes on to the operator the wait a throttling or
// unavailable service asked for in its Retry-After header, in either of
// HTTP's forms: seconds, or a date, counted from now, the extractor's clock
// when the answer came (the operator's clock may differ). A date in the past,
// a negative number or anything else that does not parse asks for no wait.
func withRetryAfter(f *failure, header http.Header, now time.Time) *failure {
	value := strings.TrimSpace(header.Get("Retry-After"))
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds > 0 && seconds <= int64(math.MaxInt64/time.Second) {
			f.retryAfter = time.Duration(seconds) * time.Second
		}
		return f
	}
	if date, err := http.ParseTime(value); err == nil && date.After(now) {
		f.retryAfter = date.Sub(now)
	}
	return f
}

// describeBody describes an error answer's body for a message: its length
// and the type it looks like; nothing for none.
func describeBody(body []byte) string {
	switch {
	case len(body) == 0:
		return ""
	case len(body) >= maxErrorBody:
		return fmt.Sprintf(" (a body of more than %d bytes that looks like %s)", maxErrorBody, describeContent(body))
	default:
		return fmt.Sprintf(" (a body of %d bytes that looks like %s)", len(body), describeContent(body))
	}
}

// networkFailure classifies an error of the network or of the context. The
// state of the context comes first: once it is done, whatever error the
// transport made of that is beside the point. The error's own text is not
// shown: net/http quotes a malformed answer, TLS the names in the server's
// certificate, a redirect's error its Location; the message names the kind
// of failure instead.
func networkFailure(ctx context.Context, err error, what string) error {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if refused := destinationFailure(err, what); refused != nil {
		return refused
	}
	if ctxErr := contextFailure(ctx, what); ctxErr != nil {
		return ctxErr
	}
	var (
		netErr    net.Error
		dnsErr    *net.DNSError
		errno     syscall.Errno
		redirect  *redirectRefused
		hostname  x509.HostnameError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		notTLS    tls.RecordHeaderError
		tlsAlert  tls.AlertError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fail(podcontract.TimeoutError, err, "%s: timed out", what)
	case errors.As(err, &redirect):
		return fail(podcontract.UnexpectedResponse, err, "%s: %s", what, redirect.reason)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fail(podcontract.ConnectionError, err, "%s: the host name does not resolve", what)
	case errors.As(err, &dnsErr):
		return fail(podcontract.ConnectionError, err, "%s: the host name could not be resolved", what)
	case errors.As(err, &hostname):
		return fail(podcontract.ConnectionError, err, "%s: the server's TLS certificate is not valid for the host name", what)
	case errors.As(err, &authority):
		return fail(podcontract.ConnectionError, err, "%s: the server's TLS certificate is signed by an unknown authority", what)
	case errors.As(err, &invalid):
		return fail(podcontract.ConnectionError, err, "%s: the server's TLS certificate is invalid (expired, not yet valid or not for serving)", what)
	case errors.As(err, &notTLS):
		return fail(podcontract.ConnectionError, err, "%s: the server did not answer in TLS", what)
	case errors.As(err, &tlsAlert):
		return fail(podcontract.ConnectionError, err, "%s: the TLS handshake failed", what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A body shorter than its Content-Length is a broken transfer, not a
		// broken file: retrying may well fetch all of it.
		return fail(podcontract.ConnectionError, err, "%s: the connection closed before the whole file arrived", what)
	case errors.Is(err, io.EOF):
		return fail(podcontract.ConnectionError, err, "%s: the server closed the connection without an answer", what)
	case errors.As(err, &errno):
		// The kernel's text for its own error number, such as "connection
		// refused".
		return fail(podcontract.ConnectionError, err, "%s: %s", what, errno.Error())
	default:
		return fail(podcontract.ConnectionError, err, "%s: the connection failed or the answer was not HTTP", what)
	}
}

// redirectRefused is the error of a redirect the client does not follow.
type redirectRefused struct{ reason string }

func (r *redirectRefused) Error() string { return r.reason }

// maxRedirects is as many redirects as net/http follows by default.
const maxRedirects = 10

// checkRedirect refuses redirects that no fetch of a file needs, with an
// error of its own, so the message can name the reason without the error
// text of net/http, which quotes the Location. Every redirect that is
// followed is dialed through the guarded dialer like the first request.
func checkRedirect(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) >= maxRedirects:
		return &redirectRefused{reason: fmt.Sprintf("more than %d redirects", maxRedirects)}
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return &redirectRefused{reason: "a redirect to a URL that is neither http nor https"}
	}
	return nil
}

// contextFailure reports why the run's context ended, or nil while it runs.
func contextFailure(ctx context.Context, what string) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fail(podcontract.TimeoutError, context.Cause(ctx), "%s: %v", what, context.Cause(ctx))
	case ctx.Err() != nil:
		return fail(podcontract.Interrupted, context.Cause(ctx), "%s: %v", what, context.Cause(ctx))
	}
	return nil
}

// classifyingReader turns read errors into failures as they happen, so the
// code that reads needs no knowledge of where the bytes come from.
type classifyingReader struct {
	r        io.Reader
	closer   io.Closer
	classify func(error) error
}

func (c *classifyingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = c.classify(err)
	}
	return n, err
}

func (c *classifyingReader) Close() error { return c.closer.Close() }

// openFile opens a file:// URL, a path on the Pod's own file system (a
// mounted volume, say).
func openFile(ctx context.Context, u *url.URL) (source, error) {
	if u.Opaque != "" || (u.Host != "" && u.Host != "localhost") {
		return source{}, fail(podcontract.UsageError, nil, "file URLs name an absolute local path, as in file:///data/a.pdf, not %s", redactURL(u))
	}
	what := "file " + u.Path
	f, err := os.Open(u.Path)
	if err != nil {
		return source{}, fileFailure(err, "opening "+what)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return source{}, fileFailure(err, "reading "+what)
	}
	if info.IsDir() {
		f.Close()
		return source{}, fail(podcontract.InvalidFileType, nil, "%s is a directory", what)
	}
	size := int64(-1)
	if info.Mode().IsRegular() {
		size = info.Size()
	}
	// A read from a local file does not watch a context, so the reader checks
	// it between reads to honour the timeout on slow volumes.
	body := &classifyingReader{r: contextReader{ctx: ctx, r: f}, closer: f, classify: func(err error) error {
		if ctxErr := contextFailure(ctx, "reading "+what); ctxErr != nil {
			return ctxErr
		}
		return fileFailure(err, "reading "+what)
	}}
	return source{body: body, size: size}, nil
}

func fileFailure(err error, what string) *failure {
	// PathError repeats the path, which the message already names.
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		err = pathErr.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(podcontract.SourceNotFound, nil, "%s: no such file", what)
	case errors.Is(err, fs.ErrPermission):
		return fail(podcontract.PermissionDenied, err, "%s: %v", what, err)
	default:
		return fail(podcontract.IOError, err, "%s: %v", what, err)
	}
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// limitedReader fails with FileTooLarge once more than limit bytes arrive.
// It lets one byte past the limit through, which is how a file of exactly
// limit bytes is told from a larger one.
type limitedReader struct {
	r     io.Reader
	limit int64
	n     int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n > l.limit {
		return 0, tooLarge(l.limit, "")
	}
	if room := l.limit + 1 - l.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, tooLarge(l.limit, "")
	}
	return n, err
}

func tooLarge(limit int64, detail string) *failure {
	return fail(podcontract.FileTooLarge, nil, "the source is larger than the limit of %d bytes%s (raise it with the option %s)",
		limit, detail, optionMaxBytes)
}
