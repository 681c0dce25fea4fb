package scenario

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
	"github.com/pybase/extraction-operator/test/bench/config"
	"github.com/pybase/extraction-operator/test/bench/report"
	"github.com/pybase/extraction-operator/test/bench/sides"
	"github.com/pybase/extraction-operator/test/bench/workload"
	"github.com/pybase/extraction-operator/test/harness/sim"
)

// outageLead is how long after the first create the backend goes down: the
// class is full and about half the jobs have finished by then.
const outageLead = 5 * time.Second

// afterRecovery is the span after the window in which the burst is measured.
const afterRecovery = 20 * time.Second

// Outage runs scenario 6, on the operator only: s.OutageN jobs of one class
// capped at maxRunning, against a backend that answers ServiceUnavailable
// for s.OutageWindow and then recovers, with the class's circuit breaker on
// or off (as every peer behaves).
func Outage(ctx context.Context, s *config.Settings, side sides.Side, limits config.Limits, breaker bool) *report.Result {
	o := &report.OutageResult{Breaker: breaker, MaxRunning: workload.OutageMaxRunning, RunSeconds: workload.OutageRunSeconds,
		BackoffBaseSeconds: workload.OutageBackoffBase.Seconds(), WindowSeconds: s.OutageWindow.Seconds()}
	if breaker {
		o.ConsecutiveFailures, o.Probes = workload.OutageFailures, workload.OutageProbes
		o.OpenSeconds, o.RampUpSeconds = workload.OutageOpenDuration.Seconds(), workload.OutageRampUp.Seconds()
	}
	res := &report.Result{Scenario: "outage", Side: side.Name(), Limits: limits, Outage: o}
	r, err := startRun(ctx, s, fmt.Sprintf("6-outage-%s-%s-breaker-%s", side.Name(), limits.Name, o.BreakerName()), side, limits)
	if err != nil {
		return failed(res, err)
	}
	defer r.Close()
	if err := r.Client.Create(ctx, workload.OutageClass(breaker)); err != nil {
		return failed(res, fmt.Errorf("creating ExtractorClass %s: %w", workload.OutageClassName, err))
	}
	b := newOutageBackend(workload.OutageClassName, workload.MaxRetries+1)
	if err := b.watch(ctx, r.informers); err != nil {
		return failed(res, err)
	}
	r.jobFor = func(name string, _ workload.Plan) client.Object { return workload.OutageJob(name) }
	time.Sleep(settle) // the class's first status write lands before the window begins
	start := time.Now()
	b.schedule(start.Add(outageLead), s.OutageWindow)
	r.backend.Store(b)
	if err := runJobs(ctx, r, res, "out", workload.Uniform(s.OutageN, workload.PlanSucceed)); err != nil {
		return failed(res, err)
	}
	// Under an outage no job makes the attempts its plan says; how the jobs
	// ended is the figure, in Failed and in the outage's own figures.
	res.WrongOutcomes = 0
	if v := res.Operator; v != nil && math.IsInf(v.RetryLatenessP99Ms, 1) {
		// A parked job's retry starts when the circuit closes, long after the
		// nextRetryAt it was given: the operator's retry-lateness histogram
		// overflows its last bucket, a +Inf that JSON cannot hold and that
		// measures nothing here.
		v.RetryLatenessP99Ms = 0
	}
	_, last := r.Tracker.Terminal()
	b.fill(o, start, last)
	o.Lost = res.Failed
	return res
}

// finishAttempt is how the simulated kubelet ends each attempt: as the
// scenario's backend says, or as the plan says.
func (r *Run) finishAttempt(pod *corev1.Pod, at time.Time, planned sim.Result) sim.Result {
	if b := r.backend.Load(); b != nil {
		return b.finish(pod, at, planned)
	}
	return planned
}

// attemptEvent is an attempt of the class starting (+1) or ending (-1).
type attemptEvent struct {
	at    time.Time
	delta int
	dead  bool // it ended inside the window, against the dead backend
}

// outageBackend is the backend of the outage scenario: attempts of the
// class that end inside the window end ServiceUnavailable. It also records
// when every attempt of the class started and ended, and the circuit's
// state on the class; and by job, when its first attempt against the dead
// backend ended and when its last allowed attempt started, which says
// whether the window was long enough to spend a job's retries.
type outageBackend struct {
	class    string
	down, up time.Time
	// lastAttempt is the attempt label of a job's last allowed attempt: maxRetries + 1.
	lastAttempt string

	mu      sync.Mutex
	started map[types.UID]bool
	ended   map[types.UID]bool // the first decision, kept when a write is retried
	events  []attemptEvent
	circuit []report.CircuitChange // At in Unix seconds until fill
	// firstDeadEnd and lastAttemptStart are by the job's UID.
	firstDeadEnd, lastAttemptStart map[string]time.Time
}

func newOutageBackend(class string, lastAttempt int) *outageBackend {
	return &outageBackend{class: class, lastAttempt: strconv.Itoa(lastAttempt), started: map[types.UID]bool{}, ended: map[types.UID]bool{},
		firstDeadEnd: map[string]time.Time{}, lastAttemptStart: map[string]time.Time{}}
}

func (b *outageBackend) schedule(down time.Time, window time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down, b.up = down, down.Add(window)
}

func (b *outageBackend) finish(pod *corev1.Pod, at time.Time, planned sim.Result) sim.Result {
	if pod.Labels[ejv1.ExtractorClassLabel] != b.class {
		return planned
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	dead, decided := b.ended[pod.UID]
	if !decided {
		dead = !at.Before(b.down) && at.Before(b.up)
		b.ended[pod.UID] = dead
		b.events = append(b.events, attemptEvent{at: at, delta: -1, dead: dead})
		if job := pod.Labels[ejv1.JobUIDLabel]; dead && b.firstDeadEnd[job].IsZero() {
			b.firstDeadEnd[job] = at
		}
	}
	if dead {
		return workload.ServiceUnavailable
	}
	return planned
}

// watch records every attempt Pod of the class as it is created, and every
// change of the class's circuit, from the harness's watches.
func (b *outageBackend) watch(ctx context.Context, informers cache.Cache) error {
	pods, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	if _, err := pods.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: func(obj any) { b.podSeen(obj, time.Now()) }}); err != nil {
		return err
	}
	classes, err := informers.GetInformer(ctx, &ejv1.ExtractorClass{})
	if err != nil {
		return err
	}
	_, err = classes.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { b.classSeen(obj, time.Now()) },
		UpdateFunc: func(_, obj any) { b.classSeen(obj, time.Now()) },
	})
	return err
}

func (b *outageBackend) podSeen(obj any, now time.Time) {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Labels[ejv1.ExtractorClassLabel] != b.class {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started[pod.UID] {
		b.started[pod.UID] = true
		b.events = append(b.events, attemptEvent{at: now, delta: +1})
		if pod.Labels[ejv1.AttemptLabel] == b.lastAttempt {
			b.lastAttemptStart[pod.Labels[ejv1.JobUIDLabel]] = now
		}
	}
}

func (b *outageBackend) classSeen(obj any, now time.Time) {
	class, ok := obj.(*ejv1.ExtractorClass)
	if !ok || class.Name != b.class || class.Status.Circuit == nil {
		return
	}
	c := report.CircuitChange{At: float64(now.UnixNano()) / 1e9, State: string(class.Status.Circuit.State), OpenCount: int(class.Status.Circuit.OpenCount)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.circuit); n > 0 && b.circuit[n-1].State == c.State && b.circuit[n-1].OpenCount == c.OpenCount {
		return
	}
	b.circuit = append(b.circuit, c)
}

// fill computes the outage's figures, times in seconds after start.
func (b *outageBackend) fill(o *report.OutageResult, start, lastDone time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	since := func(t time.Time) float64 { return t.Sub(start).Seconds() }
	o.DownAt, o.UpAt = since(b.down), since(b.up)
	o.AfterRecoverySeconds = afterRecovery.Seconds()
	o.RecoveryToLastDone = lastDone.Sub(b.up).Seconds()
	f := outageFiguresOf(b.events, start, b.down, b.up, afterRecovery)
	o.DeadAttempts, o.PeakAfterRecovery, o.StartedAfterRecovery, o.Timeline = f.dead, f.peakAfter, f.startedAfter, f.timeline
	o.InFlightAtDown = f.inFlightAtDown
	o.RetrySpan = retrySpanOf(b.firstDeadEnd, b.lastAttemptStart, b.up)
	for _, c := range b.circuit {
		c.At -= float64(start.UnixNano()) / 1e9
		o.Circuit = append(o.Circuit, c)
		o.FailedProbeRounds = max(o.FailedProbeRounds, c.OpenCount-1)
	}
}

// retrySpanOf measures, over the jobs that had an attempt against the dead
// backend, the span from the end of the first such attempt to the start of
// the job's last allowed attempt, and how many of those last attempts
// started before the backend recovered.
func retrySpanOf(firstDeadEnd, lastAttemptStart map[string]time.Time, up time.Time) report.RetrySpan {
	var spans []float64
	var r report.RetrySpan
	for job, deadAt := range firstDeadEnd {
		r.Jobs++
		startedAt, ok := lastAttemptStart[job]
		if !ok {
			continue
		}
		spans = append(spans, startedAt.Sub(deadAt).Seconds())
		if startedAt.Before(up) {
			r.StartedBeforeRecovery++
		}
	}
	if len(spans) == 0 {
		return r
	}
	sort.Float64s(spans)
	r.Reached, r.MinSeconds, r.MedianSeconds = len(spans), spans[0], spans[len(spans)/2]
	return r
}

type outageFigures struct {
	dead                    int
	peakAfter, startedAfter int
	inFlightAtDown          int
	timeline                []report.OutagePoint
}

// outageFiguresOf reads the attempts' starts and ends: how many ended
// against the dead backend, how many were in flight when it went down, the
// most in flight at once and the starts in the span after recovery, and a
// timeline of one point per second from start.
func outageFiguresOf(events []attemptEvent, start, down, up time.Time, span time.Duration) outageFigures {
	events = append([]attemptEvent(nil), events...)
	// At the same instant an end comes before a start, so that a slot
	// handed over counts once.
	sort.SliceStable(events, func(i, j int) bool {
		if !events[i].at.Equal(events[j].at) {
			return events[i].at.Before(events[j].at)
		}
		return events[i].delta < events[j].delta
	})
	var f outageFigures
	inFlight := 0
	afterEnd := up.Add(span)
	for _, e := range events {
		if e.at.Before(down) {
			f.inFlightAtDown = inFlight + e.delta
		}
		inFlight += e.delta
		if e.dead {
			f.dead++
		}
		sec := max(0, int(e.at.Sub(start)/time.Second))
		for len(f.timeline) <= sec {
			prev := 0
			if n := len(f.timeline); n > 0 {
				// A second starts with what the one before ended with.
				prev = f.timeline[n-1].Last
			}
			f.timeline = append(f.timeline, report.OutagePoint{At: float64(len(f.timeline)), InFlight: prev, Last: prev})
		}
		p := &f.timeline[sec]
		p.InFlight, p.Last = max(p.InFlight, inFlight), inFlight
		switch {
		case e.delta > 0:
			p.Started++
		case e.dead:
			p.Dead++
		}
		if !e.at.Before(up) && e.at.Before(afterEnd) {
			f.peakAfter = max(f.peakAfter, inFlight)
			if e.delta > 0 {
				f.startedAfter++
			}
		} else if e.at.Before(up) {
			// What is in flight when the backend recovers counts as just after it.
			f.peakAfter = inFlight
		}
	}
	return f
}
