package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// s3Route is where fakeS3 listens, below a path of its own as an
// S3-compatible store behind a reverse proxy might.
const s3Route = "GET /s3/{bucket}/{key...}"

// fakeS3 plays S3 under path-style addressing. It checks each request's
// signature by signing the request again with the SDK's own SigV4 signer and
// the test credentials, and answers some keys as S3 answers when things go
// wrong:
//
//	missing.pdf, denied.pdf, throttled.pdf  NoSuchKey, AccessDenied, SlowDown
//	error/{status}/{code}                   that S3 error document
//	status/{status}                         that status without a body
//	proxy/{status}                          that status with an HTML page
//	short/{key}                             the object, cut short
//	bad-checksum/{key}                      the object with a wrong CRC32
//
// and any other key with the file of that name.
type fakeS3 struct {
	files map[string][]byte

	mu sync.Mutex
	// retryAfter, if set, is the Retry-After header of every error answer.
	retryAfter string
	requests   map[string]int         // signed requests by key
	headers    map[string]http.Header // the last signed request's headers by key
}

func newFakeS3(files map[string][]byte) *fakeS3 {
	return &fakeS3{files: files, requests: map[string]int{}, headers: map[string]http.Header{}}
}

// newS3Server serves a fakeS3 on loopback and returns the environment that
// points the extractor at it.
func newS3Server(t *testing.T, files map[string][]byte) (*fakeS3, map[string]string) {
	fake := newFakeS3(files)
	mux := http.NewServeMux()
	mux.Handle(s3Route, fake)
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	return fake, map[string]string{
		"AWS_ACCESS_KEY_ID":     testAccessKey,
		"AWS_SECRET_ACCESS_KEY": testSecretKey,
		"AWS_REGION":            testRegion,
		"AWS_ENDPOINT_URL":      server.URL + "/s3",
	}
}

// answerWithRetryAfter makes every later error answer carry the header
// Retry-After: value.
func (s *fakeS3) answerWithRetryAfter(value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAfter = value
}

func (s *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	retryAfter := s.retryAfter
	s.mu.Unlock()
	s3Error := func(status int, code string) {
		w.Header().Set("Content-Type", "application/xml")
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s says the test server</Message></Error>`, code, code)
	}
	if !validSignature(r) {
		s3Error(http.StatusForbidden, "SignatureDoesNotMatch")
		return
	}
	key := r.PathValue("key")
	s.mu.Lock()
	s.requests[key]++
	s.headers[key] = r.Header.Clone()
	s.mu.Unlock()

	kind, rest, _ := strings.Cut(key, "/")
	var status int
	fmt.Sscan(rest, &status)
	switch {
	case key == "missing.pdf":
		s3Error(http.StatusNotFound, "NoSuchKey")
	case key == "denied.pdf":
		s3Error(http.StatusForbidden, "AccessDenied")
	case key == "throttled.pdf":
		s3Error(http.StatusServiceUnavailable, "SlowDown")
	case kind == "error":
		_, code, _ := strings.Cut(rest, "/")
		s3Error(status, code)
	case kind == "status":
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
	case kind == "proxy":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		io.WriteString(w, "<html><body>the proxy says no</body></html>")
	case kind == "short":
		// The response promises more than it sends, as when a connection
		// breaks mid-download.
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(s.files[rest])+100)
		buf.Write(s.files[rest])
		buf.Flush()
	case kind == "bad-checksum":
		w.Header().Set("X-Amz-Checksum-Crc32", "AAAAAA==")
		serveBytes(w, s.files[rest])
	default:
		data, ok := s.files[key]
		if !ok {
			s3Error(http.StatusNotFound, "NoSuchKey")
			return
		}
		serveBytes(w, data)
	}
}

func serveBytes(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

var signedHeadersField = regexp.MustCompile(`SignedHeaders=([^,]+)`)

// validSignature signs the headers that r says it signed again, with the
// SDK's signer, and compares the result with r's Authorization header.
func validSignature(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	signed := signedHeadersField.FindStringSubmatch(auth)
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if signed == nil || err != nil || time.Since(date).Abs() > 15*time.Minute {
		return false
	}
	again := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, name := range strings.Split(signed[1], ";") {
		if name != "host" {
			again.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	// S3 signs the path as it is sent, without escaping it a second time.
	err = v4.NewSigner().SignHTTP(r.Context(), creds, again, r.Header.Get("X-Amz-Content-Sha256"), "s3", testRegion, date,
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	return err == nil && again.Header.Get("Authorization") == auth
}

// fetchS3 fetches an object the way the extractor does and returns its
// contents.
func fetchS3(t *testing.T, ctx context.Context, env map[string]string, rawURL string) ([]byte, int64, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	src, err := openS3(ctx, &http.Client{}, u, func(name string) string { return env[name] })
	if err != nil {
		return nil, 0, err
	}
	defer src.body.Close()
	data, err := io.ReadAll(src.body)
	return data, src.size, err
}

func TestOpenS3(t *testing.T) {
	plan := minimalPDF(2)
	fake, env := newS3Server(t, map[string][]byte{"two-pages.pdf": plan, "plans/floor 1+2 (final).pdf": plan})
	t.Run("an object is fetched with a signature that the SDK's signer, run again, agrees with", func(t *testing.T) {
		data, size, err := fetchS3(t, t.Context(), env, "s3://drawings/two-pages.pdf")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, plan) || size != int64(len(plan)) {
			t.Errorf("got %d bytes declared as %d, want the %d of the object", len(data), size, len(plan))
		}
	})
	t.Run("a key with spaces, a plus and parentheses is fetched and signed", func(t *testing.T) {
		data, _, err := fetchS3(t, t.Context(), env, "s3://drawings/plans/floor%201+2%20%28final%29.pdf")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, plan) {
			t.Errorf("got %d bytes, want the object", len(data))
		}
	})
	t.Run("a session token is sent and signed", func(t *testing.T) {
		withToken := map[string]string{"AWS_SESSION_TOKEN": "session-token"}
		for name, value := range env {
			withToken[name] = value
		}
		if _, _, err := fetchS3(t, t.Context(), withToken, "s3://drawings/two-pages.pdf"); err != nil {
			t.Fatal(err)
		}
		fake.mu.Lock()
		headers := fake.headers["two-pages.pdf"]
		fake.mu.Unlock()
		if got := headers.Get("X-Amz-Security-Token"); got != "session-token" {
			t.Errorf("X-Amz-Security-Token %q, want session-token", got)
		}
		if signed := signedHeadersField.FindStringSubmatch(headers.Get("Authorization")); signed == nil || !strings.Contains(signed[1], "x-amz-security-token") {
			t.Errorf("the token is not among the signed headers: %s", headers.Get("Authorization"))
		}
	})
}

func TestS3Failures(t *testing.T) {
	plan := minimalPDF(2)
	fake, env := newS3Server(t, map[string][]byte{"two-pages.pdf": plan})
	withEnv := func(name, value string) map[string]string {
		changed := map[string]string{}
		for k, v := range env {
			changed[k] = v
		}
		changed[name] = value
		return changed
	}
	tests := []struct {
		name        string
		source      string
		env         map[string]string
		wantType    string
		wantMessage string
	}{
		{"NoSuchKey is SourceNotFound", "s3://drawings/error/404/NoSuchKey", env, podcontract.SourceNotFound, "404 NoSuchKey"},
		{"NoSuchBucket is SourceNotFound", "s3://drawings/error/404/NoSuchBucket", env, podcontract.SourceNotFound, "404 NoSuchBucket"},
		{"a 403 AccessDenied is PermissionDenied", "s3://drawings/error/403/AccessDenied", env, podcontract.PermissionDenied, "403 AccessDenied for s3://drawings/error/403/AccessDenied"},
		{"a 403 InvalidAccessKeyId is AuthenticationFailed", "s3://drawings/error/403/InvalidAccessKeyId", env, podcontract.AuthenticationFailed, "403 InvalidAccessKeyId"},
		{"a 400 ExpiredToken is AuthenticationFailed", "s3://drawings/error/400/ExpiredToken", env, podcontract.AuthenticationFailed, "400 ExpiredToken"},
		{"a 503 SlowDown is RateLimitExceeded", "s3://drawings/error/503/SlowDown", env, podcontract.RateLimitExceeded, "503 SlowDown"},
		{"a 400 RequestTimeout is TimeoutError", "s3://drawings/error/400/RequestTimeout", env, podcontract.TimeoutError, "400 RequestTimeout"},
		{"a 500 InternalError is ServiceUnavailable", "s3://drawings/error/500/InternalError", env, podcontract.ServiceUnavailable, "500 InternalError"},
		{"an unknown code falls back to the HTTP status", "s3://drawings/error/503/SomethingNew", env, podcontract.ServiceUnavailable, "s3://drawings/error/503/SomethingNew answered 503 Service Unavailable"},
		{"a 503 without a body is ServiceUnavailable", "s3://drawings/status/503", env, podcontract.ServiceUnavailable, "503"},
		{"a 404 without a body is SourceNotFound", "s3://drawings/status/404", env, podcontract.SourceNotFound, "answered 404 Not Found"},
		{"a 429 without a body is RateLimitExceeded", "s3://drawings/status/429", env, podcontract.RateLimitExceeded, "answered 429 Too Many Requests"},
		{"a body that is not S3's XML falls back to the HTTP status", "s3://drawings/proxy/403", env, podcontract.PermissionDenied, "answered 403 Forbidden"},
		{"a signature made with the wrong secret is AuthenticationFailed", "s3://drawings/two-pages.pdf", withEnv("AWS_SECRET_ACCESS_KEY", "not-the-secret"), podcontract.AuthenticationFailed, "403 SignatureDoesNotMatch"},
		{"a source without credentials is AuthenticationFailed", "s3://drawings/two-pages.pdf", map[string]string{}, podcontract.AuthenticationFailed, "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"an endpoint that is not an http URL is a UsageError", "s3://drawings/two-pages.pdf", withEnv("AWS_ENDPOINT_URL", "minio.local:9000"), podcontract.UsageError, "AWS_ENDPOINT_URL"},
		{"an S3 URL without a key is a UsageError", "s3://drawings/", env, podcontract.UsageError, "s3://bucket/key"},
		{"a closed loopback port is ConnectionError", "s3://drawings/two-pages.pdf", withEnv("AWS_ENDPOINT_URL", "http://"+closedPort(t)), podcontract.ConnectionError, "connection refused"},
		{"a download cut short is ConnectionError", "s3://drawings/short/two-pages.pdf", env, podcontract.ConnectionError, "closed before the whole file arrived"},
		{"a body that does not match S3's checksum is ConnectionError, to be fetched again", "s3://drawings/bad-checksum/two-pages.pdf", env, podcontract.ConnectionError, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := fetchS3(t, t.Context(), tt.env, tt.source)
			wantFailure(t, err, tt.wantType, tt.wantMessage)
		})
	}
	t.Run("a throttled request is sent once: the operator, not the client, retries", func(t *testing.T) {
		_, _, err := fetchS3(t, t.Context(), env, "s3://drawings/throttled.pdf")
		wantFailure(t, err, podcontract.RateLimitExceeded, "SlowDown")
		fake.mu.Lock()
		defer fake.mu.Unlock()
		if got := fake.requests["throttled.pdf"]; got != 1 {
			t.Errorf("%d requests, want 1", got)
		}
	})
	t.Run("an object larger than maxBytes is FileTooLarge before it is read", func(t *testing.T) {
		cfg := config{format: "pdf", sourceURL: "s3://drawings/two-pages.pdf", maxBytes: 100, env: func(name string) string { return env[name] }}
		_, err := extract(t.Context(), cfg, &http.Client{})
		wantFailure(t, err, podcontract.FileTooLarge, fmt.Sprintf("it declares %d bytes", len(plan)))
	})
	t.Run("an ended run is Interrupted, not a connection failure", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err := fetchS3(t, ctx, env, "s3://drawings/two-pages.pdf")
		wantFailure(t, err, podcontract.Interrupted, "s3://drawings/two-pages.pdf")
	})
}

// recordingTransport answers every request with an empty object and keeps
// the request, so addressing can be checked without a network.
type recordingTransport struct{ last *http.Request }

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.last = r
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func TestS3Addressing(t *testing.T) {
	tests := []struct {
		name, endpoint, source string
		want                   string
	}{
		{name: "AWS buckets are addressed virtual-hosted style", source: "s3://drawings/a/b.pdf",
			want: "https://drawings.s3.eu-central-1.amazonaws.com/a/b.pdf"},
		{name: "AWS buckets with dots are addressed path style, which keeps TLS host names valid", source: "s3://my.drawings/b.pdf",
			want: "https://s3.eu-central-1.amazonaws.com/my.drawings/b.pdf"},
		{name: "custom endpoints are addressed path style, below their own path", endpoint: "http://minio.local:9000/storage", source: "s3://drawings/b.pdf",
			want: "http://minio.local:9000/storage/drawings/b.pdf"},
		{name: "keys are escaped as SigV4 escapes them", source: "s3://drawings/plans/floor%201+2%20%28final%29.pdf",
			want: "https://drawings.s3.eu-central-1.amazonaws.com/plans/floor%201%2B2%20%28final%29.pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"AWS_ACCESS_KEY_ID": testAccessKey, "AWS_SECRET_ACCESS_KEY": testSecretKey, "AWS_REGION": testRegion, "AWS_ENDPOINT_URL": tt.endpoint}
			u, _ := url.Parse(tt.source)
			transport := &recordingTransport{}
			src, err := openS3(t.Context(), &http.Client{Transport: transport}, u, func(name string) string { return env[name] })
			if err != nil {
				t.Fatal(err)
			}
			src.body.Close()
			got := *transport.last.URL
			got.RawQuery = "" // the SDK's x-id=GetObject
			if got.String() != tt.want {
				t.Errorf("got %s, want %s", got.String(), tt.want)
			}
		})
	}
}
