//go:build chaos

// Package chaos kills, restarts and starves the ExtractionJob operator while
// jobs with a mix of failures run through a real kube-apiserver and etcd, and
// checks afterwards that nothing was lost, done twice, done early or left
// stuck. The test plays the kubelet with test/harness/sim: it moves each
// attempt's Pod to Running and then to the outcome that the job's
// sim.extraction.pybase.io/attempts annotation names for that attempt.
//
// Run it with `make test-chaos-short` (about 3 minutes) or `make test-chaos`
// (1,000 jobs, at least 20 operator kills, two kube-apiserver restarts). It is
// built only with the `chaos` tag, so `go test ./...` skips it.
//
// Environment:
//
//	CHAOS_PROFILE             short (default) or long
//	CHAOS_JOBS                jobs in the kill-and-restart run
//	CHAOS_KILLS               operator SIGKILLs in that run
//	CHAOS_APISERVER_RESTARTS  kube-apiserver restarts in that run
//	CHAOS_WRITE_JOBS          jobs in the write-failure run
//	CHAOS_LEADER_JOBS         jobs in the leader-election run
//	CHAOS_SEED                seed of the job mix and of the fault timing
//	CHAOS_ARTIFACTS           where logs and evidence go (default bin/chaos)
//	KUBEBUILDER_ASSETS        directory with etcd and kube-apiserver (default bin/envtest-*)
//
// The control plane, the operator process, the simulated kubelet and the
// job builders come from test/harness; this package holds the scenarios and
// their checks.
package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/harness"
	"github.com/pybase/extraction-operator/test/harness/builders"
	"github.com/pybase/extraction-operator/test/harness/controlplane"
	"github.com/pybase/extraction-operator/test/harness/operator"
)

// profile sizes a run.
type profile struct {
	name string
	// The kill-and-restart run.
	jobs, kills, apiRestarts int
	killGapMin, killGapMax   time.Duration
	createOver               time.Duration
	// The other runs.
	writeJobs, leaderJobs, leaderKills int
	writeFailRate                      float64
	// converge bounds how long after the last fault every job must be finished.
	converge time.Duration
	// quiet is how long the operator log must stay free of reconcile errors
	// once everything finished.
	quiet time.Duration
}

var profiles = map[string]profile{
	"short": {
		name: "short", jobs: 100, kills: 5, apiRestarts: 1,
		killGapMin: 2 * time.Second, killGapMax: 7 * time.Second, createOver: 10 * time.Second,
		writeJobs: 50, leaderJobs: 40, leaderKills: 1, writeFailRate: 0.2,
		converge: 90 * time.Second, quiet: 5 * time.Second,
	},
	"long": {
		name: "long", jobs: 1000, kills: 24, apiRestarts: 2,
		killGapMin: 3 * time.Second, killGapMax: 10 * time.Second, createOver: 2 * time.Minute,
		writeJobs: 300, leaderJobs: 200, leaderKills: 2, writeFailRate: 0.2,
		converge: 5 * time.Minute, quiet: 10 * time.Second,
	},
}

var (
	prof       profile
	seed       uint64
	root       string // the repository
	artifacts  string // logs, kubeconfigs and evidence of this run
	cp         *controlplane.ControlPlane
	scheme     = runtime.NewScheme()
	admin      client.WithWatch // the test's own client, never faulty
	adminCfg   *rest.Config
	manager    string // the operator binary built from ./cmd
	summaryMu  sync.Mutex
	summaryLog *os.File
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if err := setUp(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: setting up:", err)
		if cp != nil {
			_ = cp.Stop()
		}
		return 1
	}
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: stopping the control plane:", err)
	}
	fmt.Printf("chaos: logs and evidence in %s\n", artifacts)
	return code
}

func setUp() error {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(ejv1.AddToScheme(scheme))

	name := envOr("CHAOS_PROFILE", "short")
	p, ok := profiles[name]
	if !ok {
		return fmt.Errorf("CHAOS_PROFILE=%q: want short or long", name)
	}
	p.jobs = envInt("CHAOS_JOBS", p.jobs)
	p.kills = envInt("CHAOS_KILLS", p.kills)
	p.apiRestarts = envInt("CHAOS_APISERVER_RESTARTS", p.apiRestarts)
	p.writeJobs = envInt("CHAOS_WRITE_JOBS", p.writeJobs)
	p.leaderJobs = envInt("CHAOS_LEADER_JOBS", p.leaderJobs)
	prof = p
	seed = uint64(envInt("CHAOS_SEED", int(time.Now().UnixNano()%1_000_000)))

	var err error
	if root, err = harness.RepoRoot(); err != nil {
		return err
	}
	artifacts = envOr("CHAOS_ARTIFACTS", filepath.Join(root, "bin", "chaos"))
	artifacts = filepath.Join(artifacts, time.Now().Format("20060102-150405")+"-"+prof.name)
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return err
	}
	if summaryLog, err = os.Create(filepath.Join(artifacts, "summary.txt")); err != nil {
		return err
	}
	fmt.Printf("chaos: profile %s, seed %d, artifacts %s\n", prof.name, seed, artifacts)

	// The in-process operator of the write-failure run and the test's own
	// informers log here, not to the test output.
	testLog, err := os.Create(filepath.Join(artifacts, "test-process.log"))
	if err != nil {
		return err
	}
	logger := zap.New(zap.WriteTo(testLog))
	logf.SetLogger(logger)
	klog.SetLogger(logger)

	start := time.Now()
	if manager, err = operator.Build(root, artifacts); err != nil {
		return err
	}
	fmt.Printf("chaos: built the operator in %s\n", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	cp, err = controlplane.Start(controlplane.Options{Dir: filepath.Join(artifacts, "control-plane"), Scheme: scheme})
	if err != nil {
		return err
	}
	adminCfg = cp.Config(500, 1000)
	if admin, err = client.NewWithWatch(adminCfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	fmt.Printf("chaos: etcd and kube-apiserver ready in %s (%s)\n", time.Since(start).Round(time.Millisecond), cp.URL())
	// Every run's jobs that name no class run in the default class.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cp.CreateDefaultClass(ctx, chaosImage); err != nil {
		return err
	}
	return nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

func envInt(key string, fallback int) int {
	v := os.Getenv(key)
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		panic(fmt.Sprintf("%s=%q is not a number", key, v))
	}
	return n
}

// newRand is a source for one run, derived from the suite's seed.
func newRand(run string) *rand.Rand {
	var h uint64 = 14695981039346656037
	for _, c := range run {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h))
}

// lockedRand is a rand.Rand safe for use from many goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) duration(min, max time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max <= min {
		return min
	}
	return min + time.Duration(l.r.Int64N(int64(max-min)))
}

func (l *lockedRand) float() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

func (l *lockedRand) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// newNamespace creates a namespace for one run.
func newNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := builders.Namespace(prefix+"-", nil)
	if err := admin.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	return ns.Name
}

// summary prints a run's one-line summary and keeps it in summary.txt.
func summary(format string, args ...any) string {
	line := fmt.Sprintf(format, args...)
	summaryMu.Lock()
	defer summaryMu.Unlock()
	fmt.Println(line)
	fmt.Fprintln(summaryLog, line)
	return line
}

// retryUntil calls fn until it succeeds or the timeout passes, riding out
// API server restarts.
func retryUntil(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		callCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err = fn(callCtx)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(wait)
	}
}

func shortError(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ")
}
