package scenario

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/measure"
	"github.com/pybase/extraction-operator/test/bench/report"
	"github.com/pybase/extraction-operator/test/bench/sides"
	"github.com/pybase/extraction-operator/test/bench/workload"
)

// failed records that a scenario failed, and returns its result.
func failed(res *report.Result, err error) *report.Result {
	res.Error = err.Error()
	Logf("%s %s: %v", res.Scenario, res.Side, err)
	return res
}

// settle lets asynchronous writes (events are sent in the background) land
// before the counters are read.
const settle = 3 * time.Second

// runJobs creates the jobs as fast as possible, waits for all of them to
// finish, and fills in the figures every scenario shares.
func runJobs(ctx context.Context, r *Run, res *report.Result, prefix string, plans []workload.Plan) error {
	names := jobNames(prefix, len(plans))
	byName := make(map[string]workload.Plan, len(plans))
	for i, n := range names {
		byName[n] = plans[i]
	}
	w, err := r.begin(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	if d := r.Settings.APIServerProfile; d > 0 && res.Scenario == "throughput" {
		go r.profileAPIServer(ctx, d)
	}
	if err := r.createJobs(ctx, names, plans); err != nil {
		return err
	}
	Logf("%s: created %d jobs in %.1fs", r.Name, len(names), time.Since(start).Seconds())
	if r.midRun != nil {
		if err := r.midRun(ctx, start); err != nil {
			return err
		}
	}
	if err := r.Tracker.WaitTerminal(ctx, len(names), r.Settings.Timeout, r.checkAlive); err != nil {
		return err
	}
	_, last := r.Tracker.Terminal()
	time.Sleep(settle)
	m, err := w.end(ctx)
	if err != nil {
		return err
	}
	fill(res, r, m, byName, last.Sub(start))
	readOperatorView(ctx, r, res)
	return nil
}

// readOperatorView keeps the operator's own view of the run, when it is the operator.
func readOperatorView(ctx context.Context, r *Run, res *report.Result) {
	op, ok := r.Side.(interface {
		OperatorView(context.Context) (*measure.OperatorView, error)
	})
	if !ok {
		return
	}
	view, err := op.OperatorView(ctx)
	if err != nil {
		Logf("%s: reading the operator's metrics: %v", r.Name, err)
		return
	}
	res.Operator = view
}

// fill records the figures of a finished workload.
func fill(res *report.Result, r *Run, m measure.Measurement, plans map[string]workload.Plan, elapsed time.Duration) {
	res.Jobs = len(plans)
	res.Attempts = r.Tracker.Attempts()
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.JobsPerSecond = float64(res.Jobs) / res.Seconds
	}
	res.Succeeded, res.Failed, res.WrongOutcomes = r.Tracker.Outcomes(plans)
	res.LabelMismatches = r.Kubelet.LabelMismatches()
	res.FailedDriverWrites = r.Kubelet.FailedWrites()
	res.PerJob = m.Breakdown.Per(float64(res.Jobs))
	res.PerAttempt = m.Breakdown.Per(float64(res.Attempts))
	res.Measurement = m
}

// Throughput runs scenario 1: N jobs that succeed on the first
// attempt, created as fast as possible.
func Throughput(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits) *report.Result {
	res := &report.Result{Scenario: "throughput", Side: side.Name(), Limits: limits}
	r, err := startRun(ctx, s, fmt.Sprintf("1-throughput-%s-%s", side.Name(), limits.Name), side, limits)
	if err != nil {
		return failed(res, err)
	}
	defer r.Close()
	if err := runJobs(ctx, r, res, "tp", workload.Uniform(s.ThroughputN, workload.PlanSucceed)); err != nil {
		return failed(res, err)
	}
	return res
}

// Retry runs scenario 2: the retry mix, with backoff base 1 s.
func Retry(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits) *report.Result {
	res := &report.Result{Scenario: "retry-mix", Side: side.Name(), Limits: limits}
	return retryMix(ctx, s, side, limits, res, nil)
}

// RetryRestart runs scenario 2 with an operator restart in the middle: the
// operator is killed RestartAt after the first create and started again
// RestartDown later. The retries that fell due while it was down are late
// by the restart, and are summarised apart from the others; none may start
// early.
func RetryRestart(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits) *report.Result {
	restart := &report.RestartResult{}
	res := &report.Result{Scenario: "retry-restart", Side: side.Name(), Limits: limits, Restart: restart}
	return retryMix(ctx, s, side, limits, res, func(ctx context.Context, r *Run, start time.Time) error {
		select {
		case <-time.After(time.Until(start.Add(s.RestartAt))):
		case <-ctx.Done():
			return ctx.Err()
		}
		killed := time.Now()
		Logf("%s: killing %s", r.Name, side.Name())
		side.Process().Kill()
		select {
		case <-time.After(s.RestartDown):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := side.Start(ctx, r.sideEnv()); err != nil {
			return fmt.Errorf("starting %s again: %w", side.Name(), err)
		}
		ready, err := side.Process().WaitMarker(ctx, side.SyncedMarker(), time.Minute)
		if err != nil {
			return err
		}
		restart.Killed, restart.Ready = killed, ready
		restart.KilledAfterSeconds, restart.DownSeconds = killed.Sub(start).Seconds(), ready.Sub(killed).Seconds()
		Logf("%s: %s killed %.1fs after the first create, working again %.1fs later", r.Name, side.Name(), restart.KilledAfterSeconds, restart.DownSeconds)
		return nil
	})
}

// retryMix runs the retry mix; midRun, when set, runs while the jobs do.
func retryMix(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits, res *report.Result,
	midRun func(context.Context, *Run, time.Time) error) *report.Result {
	plans, err := workload.Mix(s.RetryN, workload.RetryMix)
	if err != nil {
		return failed(res, err)
	}
	name := "2-retry"
	if res.Restart != nil {
		name += "-restart"
	}
	r, err := startRun(ctx, s, fmt.Sprintf("%s-%s-%s", name, side.Name(), limits.Name), side, limits)
	if err != nil {
		return failed(res, err)
	}
	defer r.Close()
	if midRun != nil {
		r.midRun = func(ctx context.Context, start time.Time) error { return midRun(ctx, r, start) }
	}
	if err := runJobs(ctx, r, res, "rm", plans); err != nil {
		return failed(res, err)
	}
	if report.IsOperator(side.Name()) {
		retries, missing := r.Tracker.Retries()
		res.MissingPromises = missing
		var downFrom, downUntil time.Time
		if rs := res.Restart; rs != nil {
			downFrom, downUntil = rs.Killed, rs.Ready
		}
		lateness, dueWhileDown, early := splitRetries(retries, downFrom, downUntil)
		res.EarlyRetries = early
		for _, l := range lateness {
			res.LatenessMs = append(res.LatenessMs, float64(l.Microseconds())/1000)
		}
		sum := measure.Summarize(lateness)
		res.Lateness = &sum
		if rs := res.Restart; rs != nil {
			down := measure.Summarize(dueWhileDown)
			rs.DueWhileDown = &down
		}
	}
	return res
}

// splitRetries gives the lateness of the retries that fell due in
// [downFrom, downUntil), while the operator was down, apart from the others',
// and counts the retries of both that started early.
func splitRetries(retries []RetrySeen, downFrom, downUntil time.Time) (lateness, dueWhileDown []time.Duration, early int) {
	for _, retry := range retries {
		l := retry.Lateness()
		if l < 0 {
			early++
		}
		if !retry.Due.Before(downFrom) && retry.Due.Before(downUntil) {
			dueWhileDown = append(dueWhileDown, l)
			continue
		}
		lateness = append(lateness, l)
	}
	return lateness, dueWhileDown, early
}

// Latency runs scenario 4: jobs arrive at a steady rate; the time
// from each create to its first Pod is the latency.
func Latency(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits, rate float64) *report.Result {
	res := &report.Result{Scenario: "latency", Side: side.Name(), Limits: limits, Rate: rate}
	r, err := startRun(ctx, s, fmt.Sprintf("4-latency-%s-%s-%g", side.Name(), limits.Name, rate), side, limits)
	if err != nil {
		return failed(res, err)
	}
	defer r.Close()
	n := int(rate * s.RateDuration.Seconds())
	names := jobNames("lat", n)
	plans := make(map[string]workload.Plan, n)
	for _, name := range names {
		plans[name] = workload.PlanSucceed
	}
	w, err := r.begin(ctx)
	if err != nil {
		return failed(res, err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var createErr error
	var mu sync.Mutex
	for i, name := range names {
		// Arrivals follow the clock, not the previous create's return, so a
		// slow API server cannot slow the arrival rate down.
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.createJob(ctx, name, workload.PlanSucceed); err != nil {
				mu.Lock()
				createErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if createErr != nil {
		return failed(res, createErr)
	}
	if arrival := time.Since(start).Seconds(); arrival > 0 {
		res.AchievedRate = float64(n) / arrival
	}
	if err := r.Tracker.WaitTerminal(ctx, n, s.Timeout, r.checkAlive); err != nil {
		return failed(res, err)
	}
	_, last := r.Tracker.Terminal()
	time.Sleep(settle)
	m, err := w.end(ctx)
	if err != nil {
		return failed(res, err)
	}
	fill(res, r, m, plans, last.Sub(start))
	readOperatorView(ctx, r, res)
	sum := measure.Summarize(r.Tracker.StartLatency())
	res.StartLatency = &sum
	return res
}

// Scale runs scenario 3: run N jobs to the end, then restart the
// controller among them. The cold start must write nothing.
func Scale(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits) *report.Result {
	res := &report.Result{Scenario: "scale", Side: side.Name(), Limits: limits, Scale: &report.ScaleResult{}}
	r, err := startRun(ctx, s, fmt.Sprintf("3-scale-%s-%s", side.Name(), limits.Name), side, limits)
	if err != nil {
		return failed(res, err)
	}
	defer r.Close()
	if err := runJobs(ctx, r, res, "sc", workload.Uniform(s.ScaleN, workload.PlanSucceed)); err != nil {
		return failed(res, err)
	}
	sc := res.Scale
	sc.FillSeconds = res.Seconds
	if mem, err := measure.ReadMemory(side.Process().PID()); err == nil {
		sc.FillPeakRSS = mem.PeakRSS
	}

	Logf("%s: restarting %s among %d finished jobs", r.Name, side.Name(), s.ScaleN)
	side.Stop()
	w, err := r.begin(ctx)
	if err != nil {
		return failed(res, err)
	}
	if err := side.Start(ctx, r.sideEnv()); err != nil {
		return failed(res, fmt.Errorf("cold start: %w", err))
	}
	proc := side.Process()
	synced, err := proc.WaitMarker(ctx, side.SyncedMarker(), time.Minute)
	if err != nil {
		return failed(res, err)
	}
	sc.SyncedSeconds = synced.Sub(proc.Started()).Seconds()
	idle, err := waitIdle(ctx, proc.PID(), 3*time.Second, 5*time.Minute)
	if err != nil {
		return failed(res, err)
	}
	sc.IdleSeconds = idle.Sub(proc.Started()).Seconds()
	if mem, err := measure.ReadMemory(proc.PID()); err == nil {
		sc.RSS, sc.PeakRSS = mem.RSS, mem.PeakRSS
	}
	if sc.HeapBytes, err = side.HeapBytes(ctx); err != nil {
		sc.HeapScrapeError = err.Error()
	}
	// Right after the start the heap still holds the garbage of decoding
	// every object. An idle Go program collects at least every 2 minutes, so
	// a little later RSS and heap show what the process keeps.
	time.Sleep(time.Until(idle.Add(report.SettledAfter)))
	if mem, err := measure.ReadMemory(proc.PID()); err == nil {
		sc.SettledRSS = mem.RSS
	}
	if sc.SettledHeapBytes, err = side.HeapBytes(ctx); err != nil {
		sc.HeapScrapeError = err.Error()
	}
	cold, err := w.end(ctx)
	if err != nil {
		return failed(res, err)
	}
	// Begun before the process existed, the window charges its whole start,
	// and its first two idle minutes, to it.
	sc.ColdStart = cold
	sc.Writes = cold.Breakdown.NonEventWrites() + cold.Breakdown.Events
	if side.Name() == sides.OperatorName {
		// The harness's own watches stop first, so that their objects are freed.
		r.stopHarness()
		src := measure.CacheSource{Config: r.Cluster.Admin, Scheme: workload.Scheme, Namespace: workload.Namespace}
		if sc.CacheCost, err = measure.MeasureCacheCost(ctx, src, r.Dir); err != nil {
			Logf("%s: measuring the cache cost: %v", r.Name, err)
		}
	}
	return res
}

// waitIdle polls a process's CPU time and returns the moment it last was
// busy (more than 20 % of a core over 100 ms), once it has been quiet for
// quiet. The controllers expose no "idle" signal of their own, and CPU time
// reads the same way for both.
func waitIdle(ctx context.Context, pid int, quiet, timeout time.Duration) (time.Time, error) {
	const poll = 100 * time.Millisecond
	const busySeconds = 0.02
	deadline := time.Now().Add(timeout)
	prev, err := measure.CPUSeconds(pid)
	if err != nil {
		return time.Time{}, err
	}
	lastBusy := time.Now()
	for time.Since(lastBusy) < quiet {
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("process %d still busy after %s", pid, timeout)
		}
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
		now, err := measure.CPUSeconds(pid)
		if err != nil {
			return time.Time{}, err
		}
		if now-prev > busySeconds {
			lastBusy = time.Now()
		}
		prev = now
	}
	return lastBusy, nil
}
