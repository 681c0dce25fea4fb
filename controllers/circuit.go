package controllers

import (
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// This file is the circuit breaker of ExtractorClasses as a pure state
// machine: what an attempt's outcome does to a class's circuit, and what the
// circuit lets the admission queue start. The class's status holds the
// circuit; the count of failures below the threshold lives in memory
// (circuitTally, in circuit_tally.go), so a restart may lose it but never
// closes an open circuit.

// The breaker's defaults, as the CRD's, for classes created before them.
var defaultCircuitErrorTypes = []string{
	podcontract.ConnectionError, podcontract.ServiceUnavailable, podcontract.RateLimitExceeded,
	podcontract.TimeoutError, podcontract.S3ConnectionError, podcontract.Werk24Timeout,
}

const (
	defaultCircuitFailures        = 5
	defaultCircuitOpenDuration    = time.Minute
	defaultCircuitMaxOpenDuration = 30 * time.Minute
	defaultCircuitProbes          = 1
	// rampUpSteps is how many times the queue is woken while the circuit ramps up.
	rampUpSteps = 10
)

// circuitPolicy is a class's spec.circuitBreaker with its defaults filled in.
type circuitPolicy struct {
	errorTypes      []string
	threshold       int
	openDuration    time.Duration
	maxOpenDuration time.Duration
	probes          int
	rampUp          time.Duration
}

// circuitPolicyOf is the class's breaker; false when it has none. The API
// server fills in the defaults; zeros are defaulted here too, but for
// rampUp, where 0 means no ramp-up.
func circuitPolicyOf(class *ejv1.ExtractorClass) (circuitPolicy, bool) {
	if class == nil || class.Spec.CircuitBreaker == nil {
		return circuitPolicy{}, false
	}
	cb := class.Spec.CircuitBreaker
	p := circuitPolicy{
		errorTypes:      cb.ErrorTypes,
		threshold:       int(cb.ConsecutiveFailures),
		openDuration:    durationOf(cb.OpenDuration),
		maxOpenDuration: durationOf(cb.MaxOpenDuration),
		probes:          int(cb.Probes),
		rampUp:          durationOf(cb.RampUp),
	}
	if len(p.errorTypes) == 0 {
		p.errorTypes = defaultCircuitErrorTypes
	}
	if p.threshold <= 0 {
		p.threshold = defaultCircuitFailures
	}
	if p.openDuration <= 0 {
		p.openDuration = defaultCircuitOpenDuration
	}
	if p.maxOpenDuration <= 0 {
		p.maxOpenDuration = defaultCircuitMaxOpenDuration
	}
	p.maxOpenDuration = max(p.maxOpenDuration, p.openDuration)
	if p.probes <= 0 {
		p.probes = defaultCircuitProbes
	}
	return p, true
}

func durationOf(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

// circuitSignal is what an attempt's outcome says about the service.
type circuitSignal int

const (
	// signalNone: the outcome says nothing about the service (the operator
	// derived the failure from the Pod: attemptTimeout, OOMKilled, an
	// eviction, a deletion, an image error, a cancel).
	signalNone circuitSignal = iota
	// signalServiceDown: the extractor reported one of the breaker's error types.
	signalServiceDown
	// signalServiceUp: the attempt succeeded, or the extractor reported
	// another error type: the service answered.
	signalServiceUp
)

// signalOf is what the outcome of an attempt says: failure is nil for a
// success; reported says the extractor wrote the failure's error type.
func (p circuitPolicy) signalOf(failure *ejv1.Failure, reported bool) circuitSignal {
	switch {
	case failure == nil:
		return signalServiceUp
	case !reported:
		return signalNone
	case podcontract.ErrorTypeMatches(failure.ErrorType, p.errorTypes...):
		return signalServiceDown
	default:
		return signalServiceUp
	}
}

// reportedByExtractor says the failure's error type is the one the extractor
// wrote in its termination message, and not one the operator derived from
// the Pod. It mirrors builtinVerdict: only its last path, past the cluster's
// and the kubelet's reasons, parses the termination message.
func reportedByExtractor(observed attemptFailure, failure ejv1.Failure) bool {
	if observed.deleted || hasReason(observed.reasons, podReasonDeadlineExceeded) || scratchSpaceExceeded(observed) {
		return false
	}
	errorType, _, ok := podcontract.ParseFailure(observed.message)
	return ok && errorType == failure.ErrorType && failure.Reason == firstReason(observed.reasons)
}

// circuitState is the state the circuit is in at now: an open circuit
// whose reopenAt passed is half-open, whether or not its status says so yet.
func circuitState(c *ejv1.CircuitStatus, now time.Time) ejv1.CircuitState {
	switch {
	case c == nil || c.State == "":
		return ejv1.CircuitClosed
	case c.State == ejv1.CircuitOpen && c.ReopenAt != nil && !now.Before(c.ReopenAt.Time):
		return ejv1.CircuitHalfOpen
	}
	return c.State
}

// openFor is how long the circuit stays open on its openCount-th opening
// since it last closed: openDuration doubled after each failed probe, never
// shorter than the largest Retry-After hint of the failures that opened it,
// and at most maxOpenDuration.
func (p circuitPolicy) openFor(openCount int32, largestRetryAfter time.Duration) time.Duration {
	d := p.openDuration
	for i := int32(1); i < openCount && d < p.maxOpenDuration; i++ {
		d = min(2*d, p.maxOpenDuration)
	}
	return min(max(d, largestRetryAfter), p.maxOpenDuration)
}

// circuitOutcome is an attempt's outcome as the breaker sees it.
type circuitOutcome struct {
	signal circuitSignal
	// probe says the attempt ran as a probe of a half-open circuit.
	probe bool
	// retryAfter is the service's Retry-After hint of a failure; 0 without one.
	retryAfter         time.Duration
	errorType, message string
}

// circuitStep is what one outcome does to a class's circuit.
type circuitStep struct {
	// circuit is the class's new circuit status; nil leaves it as it was.
	circuit *ejv1.CircuitStatus
	// park says the job spends no retry: it waits in Queued for the circuit.
	park bool
}

// step is the breaker's state machine: what the outcome of a job's attempt
// does to the circuit. A closed circuit's failures are counted by the
// class's circuitTally, in the order the attempts finished; pending is the
// opening it counted that the class's status does not show yet, nil without one.
func (p circuitPolicy) step(current *ejv1.CircuitStatus, pending *circuitOpening, outcome circuitOutcome, now time.Time) circuitStep {
	state := circuitState(current, now)
	switch {
	case outcome.signal == signalNone:
		return circuitStep{}
	case state == ejv1.CircuitClosed && outcome.signal == signalServiceDown && pending != nil:
		// The job's failure is one of those that opened the circuit, or came
		// after them: it is parked once the class records the opening.
		return circuitStep{circuit: p.openedBy(current, *pending), park: true}
	case state == ejv1.CircuitClosed:
		return circuitStep{}
	case outcome.signal == signalServiceUp && outcome.probe && state == ejv1.CircuitHalfOpen:
		return circuitStep{circuit: closedCircuit(current, now)}
	case outcome.signal == signalServiceUp:
		// A straggler that started before the circuit opened: only probes close it.
		return circuitStep{}
	case outcome.probe && state == ejv1.CircuitHalfOpen:
		return circuitStep{circuit: p.opened(current, current.OpenCount+1, outcome.retryAfter, outcome, now), park: true}
	default:
		// Open, or a straggler failing while the probes run: the outage goes on.
		return circuitStep{park: true}
	}
}

// openedBy is the closed circuit opened by the failures a tally counted.
func (p circuitPolicy) openedBy(current *ejv1.CircuitStatus, o circuitOpening) *ejv1.CircuitStatus {
	return p.opened(current, 1, o.largestRetryAfter, o.last, o.at)
}

// opened is the circuit opened for the openCount-th time since it last closed.
func (p circuitPolicy) opened(current *ejv1.CircuitStatus, openCount int32, largestRetryAfter time.Duration, outcome circuitOutcome, now time.Time) *ejv1.CircuitStatus {
	c := &ejv1.CircuitStatus{}
	if current != nil {
		c.LastHandledResetRequest = current.LastHandledResetRequest
	}
	c.State = ejv1.CircuitOpen
	c.Since = ptrTime(now)
	c.ReopenAt = ptrTime(now.Add(p.openFor(openCount, largestRetryAfter)))
	c.OpenCount = openCount
	c.LastErrorType = outcome.errorType
	c.LastMessage = podcontract.Sanitize(outcome.message, maxCircuitMessage)
	return c
}

// closedCircuit is the circuit closed at now; its since starts the ramp-up.
func closedCircuit(current *ejv1.CircuitStatus, now time.Time) *ejv1.CircuitStatus {
	c := &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: ptrTime(now)}
	if current != nil {
		c.LastHandledResetRequest = current.LastHandledResetRequest
		c.LastErrorType, c.LastMessage = current.LastErrorType, current.LastMessage
	}
	return c
}

// halfOpened is the open circuit whose reopenAt passed, as its status records it.
func halfOpened(current *ejv1.CircuitStatus) *ejv1.CircuitStatus {
	c := current.DeepCopy()
	c.State = ejv1.CircuitHalfOpen
	c.Since = c.ReopenAt
	return c
}

// resetCircuit closes the circuit by an administrator's token. It reports
// false when the token was handled already.
func resetCircuit(current *ejv1.CircuitStatus, token string, now time.Time) (*ejv1.CircuitStatus, bool) {
	if token == "" || (current != nil && current.LastHandledResetRequest == token) {
		return current, false
	}
	var c *ejv1.CircuitStatus
	switch {
	case circuitState(current, now) != ejv1.CircuitClosed:
		c = closedCircuit(current, now)
	case current != nil:
		// Nothing to close: the circuit keeps its state, ramp-up included.
		c = current.DeepCopy()
	default:
		c = &ejv1.CircuitStatus{State: ejv1.CircuitClosed}
	}
	c.LastHandledResetRequest = token
	return c, true
}

// circuitGateMode is what a class's circuit lets the queue do now.
type circuitGateMode int

const (
	// gateNone: the circuit is closed and not ramping up; the class's caps apply.
	gateNone circuitGateMode = iota
	// gateOpen: no attempt starts.
	gateOpen
	// gateProbe: up to probes attempts run at once, as probes.
	gateProbe
	// gateRampUp: the class admits at most limit attempts at once.
	gateRampUp
)

// circuitGate is what a class's circuit lets the queue admit now.
type circuitGate struct {
	mode circuitGateMode
	// limit caps the attempts (gateRampUp) or the probes (gateProbe) that
	// may exist at once.
	limit int
	// wakeAfter is when the ramp-up lets more in; 0 when it does not.
	wakeAfter time.Duration
}

// gate is what the circuit lets the queue admit at now. target is how many
// attempts the ramp-up grows to: the class's maxRunning, or for a class
// without one the attempts it runs and the jobs waiting for it.
func (p circuitPolicy) gate(c *ejv1.CircuitStatus, now time.Time, target int) circuitGate {
	switch circuitState(c, now) {
	case ejv1.CircuitOpen:
		return circuitGate{mode: gateOpen}
	case ejv1.CircuitHalfOpen:
		return circuitGate{mode: gateProbe, limit: p.probes}
	}
	if c == nil || c.Since == nil || p.rampUp <= 0 {
		return circuitGate{}
	}
	elapsed := now.Sub(c.Since.Time)
	if elapsed >= p.rampUp || elapsed < 0 || target <= p.probes {
		return circuitGate{}
	}
	// The limit grows linearly from probes to target over rampUp.
	grown := int(math.Ceil(float64(target-p.probes) * float64(elapsed) / float64(p.rampUp)))
	step := max(p.rampUp/rampUpSteps, time.Second)
	return circuitGate{mode: gateRampUp, limit: p.probes + grown, wakeAfter: min(step, p.rampUp-elapsed)}
}

// circuitOpenMessage is the message of a job that waits for the class's
// open circuit: the same while it waits; the times are the class's.
func circuitOpenMessage(class string) string {
	return fmt.Sprintf("Waiting for ExtractorClass %s: its circuit breaker is open because the service failed; "+
		"see the class's status.circuit for when it tries again.", class)
}

// maxCircuitMessage is the schema's maxLength of status.circuit.lastMessage.
const maxCircuitMessage = 1024
