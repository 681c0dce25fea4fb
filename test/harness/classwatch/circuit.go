package classwatch

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// A class with spec.circuitBreaker is also followed itself, and the Watch
// checks the breaker's promises at every event:
//
//   - no retry is spent while the circuit is open: an attempt whose Pod
//     finished while the class's status.circuit.state had said Open for at
//     least Grace is recorded parked, and a job's retryCount never rises by
//     more than its newly recorded attempts that failed unparked;
//   - never more probes at once than spec.circuitBreaker.probes: the Pods
//     with the probe label that exist and have not finished.
//
// While the circuit is not Closed, and for rampUp after it closed, the queue
// check is excused: holding jobs back is then the breaker's job.

// CircuitReport is what a Watch saw of a class's circuit breaker.
type CircuitReport struct {
	// Openings counts the transitions into Open the Watch saw.
	Openings int
	// ProbesSeen counts the distinct probe Pods; PeakProbes the most in
	// flight at once.
	ProbesSeen, PeakProbes int
	// Parked counts the distinct attempts recorded parked.
	Parked int
	// LastClosed is when the Watch last saw the circuit close (zero if it
	// never saw it leave Closed).
	LastClosed time.Time
	// State is the last state seen.
	State ejv1.CircuitState
}

// attemptEnd is when a Pod of an attempt finished, as the Watch saw it, and
// since when the circuit had then been Open (zero when it was not).
type attemptEnd struct {
	at, openSince time.Time
}

// attemptRecord is how a job's status recorded a finished attempt.
type attemptRecord struct {
	failed, parked bool
}

// circuitState is the Watch's memory of the breaker; the jobs' part
// survives relists, which replace the jobs map.
type circuitState struct {
	state     ejv1.CircuitState
	openSince time.Time
	probes    map[types.UID]bool // every probe Pod seen
	ends      map[attemptKey]attemptEnd
	records   map[attemptKey]attemptRecord
	judged    map[attemptKey]bool
	retries   map[types.UID]int32
	report    CircuitReport
}

type attemptKey struct {
	job     types.UID
	attempt int32
}

func newCircuitState() *circuitState {
	return &circuitState{
		state:  ejv1.CircuitClosed,
		probes: map[types.UID]bool{}, ends: map[attemptKey]attemptEnd{},
		records: map[attemptKey]attemptRecord{}, judged: map[attemptKey]bool{},
		retries: map[types.UID]int32{},
	}
}

func (w *Watch) hasBreaker() bool { return w.opts.Class.Spec.CircuitBreaker != nil }

// Circuit is what the Watch saw of the class's circuit breaker so far.
func (w *Watch) Circuit() CircuitReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.circuitReport()
}

func (w *Watch) circuitReport() CircuitReport {
	r := w.circuit.report
	r.State = w.circuit.state
	return r
}

func (w *Watch) classSelector() []client.ListOption {
	return []client.ListOption{client.MatchingFields{"metadata.name": w.opts.Class.Name}}
}

func (w *Watch) listClass(ctx context.Context) (string, error) {
	classes := &ejv1.ExtractorClassList{}
	if err := w.client.List(ctx, classes, w.classSelector()...); err != nil {
		return "", fmt.Errorf("listing ExtractorClass %s: %w", w.opts.Class.Name, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range classes.Items {
		w.setCircuit(time.Now(), &classes.Items[i])
	}
	return classes.ResourceVersion, nil
}

func (w *Watch) classEvent(ev watch.Event) {
	class, ok := ev.Object.(*ejv1.ExtractorClass)
	if !ok || ev.Type == watch.Deleted {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setCircuit(time.Now(), class)
}

// setCircuit follows the circuit's state, and excuses the queue while the
// breaker holds it back.
func (w *Watch) setCircuit(now time.Time, class *ejv1.ExtractorClass) {
	state := ejv1.CircuitClosed
	if class.Status.Circuit != nil && class.Status.Circuit.State != "" {
		state = class.Status.Circuit.State
	}
	c := w.circuit
	if state == c.state {
		return
	}
	if state == ejv1.CircuitOpen {
		c.report.Openings++
		c.openSince = now
	} else {
		c.openSince = time.Time{}
	}
	switch {
	case c.state == ejv1.CircuitClosed:
		w.excuseFromLocked("circuit", now)
	case state == ejv1.CircuitClosed:
		c.report.LastClosed = now
		rampUp := time.Duration(0)
		if cb := w.opts.Class.Spec.CircuitBreaker; cb.RampUp != nil {
			rampUp = cb.RampUp.Duration
		}
		w.excuseUntilLocked("circuit", now.Add(rampUp))
	}
	c.state = state
}

// probesInFlight counts the class's probe Pods that have not finished.
func (w *Watch) probesInFlight() int {
	n := 0
	for _, p := range w.pods {
		if p.inFlight && p.probe {
			n++
		}
	}
	return n
}

// checkProbes checks the probes in flight after a Pod event.
func (w *Watch) checkProbes(now time.Time, after string) {
	if !w.hasBreaker() {
		return
	}
	n := w.probesInFlight()
	c := w.circuit
	c.report.PeakProbes = max(c.report.PeakProbes, n)
	if limit := int(w.opts.Class.Spec.CircuitBreaker.Probes); n > max(limit, 1) {
		w.report.Violations = append(w.report.Violations, fmt.Sprintf("%d probe Pods of ExtractorClass %s in flight after %s at %s, more than probes %d",
			n, w.opts.Class.Name, after, now.UTC().Format("15:04:05.000"), limit))
	}
}

// podFinished notes when an attempt's Pod finished and the circuit's state then.
func (w *Watch) podFinished(now time.Time, p *podState) {
	if !w.hasBreaker() {
		return
	}
	key := attemptKey{p.jobUID, int32(p.attempt)}
	if _, seen := w.circuit.ends[key]; !seen {
		w.circuit.ends[key] = attemptEnd{at: now, openSince: w.circuit.openSince}
		w.judge(key, p.namespace+"/"+p.job)
	}
}

func (w *Watch) podProbe(p *podState) {
	if p.probe {
		w.circuit.probes[p.uid] = true
		w.circuit.report.ProbesSeen = len(w.circuit.probes)
	}
}

// jobRecords checks a job's new attempt records and its retryCount.
func (w *Watch) jobRecords(job *ejv1.ExtractionJob) {
	if !w.hasBreaker() || job.Status.ExtractorClassName != w.opts.Class.Name {
		return
	}
	c := w.circuit
	name := job.Namespace + "/" + job.Name
	newCounted := 0
	var newParked []int32
	for _, r := range job.Status.Attempts {
		if r.Outcome == ejv1.OutcomeRunning {
			continue
		}
		key := attemptKey{job.UID, r.Attempt}
		if _, seen := c.records[key]; seen {
			continue
		}
		failed := r.Outcome == ejv1.OutcomeFailed
		c.records[key] = attemptRecord{failed: failed, parked: r.Parked}
		switch {
		case r.Parked:
			c.report.Parked++
			newParked = append(newParked, r.Attempt)
		case failed:
			newCounted++
		}
		w.judge(key, name)
	}
	previous := c.retries[job.UID]
	if rise := job.Status.RetryCount - previous; rise > int32(newCounted) {
		w.report.Violations = append(w.report.Violations, fmt.Sprintf(
			"job %s: retryCount rose from %d to %d (resourceVersion %s) with %d newly recorded attempts failed unparked (newly parked: %v): a retry was spent on a parked attempt",
			name, previous, job.Status.RetryCount, job.ResourceVersion, newCounted, newParked))
	}
	c.retries[job.UID] = job.Status.RetryCount
}

// judge checks one attempt once both its Pod's end and its record are known:
// a failure that ended while the circuit had been Open for Grace must be
// parked.
func (w *Watch) judge(key attemptKey, job string) {
	c := w.circuit
	end, ended := c.ends[key]
	record, recorded := c.records[key]
	if !ended || !recorded || c.judged[key] {
		return
	}
	c.judged[key] = true
	if record.failed && !record.parked && !end.openSince.IsZero() && end.at.Sub(end.openSince) >= w.opts.Grace {
		w.report.Violations = append(w.report.Violations, fmt.Sprintf(
			"job %s: attempt %d failed at %s while the circuit of ExtractorClass %s was Open (since %s), and was not parked: it spent a retry",
			job, key.attempt, end.at.UTC().Format("15:04:05.000"), w.opts.Class.Name, end.openSince.UTC().Format("15:04:05.000")))
	}
}
