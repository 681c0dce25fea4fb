package main

import (
	"context"
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
		return source{}, fail(podcontract.UsageError, err, "%s is not a URL", podcontract.EnvSourceURL)
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
// is the start of the response, for services that explain themselves there.
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
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
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

// httpStatusFailure maps an HTTP status to the error type the operator
// should see.
func httpStatusFailure(status int, header http.Header, _ []byte, what string) *failure {
	answered := fmt.Sprintf("%s answered %d %s", what, status, http.StatusText(status))
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

// networkFailure classifies an error of the network or of the context. The
// state of the context comes first: once it is done, whatever error the
// transport made of that is beside the point.
func networkFailure(ctx context.Context, err error, what string) error {
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	if ctxErr := contextFailure(ctx, what); ctxErr != nil {
		return ctxErr
	}
	// url.Error repeats the URL, query and all; the cause is what matters.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fail(podcontract.TimeoutError, err, "%s", what)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail(podcontract.ConnectionError, nil, "%s: connection refused", what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		// A body shorter than its Content-Length is a broken transfer, not a
		// broken file: retrying may well fetch all of it.
		return fail(podcontract.ConnectionError, nil, "%s: the connection closed before the whole file arrived", what)
	default:
		return fail(podcontract.ConnectionError, err, "%s", what)
	}
}

// contextFailure reports why the run's context ended, or nil while it runs.
func contextFailure(ctx context.Context, what string) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fail(podcontract.TimeoutError, context.Cause(ctx), "%s", what)
	case ctx.Err() != nil:
		return fail(podcontract.Interrupted, context.Cause(ctx), "%s", what)
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
		return fail(podcontract.PermissionDenied, err, "%s", what)
	default:
		return fail(podcontract.IOError, err, "%s", what)
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
