package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

// extractorBinary is the program under test, built once by TestMain the way
// the image builds it.
var extractorBinary string

func TestMain(m *testing.M) {
	if os.Getenv(isolatedTestEnv) != "" {
		// A child running one test in an isolated network (runIsolated),
		// with the parent's binary.
		dir, err := os.MkdirTemp("", "extractor-isolated-")
		if err == nil {
			err = enterIsolatedNetwork(dir)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "entering the isolated network: %v\n", err)
			os.Exit(1)
		}
		extractorBinary = os.Getenv(extractorBinaryEnv)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "extractor-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	extractorBinary = filepath.Join(dir, "extractor")
	build := exec.Command("go", "build", "-o", extractorBinary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the extractor: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// outcome is what the operator would see of one run.
type outcome struct {
	exitCode int
	message  string // the termination message
	stderr   string
}

// errorType is the error type the operator reads from the termination
// message, or "" if it finds none.
func (o outcome) errorType() string {
	errorType, _, _ := podcontract.ParseFailure(o.message)
	return errorType
}

// loopbackAllowed allows the test servers, which listen on loopback, an
// address the extractor refuses by default.
const loopbackAllowed = "127.0.0.0/8,::1"

// runExtractor runs the program with exactly the given environment, so that
// nothing from the machine running the tests (AWS credentials, say) leaks in.
func runExtractor(t *testing.T, ctx context.Context, env map[string]string, args ...string) outcome {
	t.Helper()
	_, wait := startExtractor(t, ctx, env, args...)
	return wait()
}

// startExtractor starts the program; wait waits for it to end and returns
// what it left behind.
func startExtractor(t *testing.T, ctx context.Context, env map[string]string, args ...string) (*exec.Cmd, func() outcome) {
	t.Helper()
	terminationLog := filepath.Join(t.TempDir(), "termination-log")
	cmd := exec.CommandContext(ctx, extractorBinary, append([]string{"--termination-log=" + terminationLog}, args...)...)
	cmd.Env = []string{}
	for name, value := range env {
		cmd.Env = append(cmd.Env, name+"="+value)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the extractor: %v", err)
	}
	return cmd, func() outcome {
		t.Helper()
		err := cmd.Wait()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			t.Fatalf("running the extractor: %v", err)
		}
		message, err := os.ReadFile(terminationLog)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return outcome{exitCode: cmd.ProcessState.ExitCode(), message: string(message), stderr: stderr.String()}
	}
}

// checkContract checks what the operator relies on: a small JSON object on
// success; on failure an "ErrorType: message" first line, the exit code of
// that type, and the same line last in the logs.
func checkContract(t *testing.T, o outcome) {
	t.Helper()
	if o.exitCode == 0 {
		var result map[string]any
		if err := json.Unmarshal([]byte(o.message), &result); err != nil || result == nil {
			t.Fatalf("the result %q is not a JSON object: %v", o.message, err)
		}
		if len(o.message) > podcontract.MaxResultBytes {
			t.Errorf("the result is %d bytes, more than %d", len(o.message), podcontract.MaxResultBytes)
		}
		return
	}
	errorType := o.errorType()
	if errorType == "" {
		t.Fatalf("the termination message %q does not start with an error type; stderr:\n%s", o.message, o.stderr)
	}
	if code := podcontract.ExitCode(errorType); code != o.exitCode {
		t.Errorf("exit code %d, but %s is documented as %d", o.exitCode, errorType, code)
	}
	first, _, _ := strings.Cut(o.message, "\n")
	lines := strings.Split(strings.TrimSpace(o.stderr), "\n")
	if last := lines[len(lines)-1]; last != first {
		t.Errorf("the last log line is %q, not the failure %q", last, first)
	}
}

// testServer is a loopback HTTP server with one route per behaviour of a
// file server the extractor must handle.
type testServer struct {
	*httptest.Server
	files map[string][]byte
	// stalled receives a value when a request to /stall arrives.
	stalled chan struct{}
}

const (
	testAccessKey = "AKIDEXAMPLE"
	testSecretKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion    = "eu-central-1"
	bearerToken   = "Bearer let-me-in"
)

func newTestServer(t *testing.T, files map[string][]byte) *testServer {
	s := &testServer{files: files, stalled: make(chan struct{}, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		s.serveFile(w, r.PathValue("name"))
	})
	mux.HandleFunc("GET /chunked/{name}", func(w http.ResponseWriter, r *http.Request) {
		// Writing in flushed pieces makes the response chunked, without a
		// Content-Length to check the size against.
		data, ok := s.files[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		half := len(data) / 2
		w.Write(data[:half])
		w.(http.Flusher).Flush()
		w.Write(data[half:])
	})
	mux.HandleFunc("GET /status/{code}", func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(r.PathValue("code"), &code)
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		http.Error(w, "no file here", code)
	})
	mux.HandleFunc("GET /private/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != bearerToken {
			http.Error(w, "who are you?", http.StatusUnauthorized)
			return
		}
		s.serveFile(w, r.PathValue("name"))
	})
	mux.HandleFunc("GET /stall", func(w http.ResponseWriter, r *http.Request) {
		s.stalled <- struct{}{}
		<-r.Context().Done()
	})
	mux.HandleFunc("GET /short", func(w http.ResponseWriter, r *http.Request) {
		// The response promises more than it sends, as when a connection
		// breaks mid-download.
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n%PDF-1.7\n")
		buf.Flush()
	})
	mux.Handle(s3Route, newFakeS3(files))
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) serveFile(w http.ResponseWriter, name string) {
	data, ok := s.files[name]
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.Write(data)
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// asJSON makes expectations written as Go values comparable with decoded
// JSON, whose numbers are float64.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestProgram(t *testing.T) {
	twoPages := minimalPDF(2)
	png := pngFile(t, 40, 30)
	jpg := jpegFile(t, 64, 48)
	dxf := dxfFile("LINE", "LINE", "CIRCLE", "TEXT")
	ifc := ifcFile()
	step := stepAP214File()
	files := map[string][]byte{
		"two-pages.pdf":     twoPages,
		"truncated.pdf":     twoPages[:len(twoPages)*2/3],
		"picture.png":       png,
		"truncated.png":     png[:len(png)-20],
		"photo.jpg":         jpg,
		"error-page.pdf":    []byte("<!DOCTYPE html><html><body>Sign in to continue</body></html>"),
		"empty.pdf":         {},
		"plan.dxf":          dxf,
		"truncated.dxf":     dxf[:len(dxf)-30],
		"plan-binary.dxf":   testdataFile(t, "dxf/plan-2018-binary.dxf"),
		"model.ifc":         ifc,
		"truncated.ifc":     ifc[:len(ifc)-40],
		"part.step":         step,
		"plans/floor 1.pdf": twoPages,
	}
	server := newTestServer(t, files)
	dir := t.TempDir()
	for name, data := range map[string][]byte{"local.pdf": twoPages, "local.dxf": dxf} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	placeholders := strings.NewReplacer("{server}", server.URL, "{dir}", dir, "{closed}", closedPort(t))
	s3Env := map[string]string{
		"AWS_ACCESS_KEY_ID":     testAccessKey,
		"AWS_SECRET_ACCESS_KEY": testSecretKey,
		"AWS_REGION":            testRegion,
		"AWS_ENDPOINT_URL":      server.URL + "/s3",
	}
	withEnv := func(base map[string]string, name, value string) map[string]string {
		env := map[string]string{name: value}
		for k, v := range base {
			if k != name {
				env[k] = v
			}
		}
		return env
	}

	tests := []struct {
		name    string
		format  string
		source  string
		options string
		env     map[string]string
		args    []string
		// wantCode 0 means success, with wantResult a subset of the result.
		wantCode    int
		wantType    string
		wantMessage string
		wantResult  map[string]any
	}{
		// Successes.
		{
			name: "a PDF with two pages over HTTP succeeds and reports its size, hash and pages", format: "pdf",
			source: "{server}/files/two-pages.pdf",
			wantResult: map[string]any{
				"format": "pdf", "size": len(twoPages), "sha256": sha256Hex(twoPages), "version": "1.7", "pages": 2,
			},
		},
		{
			name: "a PDF sent without a Content-Length succeeds", format: "pdf",
			source:     "{server}/chunked/two-pages.pdf",
			wantResult: map[string]any{"size": len(twoPages), "pages": 2},
		},
		{
			name: "a PDF from a file URL succeeds", format: "pdf",
			source:     "file://{dir}/local.pdf",
			wantResult: map[string]any{"sha256": sha256Hex(twoPages), "pages": 2},
		},
		{
			name: "a DXF succeeds and counts its entities by type", format: "dxf",
			source: "{server}/files/plan.dxf",
			wantResult: map[string]any{
				"format": "dxf", "size": len(dxf), "version": "AC1027", "release": "2013",
				"sections": []string{"HEADER", "TABLES", "ENTITIES"}, "entities": 4,
				"entityTypes": map[string]int{"LINE": 2, "CIRCLE": 1, "TEXT": 1},
			},
		},
		{
			name: "a binary DXF succeeds and counts its entities by type as for ASCII DXF", format: "dxf",
			source: "{server}/files/plan-binary.dxf",
			wantResult: map[string]any{
				"version": "AC1032", "release": "2018", "entities": 12,
				"entityTypes": map[string]int{"LINE": 3, "CIRCLE": 1, "ARC": 1, "TEXT": 1, "POLYLINE": 1, "VERTEX": 3, "SEQEND": 1, "LWPOLYLINE": 1},
			},
		},
		{
			name: "an IFC model succeeds with its schema and entity counts", format: "ifc",
			source: "{server}/files/model.ifc",
			wantResult: map[string]any{
				"format": "ifc", "schema": "IFC4", "entities": 4,
				"entityTypes": map[string]int{"IFCPROJECT": 1, "IFCWALL": 2, "IFCDOOR": 1},
			},
		},
		{
			name: "a STEP part succeeds with its schema and entity counts", format: "step",
			source: "{server}/files/part.step",
			wantResult: map[string]any{
				"schema": "AUTOMOTIVE_DESIGN { 1 0 10303 214 1 1 1 1 }", "entities": 4,
				"entityTypes": map[string]int{"CARTESIAN_POINT": 2, "DIRECTION": 1, "(complex)": 1},
			},
		},
		{
			name: "a PNG drawing for Werk24 succeeds with its dimensions", format: "werk24",
			source:     "{server}/files/picture.png",
			wantResult: map[string]any{"format": "werk24", "drawingType": "png", "width": 40, "height": 30},
		},
		{
			name: "a JPEG drawing for Werk24 succeeds with its dimensions", format: "werk24",
			source:     "{server}/files/photo.jpg",
			wantResult: map[string]any{"drawingType": "jpeg", "width": 64, "height": 48},
		},
		{
			name: "a PDF drawing for Werk24 succeeds with its pages", format: "werk24",
			source:     "{server}/files/two-pages.pdf",
			wantResult: map[string]any{"drawingType": "pdf", "pages": 2},
		},
		{
			name: "a source behind a bearer token succeeds with EXTRACTION_HTTP_AUTHORIZATION", format: "pdf",
			source: "{server}/private/two-pages.pdf", env: map[string]string{"EXTRACTION_HTTP_AUTHORIZATION": bearerToken},
			wantResult: map[string]any{"pages": 2},
		},
		{
			name: "an S3 object succeeds with a valid signature, even with a space in its key", format: "pdf",
			source: "s3://drawings/plans/floor%201.pdf", env: s3Env,
			wantResult: map[string]any{"sha256": sha256Hex(twoPages), "pages": 2},
		},
		{
			name: "an S3 object succeeds with temporary credentials", format: "pdf",
			source: "s3://drawings/two-pages.pdf", env: withEnv(s3Env, "AWS_SESSION_TOKEN", "session-token"),
			wantResult: map[string]any{"pages": 2},
		},
		{
			name: "a file of exactly maxBytes is accepted", format: "pdf",
			source: "{server}/chunked/two-pages.pdf", options: fmt.Sprintf(`{"maxBytes":"%d"}`, len(twoPages)),
			wantResult: map[string]any{"size": len(twoPages)},
		},

		// The source cannot be fetched.
		{
			name: "HTTP 429 is RateLimitExceeded and passes Retry-After on", format: "pdf",
			source:   "{server}/status/429",
			wantCode: 75, wantType: "RateLimitExceeded", wantMessage: "429 Too Many Requests (a body of 13 bytes that looks like text/plain)\nRetry-After: 7",
		},
		{
			name: "HTTP 500 is ServiceUnavailable", format: "pdf",
			source:   "{server}/status/500",
			wantCode: 69, wantType: "ServiceUnavailable", wantMessage: "500 Internal Server Error",
		},
		{
			name: "HTTP 503 is ServiceUnavailable", format: "pdf",
			source:   "{server}/status/503",
			wantCode: 69, wantType: "ServiceUnavailable", wantMessage: "503 Service Unavailable",
		},
		{
			name: "HTTP 401 is AuthenticationFailed", format: "pdf",
			source:   "{server}/private/two-pages.pdf",
			wantCode: 77, wantType: "AuthenticationFailed", wantMessage: "401 Unauthorized",
		},
		{
			name: "HTTP 403 is PermissionDenied", format: "pdf",
			source:   "{server}/status/403",
			wantCode: 77, wantType: "PermissionDenied", wantMessage: "403 Forbidden",
		},
		{
			name: "HTTP 404 is SourceNotFound", format: "pdf",
			source:   "{server}/files/nothing.pdf",
			wantCode: 66, wantType: "SourceNotFound", wantMessage: "404 Not Found",
		},
		{
			name: "any other HTTP status is UnexpectedResponse", format: "pdf",
			source:   "{server}/status/418",
			wantCode: 76, wantType: "UnexpectedResponse", wantMessage: "418 I'm a teapot",
		},
		{
			name: "a closed loopback port is ConnectionError", format: "pdf",
			source:   "http://{closed}/a.pdf",
			wantCode: 75, wantType: "ConnectionError", wantMessage: "connection refused",
		},
		{
			name: "a download cut short is ConnectionError, not CorruptedFile", format: "pdf",
			source:   "{server}/short",
			wantCode: 75, wantType: "ConnectionError", wantMessage: "closed before the whole file arrived",
		},
		{
			name: "a server that never answers is TimeoutError once the timeout option runs out", format: "pdf",
			source: "{server}/stall", options: `{"timeout":"300ms"}`,
			wantCode: 75, wantType: "TimeoutError", wantMessage: "timeout of 300ms",
		},
		{
			name: "a missing local file is SourceNotFound", format: "pdf",
			source:   "file://{dir}/nothing.pdf",
			wantCode: 66, wantType: "SourceNotFound", wantMessage: "no such file",
		},
		{
			name: "the query of a presigned URL never appears in a message", format: "pdf",
			source:   "{server}/files/nothing.pdf?X-Amz-Signature=top-secret",
			wantCode: 66, wantType: "SourceNotFound", wantMessage: "/files/nothing.pdf?… answered 404",
		},

		// S3.
		{
			name: "an S3 source without credentials is AuthenticationFailed", format: "pdf",
			source:   "s3://drawings/two-pages.pdf",
			wantCode: 77, wantType: "AuthenticationFailed", wantMessage: "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		},
		{
			name: "an S3 signature made with the wrong secret is AuthenticationFailed", format: "pdf",
			source: "s3://drawings/two-pages.pdf", env: withEnv(s3Env, "AWS_SECRET_ACCESS_KEY", "not-the-secret"),
			wantCode: 77, wantType: "AuthenticationFailed", wantMessage: "403 SignatureDoesNotMatch",
		},
		{
			name: "S3 AccessDenied is PermissionDenied", format: "pdf",
			source: "s3://drawings/denied.pdf", env: s3Env,
			wantCode: 77, wantType: "PermissionDenied", wantMessage: "403 AccessDenied",
		},
		{
			name: "S3 NoSuchKey is SourceNotFound", format: "pdf",
			source: "s3://drawings/missing.pdf", env: s3Env,
			wantCode: 66, wantType: "SourceNotFound", wantMessage: "404 NoSuchKey",
		},
		{
			name: "S3 SlowDown is RateLimitExceeded although S3 sends it as 503", format: "pdf",
			source: "s3://drawings/throttled.pdf", env: s3Env,
			wantCode: 75, wantType: "RateLimitExceeded", wantMessage: "503 SlowDown",
		},

		// The source is too large.
		{
			name: "a source declaring more than maxBytes is FileTooLarge before it is read", format: "pdf",
			source: "{server}/files/two-pages.pdf", options: `{"maxBytes":"100"}`,
			wantCode: 65, wantType: "FileTooLarge", wantMessage: fmt.Sprintf("it declares %d bytes", len(twoPages)),
		},
		{
			name: "a streamed source growing past maxBytes is FileTooLarge", format: "pdf",
			source: "{server}/chunked/two-pages.pdf", options: fmt.Sprintf(`{"maxBytes":"%d"}`, len(twoPages)-1),
			wantCode: 65, wantType: "FileTooLarge", wantMessage: fmt.Sprintf("limit of %d bytes", len(twoPages)-1),
		},
		{
			name: "the --max-bytes flag limits the size when the job sets no maxBytes", format: "dxf",
			source: "file://{dir}/local.dxf", args: []string{"--max-bytes=64"},
			wantCode: 65, wantType: "FileTooLarge", wantMessage: "limit of 64 bytes",
		},

		// The file is not what the job says.
		{
			name: "a PNG declared as a PDF is InvalidFileType", format: "pdf",
			source:   "{server}/files/picture.png",
			wantCode: 65, wantType: "InvalidFileType", wantMessage: "it looks like image/png",
		},
		{
			name: "an HTML page served in place of a PDF is InvalidFileType", format: "pdf",
			source:   "{server}/files/error-page.pdf",
			wantCode: 65, wantType: "InvalidFileType", wantMessage: "it looks like text/html",
		},
		{
			name: "a PDF declared as DXF is InvalidFileType", format: "dxf",
			source:   "{server}/files/two-pages.pdf",
			wantCode: 65, wantType: "InvalidFileType", wantMessage: "not DXF",
		},
		{
			name: "a DXF declared as IFC is InvalidFileType", format: "ifc",
			source:   "{server}/files/plan.dxf",
			wantCode: 65, wantType: "InvalidFileType", wantMessage: `no "ISO-10303-21;" header`,
		},
		{
			name: "a STEP part declared as IFC is InvalidFileType", format: "ifc",
			source:   "{server}/files/part.step",
			wantCode: 65, wantType: "InvalidFileType", wantMessage: "not an IFC file",
		},
		{
			name: "a DXF declared as a Werk24 drawing is InvalidFileType", format: "werk24",
			source:   "{server}/files/plan.dxf",
			wantCode: 65, wantType: "InvalidFileType", wantMessage: "must be a PNG, JPEG or PDF",
		},

		// The file is broken.
		{
			name: "a truncated PDF is CorruptedFile", format: "pdf",
			source:   "{server}/files/truncated.pdf",
			wantCode: 65, wantType: "CorruptedFile", wantMessage: "no %%EOF",
		},
		{
			name: "an empty file is CorruptedFile", format: "pdf",
			source:   "{server}/files/empty.pdf",
			wantCode: 65, wantType: "CorruptedFile", wantMessage: "empty",
		},
		{
			name: "a truncated DXF is CorruptedFile", format: "dxf",
			source:   "{server}/files/truncated.dxf",
			wantCode: 65, wantType: "CorruptedFile", wantMessage: "truncated",
		},
		{
			name: "a truncated IFC model is CorruptedFile", format: "ifc",
			source:   "{server}/files/truncated.ifc",
			wantCode: 65, wantType: "CorruptedFile", wantMessage: "truncated",
		},
		{
			name: "a truncated PNG drawing is CorruptedFile", format: "werk24",
			source:   "{server}/files/truncated.png",
			wantCode: 65, wantType: "CorruptedFile", wantMessage: "IEND",
		},

		// The job asks for something this extractor does not do.
		{
			name: "an unknown format is UnsupportedFormat", format: "docx",
			source:   "{server}/files/two-pages.pdf",
			wantCode: 65, wantType: "UnsupportedFormat", wantMessage: `"docx"`,
		},
		{
			name: "an unknown URL scheme is UnsupportedFormat", format: "pdf",
			source:   "ftp://example.com/a.pdf",
			wantCode: 65, wantType: "UnsupportedFormat", wantMessage: `scheme "ftp"`,
		},
		{
			name: "options that are not a JSON object of strings are a UsageError", format: "pdf",
			source: "{server}/files/two-pages.pdf", options: `{"maxBytes":100}`,
			wantCode: 64, wantType: "UsageError", wantMessage: "EXTRACTION_OPTIONS",
		},
		{
			name: "a maxBytes that is not a size is a UsageError", format: "pdf",
			source: "{server}/files/two-pages.pdf", options: `{"maxBytes":"lots"}`,
			wantCode: 64, wantType: "UsageError", wantMessage: "maxBytes",
		},
		{
			name: "a missing source URL is a UsageError", format: "pdf",
			wantCode: 64, wantType: "UsageError", wantMessage: "EXTRACTION_SOURCE_URL is not set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"EXTRACTION_FORMAT":                tt.format,
				"EXTRACTION_SOURCE_URL":            placeholders.Replace(tt.source),
				"EXTRACTION_OPTIONS":               tt.options,
				"EXTRACTION_ATTEMPT":               "1",
				podcontract.EnvAllowedDestinations: loopbackAllowed,
			}
			for name, value := range tt.env {
				env[name] = value
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got := runExtractor(t, ctx, env, tt.args...)
			t.Logf("exit code %d, termination message: %s", got.exitCode, got.message)
			checkContract(t, got)

			if got.exitCode != tt.wantCode {
				t.Fatalf("exit code %d, want %d; termination message %q", got.exitCode, tt.wantCode, got.message)
			}
			if tt.wantCode != 0 {
				if got.errorType() != tt.wantType {
					t.Errorf("error type %q, want %q; termination message %q", got.errorType(), tt.wantType, got.message)
				}
				if !strings.Contains(got.message, tt.wantMessage) {
					t.Errorf("termination message %q does not contain %q", got.message, tt.wantMessage)
				}
				if strings.Contains(got.message+got.stderr, "top-secret") {
					t.Errorf("a presigned URL's query leaked: %q", got.message)
				}
				return
			}
			var result map[string]any
			json.Unmarshal([]byte(got.message), &result)
			for key, want := range tt.wantResult {
				if !reflect.DeepEqual(result[key], asJSON(t, want)) {
					t.Errorf("result %s = %v, want %v; result %s", key, result[key], want, got.message)
				}
			}
		})
	}
}

func TestProgramInterrupted(t *testing.T) {
	server := newTestServer(t, nil)
	t.Run("SIGTERM during a download is Interrupted, a temporary failure", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd, wait := startExtractor(t, ctx, map[string]string{
			"EXTRACTION_FORMAT":                "pdf",
			"EXTRACTION_SOURCE_URL":            server.URL + "/stall",
			podcontract.EnvAllowedDestinations: loopbackAllowed,
		})
		select {
		case <-server.stalled:
			// The request has arrived, so the extractor waits for the answer.
		case <-ctx.Done():
			t.Fatal("the extractor never asked the server")
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		got := wait()
		checkContract(t, got)
		if got.exitCode != 75 || got.errorType() != "Interrupted" {
			t.Errorf("exit code %d and message %q, want 75 and Interrupted", got.exitCode, got.message)
		}
	})
}

func TestProgramWithoutTerminationLog(t *testing.T) {
	t.Run("a termination log that cannot be written still leaves the exit code and the log line", func(t *testing.T) {
		cmd := exec.Command(extractorBinary, "--termination-log="+filepath.Join(t.TempDir(), "no", "such", "dir"))
		cmd.Env = []string{"EXTRACTION_FORMAT=docx", "EXTRACTION_SOURCE_URL=file:///x"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 65 {
			t.Errorf("exit code %d, want 65", code)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "UnsupportedFormat: ") {
			t.Errorf("last log line %q, want the failure", last)
		}
	})
}
