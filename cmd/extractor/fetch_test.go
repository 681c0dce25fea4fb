package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestHTTPStatusFailure(t *testing.T) {
	tests := []struct {
		status   int
		wantType string
	}{
		{401, podcontract.AuthenticationFailed},
		{403, podcontract.PermissionDenied},
		{404, podcontract.SourceNotFound},
		{410, podcontract.SourceNotFound},
		{408, podcontract.TimeoutError},
		{429, podcontract.RateLimitExceeded},
		{500, podcontract.ServiceUnavailable},
		{502, podcontract.ServiceUnavailable},
		{503, podcontract.ServiceUnavailable},
		{504, podcontract.ServiceUnavailable},
		{400, podcontract.UnexpectedResponse},
		{304, podcontract.UnexpectedResponse},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("HTTP %d is %s", tt.status, tt.wantType), func(t *testing.T) {
			got := httpStatusFailure(tt.status, http.Header{}, nil, "https://example.com/a.pdf")
			if got.errorType != tt.wantType {
				t.Errorf("got %s", got.terminationMessage())
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a plain URL is shown as it is", "https://example.com/a.pdf", "https://example.com/a.pdf"},
		{"a query, which presigned URLs sign with, is hidden", "https://example.com/a.pdf?X-Amz-Signature=secret", "https://example.com/a.pdf?…"},
		{"user information is dropped", "https://user:password@example.com/a.pdf", "https://example.com/a.pdf"},
		{"a fragment is dropped", "https://example.com/a.pdf#token=secret", "https://example.com/a.pdf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := redactURL(u); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLimitedReader(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		limit    int64
		wantType string
	}{
		{name: "a file below the limit is read whole", size: 99, limit: 100},
		{name: "a file of exactly the limit is read whole", size: 100, limit: 100},
		{name: "a file one byte over the limit is FileTooLarge", size: 101, limit: 100, wantType: podcontract.FileTooLarge},
		{name: "a much larger file is FileTooLarge", size: 1 << 20, limit: 100, wantType: podcontract.FileTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &limitedReader{r: bytes.NewReader(make([]byte, tt.size)), limit: tt.limit}
			n, err := io.Copy(io.Discard, r)
			if tt.wantType != "" {
				wantFailure(t, err, tt.wantType, fmt.Sprintf("limit of %d bytes", tt.limit))
				if n > tt.limit+1 {
					t.Errorf("read %d bytes, more than one past the limit", n)
				}
				return
			}
			if err != nil || n != int64(tt.size) {
				t.Errorf("read %d bytes and %v", n, err)
			}
		})
	}
}

func TestNetworkFailure(t *testing.T) {
	expired, cancel := context.WithTimeoutCause(context.Background(), 0, errors.New("the timeout ran out"))
	defer cancel()
	interrupted, stop := context.WithCancel(context.Background())
	stop()
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		wantType string
	}{
		{"a refused connection is ConnectionError", context.Background(),
			&url.Error{Op: "Get", URL: "http://x?secret", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}, podcontract.ConnectionError},
		{"a reset connection is ConnectionError", context.Background(), &net.OpError{Op: "read", Err: syscall.ECONNRESET}, podcontract.ConnectionError},
		{"a body cut short is ConnectionError", context.Background(), io.ErrUnexpectedEOF, podcontract.ConnectionError},
		{"an unknown host is ConnectionError", context.Background(), &net.DNSError{Err: "no such host", Name: "nowhere.invalid", IsNotFound: true}, podcontract.ConnectionError},
		{"a network timeout is TimeoutError", context.Background(), &net.DNSError{Err: "timeout", IsTimeout: true}, podcontract.TimeoutError},
		{"an expired run is TimeoutError whatever the transport says", expired, errors.New("read: connection reset"), podcontract.TimeoutError},
		{"a cancelled run is Interrupted", interrupted, errors.New("context canceled"), podcontract.Interrupted},
		{"a failure passes through unchanged", context.Background(), fail(podcontract.FileTooLarge, nil, "big"), podcontract.FileTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := asFailure(networkFailure(tt.ctx, tt.err, "fetching http://x"))
			if got.errorType != tt.wantType {
				t.Errorf("got %s, want %s", got.terminationMessage(), tt.wantType)
			}
			if bytes.Contains([]byte(got.terminationMessage()), []byte("secret")) {
				t.Errorf("the URL's query leaked: %s", got.terminationMessage())
			}
		})
	}
}
