//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pybase/extraction-operator/controllers"
)

// operatorProcess runs bin/manager (built from ./cmd) as a child process that
// the test SIGKILLs and starts again. Every incarnation appends to one log,
// separated by marker lines.
type operatorProcess struct {
	name    string
	command []string // program and arguments
	logPath string
	log     *os.File

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
	kills  int
}

// operatorArgs are the flags every chaos operator runs with.
func operatorArgs(extra ...string) []string {
	return append([]string{
		"--kubeconfig=" + cp.kubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--extractor-image=" + chaosImage,
	}, extra...)
}

func newOperatorProcess(dir, name string, command []string) (*operatorProcess, error) {
	logPath := filepath.Join(dir, name+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &operatorProcess{name: name, command: command, logPath: logPath, log: log}, nil
}

func (p *operatorProcess) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	fmt.Fprintf(p.log, "=== chaos: start #%d of %s at %s ===\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.command[0], p.command[1:]...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *operatorProcess) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		fmt.Fprintf(p.log, "=== chaos: %s had already exited (%v) ===\n", p.name, p.cmd.ProcessState)
	default:
		fmt.Fprintf(p.log, "\n=== chaos: SIGKILL to %s (pid %d) at %s ===\n", p.name, p.cmd.Process.Pid, time.Now().Format(time.RFC3339Nano))
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
		p.kills++
	}
	p.cmd = nil
}

// running reports whether the current incarnation is alive.
func (p *operatorProcess) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *operatorProcess) exitedUnexpectedly() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return ""
	}
	select {
	case <-p.exited:
		return fmt.Sprintf("%s exited on its own: %v", p.name, p.cmd.ProcessState)
	default:
		return ""
	}
}

func (p *operatorProcess) logSize() int64 {
	info, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return info.Size()
}

// logLine is one JSON line of the operator's zap log.
type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Error     string `json:"error"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	raw       string
}

// readLog parses the operator's log from an offset; lines that are not JSON
// (markers, klog) are kept raw.
func readLog(path string, offset int64) []logLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil
	}
	var lines []logLine
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		var l logLine
		_ = json.Unmarshal(scanner.Bytes(), &l)
		l.raw = scanner.Text()
		lines = append(lines, l)
	}
	return lines
}

// reconcileErrors are the operator's "Reconciler error" lines, by job (namespace/name).
func reconcileErrors(lines []logLine) map[string][]string {
	errs := map[string][]string{}
	for _, l := range lines {
		if l.Msg == "Reconciler error" {
			key := l.Namespace + "/" + l.Name
			errs[key] = append(errs[key], l.Error)
		}
	}
	return errs
}

func countErrors(errs map[string][]string) int {
	n := 0
	for _, e := range errs {
		n += len(e)
	}
	return n
}

// logExcerpt is every log line that mentions one of the words, at most max.
func logExcerpt(path string, max int, words ...string) []string {
	var out []string
	for _, l := range readLog(path, 0) {
		for _, w := range words {
			if w != "" && strings.Contains(l.raw, w) {
				out = append(out, l.raw)
				break
			}
		}
		if strings.HasPrefix(l.raw, "=== chaos:") || strings.HasPrefix(strings.TrimSpace(l.raw), "=== chaos:") {
			out = append(out, l.raw)
		}
	}
	if len(out) > max {
		out = append(out[:max/2], append([]string{"…"}, out[len(out)-max/2:]...)...)
	}
	return out
}

// The write-failure run's in-process operator.

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

// startInProcessOperator runs the reconciler as cmd/main.go does, through the
// exported API only, on a client whose writes the injector fails. It logs
// JSON to logPath and returns a function that stops it.
func startInProcessOperator(injector *faultInjector, logPath string) (func(), error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(cp.restConfig(50, 100))
	cfg.Wrap(injector.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  controllers.CacheOptions(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 zap.New(zap.WriteTo(logFile)),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true), MaxConcurrentReconciles: 4},
	})
	if err != nil {
		return nil, err
	}
	reconciler := &controllers.ExtractionJobReconciler{
		Client:               mgr.GetClient(),
		APIReader:            mgr.GetAPIReader(),
		Recorder:             mgr.GetEventRecorder("extraction-operator"),
		Clock:                clock.RealClock{},
		Jitter:               rand.Float64,
		Images:               controllers.ExtractorImages{Default: chaosImage},
		ImagePullGracePeriod: time.Minute,
	}
	if err := reconciler.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
		logFile.Close()
	}, nil
}
