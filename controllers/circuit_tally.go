package controllers

import (
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// This file counts a closed circuit's failures in the order the attempts
// finished, as the Pod watch reports them, and not in the order the jobs'
// reconciles get to them. Behind a busy work queue, a success from before
// an outage may be reconciled after many failures, and the reconcile that
// would open the circuit waits while more attempts start and fail
// (BENCHMARKS.md, "Outage", has the figures of both).

// finishedAttempt is an attempt's outcome as a circuit tally counts it.
type finishedAttempt struct {
	// pod is the attempt's Pod: a second sighting of it counts nothing.
	pod types.UID
	// finishedAt is when the attempt's extractor container finished.
	finishedAt time.Time
	outcome    circuitOutcome
}

// finishedAttemptOf reads the outcome of an attempt off its Pod; false while
// the Pod has not finished. finishedAt is zero when the container's status
// does not say. The job's rules are not needed: they change a failure's
// class, never its error type, nor whether the extractor reported it.
func (p circuitPolicy) finishedAttemptOf(pod *corev1.Pod) (finishedAttempt, bool) {
	a := finishedAttempt{pod: pod.UID}
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		a.outcome.signal = signalServiceUp
	case corev1.PodFailed:
		observed := failureOfPod(pod)
		failure, _ := classify(observed, nil)
		a.outcome = circuitOutcome{signal: p.signalOf(&failure, reportedByExtractor(observed, failure)),
			errorType: failure.ErrorType, message: failure.Message, retryAfter: retryAfterHint(&failure)}
	default:
		return finishedAttempt{}, false
	}
	if status := extractorStatus(pod); status != nil && status.State.Terminated != nil {
		a.finishedAt = status.State.Terminated.FinishedAt.Time
	}
	return a, true
}

// circuitOpening is the opening of a closed circuit that a tally counted.
// The class's status is to record it; until it does, the queue admits no
// attempt of the class.
type circuitOpening struct {
	// at is when the failures reached the threshold: the open circuit's since.
	at time.Time
	// last is the failure that finished last; the circuit shows its error type and message.
	last circuitOutcome
	// largestRetryAfter is the largest Retry-After hint among the failures.
	largestRetryAfter time.Duration
}

// circuitTally is the run of consecutive failures of a class's closed
// circuit, in the order the attempts finished. Attempts that finished at the
// same time (the API keeps whole seconds) are in the order they were seen.
type circuitTally struct {
	// closedSince is the since of the closed circuit the tally counts for:
	// once the circuit opened and closed again, a new tally counts.
	closedSince time.Time
	// answeredAt is when the latest attempt finished that found the service
	// answering, or the circuit closed: attempts that finished before it are
	// not counted.
	answeredAt time.Time
	// seen are the attempts counted that finished at answeredAt or after,
	// with when they finished, so that a second sighting counts nothing.
	seen map[types.UID]time.Time
	// failures are the run: failures that finished after answeredAt, or at it
	// and were seen after the attempt that set it.
	failures []finishedAttempt
	// pending is the opening the run reached; it applies while the class's
	// status shows the closed circuit since closedSince.
	pending *circuitOpening
}

func newCircuitTally(closedSince time.Time) *circuitTally {
	return &circuitTally{closedSince: closedSince, answeredAt: closedSince, seen: map[types.UID]time.Time{}}
}

// record counts a finished attempt of the closed circuit, at now, and
// reports whether the run reached the policy's threshold with it: the
// opening is pending then, and the tally counts nothing more.
func (t *circuitTally) record(p circuitPolicy, a finishedAttempt, now time.Time) bool {
	if t.pending != nil || a.outcome.signal == signalNone || a.finishedAt.Before(t.answeredAt) {
		return false
	}
	if _, ok := t.seen[a.pod]; ok {
		return false
	}
	t.seen[a.pod] = a.finishedAt
	if a.outcome.signal == signalServiceUp {
		// The service answered: the failures that finished before are no
		// longer in a row, nor those that finished with it and were seen first.
		t.answeredAt = a.finishedAt
		t.failures = slices.DeleteFunc(t.failures, func(f finishedAttempt) bool { return !f.finishedAt.After(a.finishedAt) })
		maps.DeleteFunc(t.seen, func(_ types.UID, finishedAt time.Time) bool { return finishedAt.Before(a.finishedAt) })
		return false
	}
	t.failures = append(t.failures, a)
	if len(t.failures) < p.threshold {
		return false
	}
	opening := circuitOpening{at: now}
	var lastAt time.Time
	for _, f := range t.failures {
		if !f.finishedAt.Before(lastAt) {
			lastAt, opening.last = f.finishedAt, f.outcome
		}
		opening.largestRetryAfter = max(opening.largestRetryAfter, f.outcome.retryAfter)
	}
	t.pending, t.failures = &opening, nil
	return true
}

// circuitTallies are the classes' tallies, fed from the Pod watch as the
// attempts finish and from the jobs' reconciles, whichever sees an attempt
// first. They are in memory: a restart loses a count below the threshold,
// and an opening the class's status does not show yet, on which the
// operator acted only by keeping jobs waiting in Queued.
type circuitTallies struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	tallies map[string]*circuitTally
	// openings is the ExtractorClass controller's work queue, once it
	// started: an opening wakes the class's reconcile, which records it.
	openings workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func newCircuitTallies(clock clock.PassiveClock) *circuitTallies {
	return &circuitTallies{clock: clock, tallies: map[string]*circuitTally{}}
}

// wakeOpeningsOn makes an opening wake the class's reconcile on wq.
func (t *circuitTallies) wakeOpeningsOn(wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.openings = wq
}

// observe counts the outcome of an attempt Pod of the class that finished,
// when the class has a breaker and its circuit is closed; a Pod that has not
// finished counts nothing.
func (t *circuitTallies) observe(class *ejv1.ExtractorClass, pod *corev1.Pod) {
	policy, ok := circuitPolicyOf(class)
	if !ok || pod == nil {
		return
	}
	a, finished := policy.finishedAttemptOf(pod)
	if !finished {
		return
	}
	now := t.clock.Now()
	if a.finishedAt.IsZero() {
		a.finishedAt = now
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tally := t.closedTally(class, now)
	if tally != nil && tally.record(policy, a, now) && t.openings != nil {
		t.openings.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: class.Name}})
	}
}

// pending is the opening counted for the class's closed circuit that the
// class's status does not show yet; nil without one.
func (t *circuitTallies) pending(class *ejv1.ExtractorClass) *circuitOpening {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tally := t.closedTally(class, t.clock.Now()); tally != nil {
		return tally.pending
	}
	return nil
}

// closedTally is the tally of the class's circuit as the class shows it,
// started afresh when the circuit closed since; nil when the circuit is not
// closed, or the class is older than the tally. The caller holds mu.
func (t *circuitTallies) closedTally(class *ejv1.ExtractorClass, now time.Time) *circuitTally {
	c := class.Status.Circuit
	if circuitState(c, now) != ejv1.CircuitClosed {
		return nil
	}
	var since time.Time
	if c != nil && c.Since != nil {
		since = c.Since.Time
	}
	tally := t.tallies[class.Name]
	switch {
	case tally == nil || since.After(tally.closedSince):
		tally = newCircuitTally(since)
		t.tallies[class.Name] = tally
	case since.Before(tally.closedSince):
		// Read before the circuit last closed: another reader counts for the class as it is.
		return nil
	}
	return tally
}

// forget drops a class's tally: the class is gone, or its circuit was reset.
func (t *circuitTallies) forget(class string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tallies, class)
}
