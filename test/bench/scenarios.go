package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Result is one side's figures in one scenario; fields that a scenario
// does not measure stay empty.
type Result struct {
	Scenario string `json:"scenario"`
	Side     string `json:"side"`
	Limits   Limits `json:"limits"`
	Error    string `json:"error,omitempty"`

	Jobs          int     `json:"jobs"`
	Attempts      int     `json:"attempts"`
	Seconds       float64 `json:"seconds"` // first create → last terminal status
	JobsPerSecond float64 `json:"jobsPerSecond"`
	Succeeded     int     `json:"succeeded"`
	Failed        int     `json:"failed"`
	// WrongOutcomes counts jobs whose end or number of attempts differs from their plan.
	WrongOutcomes int `json:"wrongOutcomes"`
	// LabelMismatches counts Pods whose attempt label disagrees with the
	// order the watch saw them in (operator only).
	LabelMismatches int64 `json:"labelMismatches"`
	// FailedDriverWrites counts fake-kubelet writes the API server refused.
	FailedDriverWrites int64 `json:"failedDriverWrites"`

	PerJob     Breakdown `json:"perJob"`
	PerAttempt Breakdown `json:"perAttempt"`

	// Operator is the operator's own metrics at the end of the run.
	Operator *OperatorView `json:"operatorMetrics,omitempty"`

	// Scenario 2 (operator only).
	Lateness        *Summary  `json:"lateness,omitempty"`
	LatenessMs      []float64 `json:"latenessMs,omitempty"`
	EarlyRetries    int       `json:"earlyRetries"`
	MissingPromises int       `json:"missingPromises,omitempty"`

	// Scenario 4.
	Rate         float64  `json:"rate,omitempty"`
	AchievedRate float64  `json:"achievedRate,omitempty"`
	StartLatency *Summary `json:"startLatency,omitempty"`

	// Scenario 3.
	Scale *ScaleResult `json:"scale,omitempty"`

	Measurement Measurement `json:"measurement"`
}

// ScaleResult is scenario 3: a cold start among many finished jobs.
type ScaleResult struct {
	FillSeconds   float64 `json:"fillSeconds"`
	FillPeakRSS   int64   `json:"fillPeakRssBytes"`
	SyncedSeconds float64 `json:"syncedSeconds"` // process start → caches synced
	IdleSeconds   float64 `json:"idleSeconds"`   // process start → idle
	RSS           int64   `json:"rssBytes"`
	PeakRSS       int64   `json:"peakRssBytes"`
	HeapBytes     float64 `json:"heapAllocBytes"`
	// SettledRSS and SettledHeapBytes are read settledAfter the process went idle.
	SettledRSS       int64       `json:"settledRssBytes"`
	SettledHeapBytes float64     `json:"settledHeapAllocBytes"`
	Writes           float64     `json:"writes"` // every write during the cold start, events included
	ColdStart        Measurement `json:"coldStart"`
	HeapScrapeError  string      `json:"heapScrapeError,omitempty"`
	// CacheCost, for the operator, splits its cache memory by object type.
	CacheCost *CacheCost `json:"cacheCost,omitempty"`
}

func (r *Result) fail(err error) *Result {
	r.Error = err.Error()
	logf("%s %s: %v", r.Scenario, r.Side, err)
	return r
}

// settledAfter is how long after going idle memory is read a second time:
// past the Go runtime's forced collection every 2 minutes.
const settledAfter = 130 * time.Second

// settle lets asynchronous writes (events are sent in the background) land
// before the counters are read.
const settle = 3 * time.Second

// runJobs creates the jobs as fast as possible, waits for all of them to
// finish, and fills in the figures every scenario shares.
func runJobs(ctx context.Context, r *Run, res *Result, prefix string, plans []Plan) error {
	names := jobNames(prefix, len(plans))
	byName := make(map[string]Plan, len(plans))
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
	logf("%s: created %d jobs in %.1fs", r.Name, len(names), time.Since(start).Seconds())
	if err := r.Tracker.WaitTerminal(ctx, len(names), r.Settings.Timeout, r.checkAlive); err != nil {
		return err
	}
	_, last := r.Tracker.Terminal()
	time.Sleep(settle)
	m, err := w.end(ctx)
	if err != nil {
		return err
	}
	res.fill(r, m, byName, last.Sub(start))
	res.readOperatorView(ctx, r)
	return nil
}

// readOperatorView keeps the operator's own view of the run, when it is the operator.
func (res *Result) readOperatorView(ctx context.Context, r *Run) {
	op, ok := r.Side.(interface {
		view(context.Context) (*OperatorView, error)
	})
	if !ok {
		return
	}
	view, err := op.view(ctx)
	if err != nil {
		logf("%s: reading the operator's metrics: %v", r.Name, err)
		return
	}
	res.Operator = view
}

// fill records the figures of a finished workload.
func (res *Result) fill(r *Run, m Measurement, plans map[string]Plan, elapsed time.Duration) {
	res.Jobs = len(plans)
	res.Attempts = r.Tracker.Attempts()
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.JobsPerSecond = float64(res.Jobs) / res.Seconds
	}
	res.Succeeded, res.Failed, res.WrongOutcomes = r.Tracker.Outcomes(plans)
	res.LabelMismatches = r.Kubelet.labelMismatches.Load()
	res.FailedDriverWrites = r.Kubelet.failedWrites.Load()
	res.PerJob = m.Breakdown.Per(float64(res.Jobs))
	res.PerAttempt = m.Breakdown.Per(float64(res.Attempts))
	res.Measurement = m
}

// scenarioThroughput is scenario 1: N jobs that succeed on the first
// attempt, created as fast as possible.
func scenarioThroughput(ctx context.Context, s *Settings, side Side, limits Limits) *Result {
	res := &Result{Scenario: "throughput", Side: side.Name(), Limits: limits}
	r, err := startRun(ctx, s, fmt.Sprintf("1-throughput-%s-%s", side.Name(), limits.Name), side, limits)
	if err != nil {
		return res.fail(err)
	}
	defer r.Close()
	if err := runJobs(ctx, r, res, "tp", uniform(s.ThroughputN, PlanSucceed)); err != nil {
		return res.fail(err)
	}
	return res
}

// scenarioRetry is scenario 2: the retry mix, with backoff base 1 s.
func scenarioRetry(ctx context.Context, s *Settings, side Side, limits Limits) *Result {
	res := &Result{Scenario: "retry-mix", Side: side.Name(), Limits: limits}
	plans, err := mix(s.RetryN, retryMix)
	if err != nil {
		return res.fail(err)
	}
	r, err := startRun(ctx, s, fmt.Sprintf("2-retry-%s-%s", side.Name(), limits.Name), side, limits)
	if err != nil {
		return res.fail(err)
	}
	defer r.Close()
	if err := runJobs(ctx, r, res, "rm", plans); err != nil {
		return res.fail(err)
	}
	if isOperator(side.Name()) {
		lateness, missing := r.Tracker.Lateness()
		sum := summarize(lateness)
		res.Lateness, res.MissingPromises = &sum, missing
		for _, l := range lateness {
			res.LatenessMs = append(res.LatenessMs, float64(l.Microseconds())/1000)
			if l < 0 {
				res.EarlyRetries++
			}
		}
	}
	return res
}

// isOperator tells the operator, run as a process or in the harness, from the
// Job controller and the ceiling: only the operator promises retry times.
func isOperator(side string) bool { return strings.HasPrefix(side, "operator") }

// scenarioLatency is scenario 4: jobs arrive at a steady rate; the time
// from each create to its first Pod is the latency.
func scenarioLatency(ctx context.Context, s *Settings, side Side, limits Limits, rate float64) *Result {
	res := &Result{Scenario: "latency", Side: side.Name(), Limits: limits, Rate: rate}
	r, err := startRun(ctx, s, fmt.Sprintf("4-latency-%s-%s-%g", side.Name(), limits.Name, rate), side, limits)
	if err != nil {
		return res.fail(err)
	}
	defer r.Close()
	n := int(rate * s.RateDuration.Seconds())
	names := jobNames("lat", n)
	plans := make(map[string]Plan, n)
	for _, name := range names {
		plans[name] = PlanSucceed
	}
	w, err := r.begin(ctx)
	if err != nil {
		return res.fail(err)
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
			if err := r.createJob(ctx, name, PlanSucceed); err != nil {
				mu.Lock()
				createErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if createErr != nil {
		return res.fail(createErr)
	}
	if arrival := time.Since(start).Seconds(); arrival > 0 {
		res.AchievedRate = float64(n) / arrival
	}
	if err := r.Tracker.WaitTerminal(ctx, n, s.Timeout, r.checkAlive); err != nil {
		return res.fail(err)
	}
	_, last := r.Tracker.Terminal()
	time.Sleep(settle)
	m, err := w.end(ctx)
	if err != nil {
		return res.fail(err)
	}
	res.fill(r, m, plans, last.Sub(start))
	res.readOperatorView(ctx, r)
	sum := summarize(r.Tracker.StartLatency())
	res.StartLatency = &sum
	return res
}

// scenarioScale is scenario 3: run N jobs to the end, then restart the
// controller among them. The cold start must write nothing.
func scenarioScale(ctx context.Context, s *Settings, side Side, limits Limits) *Result {
	res := &Result{Scenario: "scale", Side: side.Name(), Limits: limits, Scale: &ScaleResult{}}
	r, err := startRun(ctx, s, fmt.Sprintf("3-scale-%s-%s", side.Name(), limits.Name), side, limits)
	if err != nil {
		return res.fail(err)
	}
	defer r.Close()
	if err := runJobs(ctx, r, res, "sc", uniform(s.ScaleN, PlanSucceed)); err != nil {
		return res.fail(err)
	}
	sc := res.Scale
	sc.FillSeconds = res.Seconds
	if mem, err := readMemory(side.Process().PID()); err == nil {
		sc.FillPeakRSS = mem.PeakRSS
	}

	logf("%s: restarting %s among %d finished jobs", r.Name, side.Name(), s.ScaleN)
	side.Stop()
	w, err := r.begin(ctx)
	if err != nil {
		return res.fail(err)
	}
	if err := side.Start(ctx, r); err != nil {
		return res.fail(fmt.Errorf("cold start: %w", err))
	}
	proc := side.Process()
	synced, err := proc.WaitMarker(ctx, side.SyncedMarker(), time.Minute)
	if err != nil {
		return res.fail(err)
	}
	sc.SyncedSeconds = synced.Sub(proc.Started).Seconds()
	idle, err := waitIdle(ctx, proc.PID(), 3*time.Second, 5*time.Minute)
	if err != nil {
		return res.fail(err)
	}
	sc.IdleSeconds = idle.Sub(proc.Started).Seconds()
	if mem, err := readMemory(proc.PID()); err == nil {
		sc.RSS, sc.PeakRSS = mem.RSS, mem.PeakRSS
	}
	if sc.HeapBytes, err = side.HeapBytes(ctx); err != nil {
		sc.HeapScrapeError = err.Error()
	}
	// Right after the start the heap still holds the garbage of decoding
	// every object. An idle Go program collects at least every 2 minutes, so
	// a little later RSS and heap show what the process keeps.
	time.Sleep(time.Until(idle.Add(settledAfter)))
	if mem, err := readMemory(proc.PID()); err == nil {
		sc.SettledRSS = mem.RSS
	}
	if sc.SettledHeapBytes, err = side.HeapBytes(ctx); err != nil {
		sc.HeapScrapeError = err.Error()
	}
	cold, err := w.end(ctx)
	if err != nil {
		return res.fail(err)
	}
	// Begun before the process existed, the window charges its whole start,
	// and its first two idle minutes, to it.
	sc.ColdStart = cold
	sc.Writes = cold.Breakdown.NonEventWrites() + cold.Breakdown.Events
	if _, ok := side.(*operatorSide); ok {
		if sc.CacheCost, err = measureCacheCost(ctx, r); err != nil {
			logf("%s: measuring the cache cost: %v", r.Name, err)
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
	prev, err := cpuSeconds(pid)
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
		now, err := cpuSeconds(pid)
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

// EventsPerTransition divides the events by the transitions that the API
// contract announces with one event each: every attempt starts; a failed
// attempt fails and then either schedules a retry or fails the job; a
// succeeded attempt succeeds the job. That is 3 per attempt, less 1 per
// succeeded job. More than 1 means some transition had more than one event.
func (res *Result) EventsPerTransition() float64 {
	transitions := 3*res.Attempts - res.Succeeded
	if transitions <= 0 {
		return 0
	}
	return res.Measurement.Breakdown.Events / float64(transitions)
}
