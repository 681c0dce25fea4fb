// Package scenario runs the benchmark's five scenarios, each side on a
// fresh control plane, and measures them.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/sides"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// Counters count the harness's requests per client. User (creating jobs,
// watching) and Driver (the fake kubelet) are subtracted from the API
// server's counters; Side counts the in-harness ceiling driver, whose
// requests are the side's own.
type Counters struct {
	User, Driver, Side *measure.RequestCounter
}

// Run is one side on one fresh API server: the harness's watches, the fake
// kubelet and the side's controller.
type Run struct {
	Name     string
	Dir      string
	Settings *config.Settings
	Side     sides.Side
	Limits   config.Limits
	Cluster  *cluster
	Counters Counters
	Client   client.Client // the harness's, counted as User
	Tracker  *Tracker
	Kubelet  *sim.Kubelet
	// informers are the harness's watches, for a scenario that adds its own handlers.
	informers cache.Cache
	// jobFor, when set, makes the jobs instead of the side's NewJob; a
	// scenario sets it after the warm-up.
	jobFor func(name string, plan workload.Plan) client.Object
	// backend, when set, decides how each attempt ends (the outage
	// scenario's); a scenario sets it after the warm-up.
	backend atomic.Pointer[outageBackend]
	// midRun, when set, runs once the jobs are created, while they run,
	// given when the first create was sent: the restart of scenario 2's
	// variant.
	midRun func(ctx context.Context, start time.Time) error
	cancel context.CancelFunc
	// stopHarness stops the harness's watches and fake kubelet only.
	stopHarness context.CancelFunc
}

func startRun(ctx context.Context, s *config.Settings, name string, side sides.Side, limits config.Limits) (*Run, error) {
	dir := filepath.Join(s.WorkDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	Logf("%s: starting etcd and kube-apiserver", name)
	c, err := startCluster(ctx, s.Root, s.AssetsDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Run{Name: name, Dir: dir, Settings: s, Side: side, Limits: limits, Cluster: c, cancel: cancel,
		Counters: Counters{User: measure.NewRequestCounter(), Driver: measure.NewRequestCounter(), Side: measure.NewRequestCounter()}}
	if err := r.startHarness(ctx); err != nil {
		r.Close()
		return nil, err
	}
	Logf("%s: starting %s, %s", name, side.Name(), limits)
	if err := side.Start(ctx, r.sideEnv()); err != nil {
		r.Close()
		return nil, fmt.Errorf("starting %s: %w", side.Name(), err)
	}
	if err := r.warmUp(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// sideEnv is what the side runs in.
func (r *Run) sideEnv() sides.Env {
	return sides.Env{Cluster: r.Cluster.ControlPlane, Admin: r.Cluster.Admin, Dir: r.Dir, Limits: r.Limits, OperatorEnv: r.Settings.OperatorEnv, Counter: r.Counters.Side}
}

// warmUpPrefix names the jobs that warm a fresh API server up; the tracker
// leaves them out of every figure.
const warmUpPrefix = "warm-"

// warmUp runs a few jobs through before anything is measured: the first
// requests to a fresh API server and a fresh controller are slow (about 2 s
// for the first Pods), which would otherwise show as latency outliers.
func (r *Run) warmUp(ctx context.Context) error {
	const n = 5
	for _, name := range jobNames(strings.TrimSuffix(warmUpPrefix, "-"), n) {
		if err := r.createJob(ctx, name, workload.PlanSucceed); err != nil {
			return err
		}
	}
	if err := r.Tracker.WaitWarmedUp(ctx, n, 2*time.Minute, r.checkAlive); err != nil {
		return fmt.Errorf("warming up: %w", err)
	}
	time.Sleep(settle) // let the warm-up's asynchronous writes land before a window begins
	return nil
}

// startHarness starts the watches that time every job and Pod, and the fake kubelet.
func (r *Run) startHarness(ctx context.Context) error {
	ctx, r.stopHarness = context.WithCancel(ctx)
	userCfg := r.Counters.User.Wrap(r.Cluster.Admin)
	var err error
	if r.Client, err = client.New(userCfg, client.Options{Scheme: workload.Scheme}); err != nil {
		return err
	}
	informers, err := cache.New(userCfg, cache.Options{
		Scheme:            workload.Scheme,
		DefaultNamespaces: map[string]cache.Config{workload.Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return err
	}
	r.informers = informers
	r.Tracker = newTracker(r.Side.State)
	if err := r.Tracker.Start(ctx, informers, r.Side.JobType()); err != nil {
		return err
	}
	driver, err := kubernetes.NewForConfig(r.Counters.Driver.Wrap(r.Cluster.Admin))
	if err != nil {
		return err
	}
	// Enough workers that the kubelet never limits a side.
	r.Kubelet = sim.NewKubelet(sim.Options{
		Client: driver, Workers: 32, OnPod: r.Tracker.PodSeen,
		RunTime: func() time.Duration { return r.Settings.PodRunTime },
		Finish:  r.finishAttempt,
	})
	if err := r.Kubelet.Start(ctx, informers); err != nil {
		return err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return errors.New("the harness's caches did not sync")
	}
	return nil
}

// Close stops the side, the harness and the API server.
func (r *Run) Close() {
	if r.Side != nil {
		r.Side.Stop()
	}
	r.cancel()
	if err := r.Cluster.stop(); err != nil {
		Logf("%s: stopping the API server: %v", r.Name, err)
	}
}

// checkAlive fails when the side's process died.
func (r *Run) checkAlive() error {
	if p := r.Side.Process(); p != nil {
		return p.Exited()
	}
	return nil
}

// createJobs creates the jobs as fast as the API server takes them, with
// many parallel creates, recording when each create was sent.
func (r *Run) createJobs(ctx context.Context, names []string, plans []workload.Plan) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) {
					return
				}
				if err := r.createJob(ctx, names[i], plans[i]); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

func (r *Run) createJob(ctx context.Context, name string, plan workload.Plan) error {
	job := r.Side.NewJob(name, plan)
	if r.jobFor != nil {
		job = r.jobFor(name, plan)
	}
	r.Tracker.Created(name, time.Now())
	if err := r.Client.Create(ctx, job); err != nil {
		return fmt.Errorf("creating job %s: %w", name, err)
	}
	return nil
}

// jobNames names n jobs.
func jobNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return names
}

// Window measures the API requests and CPU time of the side between begin and end.
type Window struct {
	run      *Run
	start    time.Time
	server   measure.ServerCounts
	user     measure.Counts
	driver   measure.Counts
	sideReqs measure.Counts
	cpu      map[string]float64
	pids     map[string]int
}

// pids are the processes whose CPU time is measured. A controller that is
// not running (stopped for a cold start) is left out.
func (r *Run) pids() map[string]int {
	pids := map[string]int{"kube-apiserver": r.Cluster.APIServerPID, "etcd": r.Cluster.EtcdPID, "harness": os.Getpid()}
	if p := r.Side.Process(); p != nil && p.Running() {
		pids["controller"] = p.PID()
	}
	return pids
}

func (r *Run) begin(ctx context.Context) (*Window, error) {
	w := &Window{run: r, start: time.Now(), cpu: map[string]float64{}, pids: r.pids()}
	var err error
	if w.server, err = measure.ScrapeAPIServer(ctx, r.Cluster.AdminClient); err != nil {
		return nil, err
	}
	w.user, w.driver, w.sideReqs = r.Counters.User.Snapshot(), r.Counters.Driver.Snapshot(), r.Counters.Side.Snapshot()
	for name, pid := range w.pids {
		if w.cpu[name], err = measure.CPUSeconds(pid); err != nil {
			return nil, fmt.Errorf("reading CPU time of %s: %w", name, err)
		}
	}
	return w, nil
}

func (w *Window) end(ctx context.Context) (measure.Measurement, error) {
	r := w.run
	m := measure.Measurement{Seconds: time.Since(w.start).Seconds(), CPUSeconds: map[string]float64{}}
	for name, pid := range r.pids() {
		now, err := measure.CPUSeconds(pid)
		if err != nil {
			return m, fmt.Errorf("reading CPU time of %s: %w", name, err)
		}
		// A process started inside the window is charged all its CPU time.
		if w.pids[name] == pid {
			now -= w.cpu[name]
		}
		m.CPUSeconds[name] = now
	}
	server, err := measure.ScrapeAPIServer(ctx, r.Cluster.AdminClient)
	if err != nil {
		return m, err
	}
	user := r.Counters.User.Snapshot().Sub(w.user)
	driver := r.Counters.Driver.Snapshot().Sub(w.driver)
	// The scrape itself is a non-resource request and is not counted.
	all := server.All.Sub(w.server.All)
	refused := server.Refused.Sub(w.server.Refused)
	m.Refused = refused.Sub(measure.Background(refused))
	m.RefusedBreakdown = measure.BreakdownOf(refused)
	m.RefusedWrites = m.RefusedBreakdown.NonEventWrites() + m.RefusedBreakdown.Events
	m.Requests = all.Sub(user, driver, measure.Background(all))
	m.Breakdown = measure.BreakdownOf(m.Requests)
	m.Subtracted = user.Add(driver)
	m.Background = measure.Background(all)
	if r.Side.Process() == nil { // the side runs in the harness, with a counted client
		side := r.Counters.Side.Snapshot().Sub(w.sideReqs)
		m.CeilingCheck = m.Requests.Sub(side)
	}
	return m, nil
}

// profileAPIServer saves a CPU profile of kube-apiserver (its
// /debug/pprof, on by default) in the run's directory, to show where the
// API server spends its time on a side's requests.
func (r *Run) profileAPIServer(ctx context.Context, d time.Duration) {
	raw, err := r.Cluster.AdminClient.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(ctx)
	if err == nil {
		err = os.WriteFile(filepath.Join(r.Dir, "kube-apiserver.cpu.pprof"), raw, 0o644)
	}
	if err != nil {
		Logf("%s: profiling kube-apiserver: %v", r.Name, err)
	}
}

// Logf logs a line of progress, with the time, to standard error.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
