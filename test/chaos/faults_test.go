//go:build chaos

package chaos

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pybase/extraction-operator/test/harness/operator"
)

// operatorArgs are the flags every chaos operator runs with.
func operatorArgs(extra ...string) []string {
	return append([]string{
		"--kubeconfig=" + cp.AdminKubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
	}, extra...)
}

// faultInjector fails a share of the write requests (POST, PUT, PATCH,
// DELETE) of the client it wraps: a 409 Conflict or a 500 that the API server
// never saw, a timeout before the request was sent, or a timeout after the API
// server applied it, so the operator cannot tell whether its write landed.
type faultInjector struct {
	rate float64
	mu   sync.Mutex
	r    *rand.Rand
	on   bool
	// counts by kind of fault.
	counts map[string]int
	writes int
}

func newFaultInjector(rate float64, r *rand.Rand) *faultInjector {
	return &faultInjector{rate: rate, r: r, counts: map[string]int{}}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type injectedTimeout struct{ after bool }

func (e injectedTimeout) Error() string {
	if e.after {
		return "chaos: injected timeout after the request was sent: i/o timeout"
	}
	return "chaos: injected timeout before the request was sent: i/o timeout"
}
func (injectedTimeout) Timeout() bool   { return true }
func (injectedTimeout) Temporary() bool { return true }

func (f *faultInjector) enable(on bool) {
	f.mu.Lock()
	f.on = on
	f.mu.Unlock()
}

func (f *faultInjector) total() (int, map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	counts := map[string]int{}
	n := 0
	for k, v := range f.counts {
		counts[k] = v
		n += v
	}
	return n, counts, f.writes
}

func (f *faultInjector) pick(req *http.Request) string {
	switch req.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return ""
	}
	f.writes++
	if f.r.Float64() >= f.rate {
		return ""
	}
	kind := []string{"409", "500", "timeout-before-send", "timeout-after-send"}[f.r.IntN(4)]
	f.counts[kind]++
	return kind
}

func (f *faultInjector) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		kind := f.pick(req)
		switch kind {
		case "":
			return rt.RoundTrip(req)
		case "timeout-after-send":
			resp, err := rt.RoundTrip(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return nil, injectedTimeout{after: true}
		}
		if req.Body != nil {
			req.Body.Close()
		}
		if kind == "timeout-before-send" {
			time.Sleep(50 * time.Millisecond)
			return nil, injectedTimeout{}
		}
		code, reason := http.StatusConflict, "Conflict"
		if kind == "500" {
			code, reason = http.StatusInternalServerError, "InternalError"
		}
		body := fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"chaos: injected %d","reason":%q,"code":%d}`, code, reason, code)
		return &http.Response{
			StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"Content-Type": []string{"application/json"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}, nil
	})
}

// startInProcessOperator runs the operator in-process on a client whose
// writes the injector fails, logging JSON to logPath, and returns a
// function that stops it.
func startInProcessOperator(injector *faultInjector, logPath string) (func(), error) {
	cfg := cp.Config(50, 100)
	cfg.Wrap(injector.wrap)
	return operator.StartInProcess(operator.InProcessOptions{
		Config: cfg, Scheme: scheme, LogPath: logPath, MaxConcurrentReconciles: 4,
	})
}
