package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/pybase/extraction-operator/api/podcontract"
)

func TestWithRetryAfterReadsBothFormsOfTheHeader(t *testing.T) {
	now := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header string
		want   time.Duration
	}{
		{"seconds are passed on", "120", 2 * time.Minute},
		{"an HTTP date is counted from the extractor's clock", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"the obsolete RFC 850 date form is read too", now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{"a date in the past asks for no wait", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"zero asks for no wait", "0", 0},
		{"a negative number asks for no wait", "-5", 0},
		{"garbage asks for no wait", "soon", 0},
		{"no header asks for no wait", "", 0},
		{"seconds beyond a time.Duration ask for no wait", "9999999999999", 0},
		{"years are passed on, for the operator to cap", "315360000", 315360000 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{}
			if tc.header != "" {
				header.Set("Retry-After", tc.header)
			}
			if got := withRetryAfter(fail(podcontract.RateLimitExceeded, nil, "x"), header, now).retryAfter; got != tc.want {
				t.Errorf("Retry-After %q gave %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

// hintOf is the wait the operator would read from the failure's termination message.
func hintOf(t *testing.T, err error) time.Duration {
	t.Helper()
	message := asFailure(err).terminationMessage()
	wait, parseErr := podcontract.ParseRetryAfter(message)
	if parseErr != nil {
		t.Fatalf("the operator cannot read the hint of %q: %v", message, parseErr)
	}
	return wait
}

func TestHTTPRetryAfterIsPassedOn(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		header  func() string
		atLeast time.Duration
		atMost  time.Duration
	}{
		{"a 429 with seconds", http.StatusTooManyRequests, func() string { return "7" }, 7 * time.Second, 7 * time.Second},
		{"a 503 with an HTTP date", http.StatusServiceUnavailable,
			func() string { return time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat) }, 118 * time.Second, 120 * time.Second},
		{"a 503 with a date in the past", http.StatusServiceUnavailable,
			func() string { return time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat) }, 0, 0},
		{"a 500, which is no throttling answer", http.StatusInternalServerError, func() string { return "7" }, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.header())
				http.Error(w, "busy", tc.status)
			}))
			defer server.Close()
			u, _ := url.Parse(server.URL + "/a.pdf")
			_, err := openHTTP(context.Background(), server.Client(), u, "")
			if err == nil {
				t.Fatal("a failed answer opened a source")
			}
			if got := hintOf(t, err); got < tc.atLeast || got > tc.atMost {
				t.Errorf("hint %v, want between %v and %v; termination message %q", got, tc.atLeast, tc.atMost, asFailure(err).terminationMessage())
			}
		})
	}
}

func TestS3ThrottlingAnswersPassRetryAfterOn(t *testing.T) {
	cases := []struct {
		name, source, header string
		wantType             string
		atLeast, atMost      time.Duration
	}{
		{"a 503 SlowDown with seconds", "s3://drawings/throttled.pdf", "30", podcontract.RateLimitExceeded, 30 * time.Second, 30 * time.Second},
		{"a 503 SlowDown with an HTTP date", "s3://drawings/throttled.pdf",
			time.Now().Add(5 * time.Minute).UTC().Format(http.TimeFormat), podcontract.RateLimitExceeded, 4 * time.Minute, 5 * time.Minute},
		{"a 400 ThrottlingException", "s3://drawings/error/400/ThrottlingException", "12", podcontract.RateLimitExceeded, 12 * time.Second, 12 * time.Second},
		{"a 503 ServiceUnavailable", "s3://drawings/error/503/ServiceUnavailable", "9", podcontract.ServiceUnavailable, 9 * time.Second, 9 * time.Second},
		{"a 503 without a body", "s3://drawings/status/503", "9", podcontract.ServiceUnavailable, 9 * time.Second, 9 * time.Second},
		{"a 403 AccessDenied, which is no throttling answer", "s3://drawings/denied.pdf", "9", podcontract.PermissionDenied, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake, env := newS3Server(t, nil)
			fake.answerWithRetryAfter(tc.header)
			_, _, err := fetchS3(t, t.Context(), env, tc.source)
			if f := asFailure(err); f.errorType != tc.wantType {
				t.Fatalf("got %s, want %s", f.terminationMessage(), tc.wantType)
			}
			if got := hintOf(t, err); got < tc.atLeast || got > tc.atMost {
				t.Errorf("hint %v, want between %v and %v; termination message %q", got, tc.atLeast, tc.atMost, asFailure(err).terminationMessage())
			}
		})
	}
}
