package controllers

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

var circuitEpoch = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// testCircuitPolicy is the breaker of the outage figure: five
// failures open it for ten seconds, doubled up to a minute, one probe, a
// ten-second ramp-up.
func testCircuitPolicy() circuitPolicy {
	p, _ := circuitPolicyOf(&ejv1.ExtractorClass{Spec: ejv1.ExtractorClassSpec{CircuitBreaker: &ejv1.CircuitBreaker{
		OpenDuration:    &metav1.Duration{Duration: 10 * time.Second},
		MaxOpenDuration: &metav1.Duration{Duration: time.Minute},
		RampUp:          &metav1.Duration{Duration: 10 * time.Second},
	}}})
	return p
}

func circuitAt(d time.Duration) *metav1.Time { return ptrTime(circuitEpoch.Add(d)) }

func openCircuit(since, reopenAt time.Duration, openCount int32) *ejv1.CircuitStatus {
	return &ejv1.CircuitStatus{State: ejv1.CircuitOpen, Since: circuitAt(since), ReopenAt: circuitAt(reopenAt), OpenCount: openCount,
		LastErrorType: "ServiceUnavailable", LastMessage: "the API is down"}
}

func TestCircuitStep(t *testing.T) {
	down := circuitOutcome{signal: signalServiceDown, errorType: "ServiceUnavailable", message: "the API is down"}
	up := circuitOutcome{signal: signalServiceUp}
	derived := circuitOutcome{signal: signalNone, errorType: ejv1.ErrorTypeOOMKilled}
	probe := func(o circuitOutcome) circuitOutcome { o.probe = true; return o }
	hinted := func(o circuitOutcome, d time.Duration) circuitOutcome { o.retryAfter = d; return o }
	halfOpen := &ejv1.CircuitStatus{State: ejv1.CircuitHalfOpen, Since: circuitAt(10 * time.Second), ReopenAt: circuitAt(10 * time.Second), OpenCount: 1,
		LastErrorType: "ServiceUnavailable", LastMessage: "the API is down"}
	// pending is the opening a tally counted at circuitEpoch, the last of its failures down.
	pending := func(largestRetryAfter time.Duration) *circuitOpening {
		return &circuitOpening{at: circuitEpoch, last: down, largestRetryAfter: largestRetryAfter}
	}
	cases := []struct {
		name    string
		current *ejv1.CircuitStatus
		pending *circuitOpening
		outcome circuitOutcome
		now     time.Duration
		want    circuitStep
	}{
		{name: "a failure of a closed circuit below the threshold changes nothing: the tally counts it", outcome: down,
			want: circuitStep{}},
		{name: "a failure once the tally reached the threshold opens the circuit for openDuration and parks the job",
			pending: pending(0), outcome: down,
			want: circuitStep{circuit: openCircuit(0, 10*time.Second, 1), park: true}},
		{name: "the circuit opens from when the threshold was reached, not from the job's reconcile",
			pending: pending(0), outcome: down, now: 3 * time.Second,
			want: circuitStep{circuit: openCircuit(0, 10*time.Second, 1), park: true}},
		{name: "a circuit without a status yet is closed", current: nil, pending: pending(0), outcome: down,
			want: circuitStep{circuit: openCircuit(0, 10*time.Second, 1), park: true}},
		{name: "the largest Retry-After hint of the failures that opened it delays reopenAt",
			pending: pending(25 * time.Second), outcome: hinted(down, 5*time.Second),
			want: circuitStep{circuit: openCircuit(0, 25*time.Second, 1), park: true}},
		{name: "a Retry-After hint never holds the circuit open past maxOpenDuration",
			pending: pending(24 * time.Hour), outcome: down,
			want: circuitStep{circuit: openCircuit(0, time.Minute, 1), park: true}},
		{name: "a success of a closed circuit changes nothing: the tally counts it", pending: pending(0), outcome: up,
			want: circuitStep{}},
		{name: "a failure the operator derived from the Pod neither opens nor parks", pending: pending(0), outcome: derived,
			want: circuitStep{}},
		{name: "a failure while the circuit is open parks the job and changes nothing", current: openCircuit(0, 10*time.Second, 1),
			outcome: down, now: 3 * time.Second, want: circuitStep{park: true}},
		{name: "a success of an attempt that started before the circuit opened leaves it open", current: openCircuit(0, 10*time.Second, 1),
			outcome: up, now: 3 * time.Second, want: circuitStep{}},
		{name: "a probe that succeeds closes the circuit", current: halfOpen, outcome: probe(up), now: 12 * time.Second,
			want: circuitStep{circuit: &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(12 * time.Second),
				LastErrorType: "ServiceUnavailable", LastMessage: "the API is down"}}},
		{name: "a probe of a circuit whose reopenAt passed closes it before its status says half-open",
			current: openCircuit(0, 10*time.Second, 1), outcome: probe(up), now: 12 * time.Second,
			want: circuitStep{circuit: &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(12 * time.Second),
				LastErrorType: "ServiceUnavailable", LastMessage: "the API is down"}}},
		{name: "a probe that fails opens the circuit again for twice as long and parks the job", current: halfOpen,
			outcome: probe(down), now: 12 * time.Second,
			want: circuitStep{circuit: openCircuit(12*time.Second, 32*time.Second, 2), park: true}},
		{name: "a probe cancelled, or taken by the cluster, leaves the circuit half-open for another probe", current: halfOpen,
			outcome: probe(derived), now: 12 * time.Second, want: circuitStep{}},
		{name: "a failure of an attempt that is no probe while the probes run parks the job", current: halfOpen,
			outcome: down, now: 12 * time.Second, want: circuitStep{park: true}},
		{name: "a reset token survives the circuit opening",
			current: &ejv1.CircuitStatus{State: ejv1.CircuitClosed, LastHandledResetRequest: "t1"}, pending: pending(0), outcome: down,
			want: circuitStep{circuit: func() *ejv1.CircuitStatus {
				c := openCircuit(0, 10*time.Second, 1)
				c.LastHandledResetRequest = "t1"
				return c
			}(), park: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := testCircuitPolicy().step(tc.current, tc.pending, tc.outcome, circuitEpoch.Add(tc.now))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(circuitStep{})); diff != "" {
				t.Errorf("step (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenDurationDoublesUpToMax(t *testing.T) {
	p := testCircuitPolicy()
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if got := p.openFor(int32(i+1), 0); got != w {
			t.Errorf("openFor(opening %d) = %v, want %v", i+1, got, w)
		}
	}
	if got := p.openFor(1<<30, 0); got != time.Minute {
		t.Errorf("openFor(a huge opening count) = %v, want the max %v", got, time.Minute)
	}
}

func TestCircuitGate(t *testing.T) {
	closedAt := &ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(0)}
	cases := []struct {
		name    string
		circuit *ejv1.CircuitStatus
		now     time.Duration
		target  int
		want    circuitGate
	}{
		{"a class that never opened admits as its caps say", nil, 0, 50, circuitGate{}},
		{"an open circuit admits nothing", openCircuit(0, 10*time.Second, 1), 5 * time.Second, 50, circuitGate{mode: gateOpen}},
		{"an open circuit past reopenAt admits its probes", openCircuit(0, 10*time.Second, 1), 10 * time.Second, 50,
			circuitGate{mode: gateProbe, limit: 1}},
		{"a circuit that just closed admits as many as it probed", closedAt, 0, 50,
			circuitGate{mode: gateRampUp, limit: 1, wakeAfter: time.Second}},
		{"halfway through the ramp-up it admits half the way to maxRunning", closedAt, 5 * time.Second, 51,
			circuitGate{mode: gateRampUp, limit: 26, wakeAfter: time.Second}},
		{"the last wake-up of the ramp-up falls at its end", closedAt, 9500 * time.Millisecond, 51,
			circuitGate{mode: gateRampUp, limit: 49, wakeAfter: 500 * time.Millisecond}},
		{"after the ramp-up the caps apply again", closedAt, 10 * time.Second, 50, circuitGate{}},
		{"no ramp-up is needed for no more jobs than probes", closedAt, time.Second, 1, circuitGate{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := testCircuitPolicy().gate(tc.circuit, circuitEpoch.Add(tc.now), tc.target)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(circuitGate{})); diff != "" {
				t.Errorf("gate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCircuitSignalOfAnAttempt(t *testing.T) {
	exit := func(code int32) *int32 { return &code }
	cases := []struct {
		name     string
		observed attemptFailure
		want     circuitSignal
	}{
		{"the extractor reporting ServiceUnavailable says the service is down",
			attemptFailure{exitCode: exit(69), reasons: []string{"Error"}, message: "ServiceUnavailable: 503 from the API"}, signalServiceDown},
		{"error types match as case-insensitive substrings",
			attemptFailure{exitCode: exit(75), reasons: []string{"Error"}, message: "werk24timeout: no answer"}, signalServiceDown},
		{"the extractor reporting CorruptedFile says the service answered",
			attemptFailure{exitCode: exit(65), reasons: []string{"Error"}, message: "CorruptedFile: not a PDF"}, signalServiceUp},
		{"an attemptTimeout says nothing about the service",
			attemptFailure{reasons: []string{podReasonDeadlineExceeded}, message: "TimeoutError: slow"}, signalNone},
		{"an OOMKilled attempt says nothing about the service",
			attemptFailure{exitCode: exit(137), reasons: []string{containerReasonOOMKilled}}, signalNone},
		{"an eviction says nothing about the service",
			attemptFailure{reasons: []string{evictedReason}, message: "ServiceUnavailable: it said so before"}, signalNone},
		{"a deleted Pod says nothing about the service",
			attemptFailure{deleted: true, message: "ServiceUnavailable: it said so before"}, signalNone},
		{"an image pull error says nothing about the service",
			attemptFailure{reasons: []string{waitingErrImagePull}, message: "ConnectionError: registry"}, signalNone},
		{"an exit code without a message says nothing about the service",
			attemptFailure{exitCode: exit(69), reasons: []string{"Error"}}, signalNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failure, _ := classify(tc.observed, nil)
			got := testCircuitPolicy().signalOf(&failure, reportedByExtractor(tc.observed, failure))
			if got != tc.want {
				t.Errorf("signal of %+v = %v, want %v", failure, got, tc.want)
			}
		})
	}
	if got := testCircuitPolicy().signalOf(nil, false); got != signalServiceUp {
		t.Errorf("signal of a success = %v, want %v", got, signalServiceUp)
	}
}

func TestResetCircuit(t *testing.T) {
	now := circuitEpoch.Add(time.Minute)
	cases := []struct {
		name        string
		current     *ejv1.CircuitStatus
		token       string
		want        *ejv1.CircuitStatus
		wantChanged bool
	}{
		{"a new token closes an open circuit", openCircuit(0, time.Hour, 3), "t1",
			&ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: ptrTime(now), LastErrorType: "ServiceUnavailable",
				LastMessage: "the API is down", LastHandledResetRequest: "t1"}, true},
		{"a handled token changes nothing", &ejv1.CircuitStatus{State: ejv1.CircuitOpen, LastHandledResetRequest: "t1"}, "t1",
			&ejv1.CircuitStatus{State: ejv1.CircuitOpen, LastHandledResetRequest: "t1"}, false},
		{"a new token on a closed circuit is only recorded", &ejv1.CircuitStatus{State: ejv1.CircuitClosed}, "t2",
			&ejv1.CircuitStatus{State: ejv1.CircuitClosed, LastHandledResetRequest: "t2"}, true},
		{"no token changes nothing", openCircuit(0, time.Hour, 1), "", openCircuit(0, time.Hour, 1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := resetCircuit(tc.current, tc.token, now)
			if diff := cmp.Diff(tc.want, got); diff != "" || changed != tc.wantChanged {
				t.Errorf("resetCircuit changed %v, want %v (-want +got):\n%s", changed, tc.wantChanged, diff)
			}
		})
	}
}

func TestCircuitPolicyDefaults(t *testing.T) {
	got, ok := circuitPolicyOf(&ejv1.ExtractorClass{Spec: ejv1.ExtractorClassSpec{CircuitBreaker: &ejv1.CircuitBreaker{}}})
	want := circuitPolicy{errorTypes: defaultCircuitErrorTypes, threshold: 5, openDuration: time.Minute,
		maxOpenDuration: 30 * time.Minute, probes: 1, rampUp: 0}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(circuitPolicy{})); !ok || diff != "" {
		t.Errorf("circuitPolicyOf an empty breaker (-want +got):\n%s", diff)
	}
	if _, ok := circuitPolicyOf(&ejv1.ExtractorClass{}); ok {
		t.Error("a class without spec.circuitBreaker has a breaker")
	}
}

// breakerClassIn is a class named api with the test breaker and the circuit.
func breakerClassIn(circuit *ejv1.CircuitStatus) *ejv1.ExtractorClass {
	class := &ejv1.ExtractorClass{ObjectMeta: metav1.ObjectMeta{Name: "api"}, Spec: ejv1.ExtractorClassSpec{
		CircuitBreaker: &ejv1.CircuitBreaker{Probes: 1, OpenDuration: &metav1.Duration{Duration: 10 * time.Second}}}}
	class.Status.Circuit = circuit
	return class
}

func TestAFailureWhileTheCircuitIsOpenParksTheJob(t *testing.T) {
	open := openCircuit(-time.Minute, time.Hour, 1)
	cases := []struct {
		name       string
		circuit    *ejv1.CircuitStatus
		pending    *circuitOpening
		rules      []ejv1.RetryRule
		message    string
		wantPhase  ejv1.Phase
		wantRetry  int32
		wantParked bool
		wantOpened bool
	}{
		{name: "a failure of a breaker type while the circuit is open spends no retry", circuit: open,
			message: "ServiceUnavailable: 503", wantPhase: ejv1.PhaseQueued, wantParked: true},
		{name: "the failure that opens the circuit spends no retry",
			pending: &circuitOpening{at: transitionNow, last: circuitOutcome{signal: signalServiceDown, errorType: "ServiceUnavailable"}},
			message: "ServiceUnavailable: 503", wantPhase: ejv1.PhaseQueued, wantParked: true, wantOpened: true},
		{name: "a failure below the threshold is retried as usual",
			message: "ServiceUnavailable: 503", wantPhase: ejv1.PhaseRetrying, wantRetry: 1},
		{name: "a failure of another type while the circuit is open is retried as usual", circuit: open,
			message: "CorruptedFile: not a PDF", wantPhase: ejv1.PhaseFailed},
		{name: "a job rule that fails the error type wins over parking", circuit: open,
			rules:   []ejv1.RetryRule{{ErrorTypes: []string{"ServiceUnavailable"}, Action: ejv1.RuleActionFail}},
			message: "ServiceUnavailable: 503", wantPhase: ejv1.PhaseFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job := runningJob(1)
			job.Spec.RetryPolicy.Rules = tc.rules
			job.Status.ExtractorClassName = "api"
			policy := testCircuitPolicy()
			policy.threshold = 5
			s := &reconcileScope{job: job, now: transitionNow, jitter: func() float64 { return 0 },
				circuit: &circuitView{class: breakerClassIn(tc.circuit), policy: policy, pending: tc.pending}}

			s.followPod(terminatedPod(1, corev1.PodFailed, 69, tc.message))

			if job.Status.Phase != tc.wantPhase || job.Status.RetryCount != tc.wantRetry {
				t.Errorf("phase %s, retryCount %d; want %s, %d (message %q)", job.Status.Phase, job.Status.RetryCount,
					tc.wantPhase, tc.wantRetry, job.Status.Message)
			}
			if got := job.Status.Attempts[0]; got.Parked != tc.wantParked || got.Outcome != ejv1.OutcomeFailed {
				t.Errorf("attempt record %+v, want outcome Failed and parked %v", got, tc.wantParked)
			}
			if tc.wantParked && job.Status.Message != circuitOpenMessage("api") {
				t.Errorf("message = %q, want %q", job.Status.Message, circuitOpenMessage("api"))
			}
			if opened := s.circuitStep != nil && s.circuitStep.step.circuit != nil; opened != tc.wantOpened {
				t.Errorf("the reconcile writes an opened circuit: %v, want %v", opened, tc.wantOpened)
			}
			parkedEvents := 0
			for _, e := range s.queued.Events {
				if e.Reason == ejv1.ReasonAttemptParked {
					parkedEvents++
				}
			}
			if want := map[bool]int{true: 1}[tc.wantParked]; parkedEvents != want {
				t.Errorf("%d AttemptParked events, want %d", parkedEvents, want)
			}
		})
	}
}

func TestTheQueueAdmitsNothingWhileOpenAndOneProbeWhenHalfOpen(t *testing.T) {
	clock := clocktesting.NewFakeClock(circuitEpoch.Add(time.Minute))
	first := admissionTestJob("a", "first", 1, ejv1.PhaseQueued)
	second := admissionTestJob("b", "second", 2, ejv1.PhaseQueued)
	for _, job := range []*ejv1.ExtractionJob{first, second} {
		job.Status.ExtractorClassName = "api"
	}
	q := newAdmissionQueue(fakeAdmissionCache(first, second), clock)

	open := breakerClassIn(openCircuit(0, 2*time.Minute, 1))
	if got := mustAdmit(t, q, first, open); got != (admissionVerdict{CircuitOpen: true}) {
		t.Errorf("an open circuit: verdict %+v, want refused for the circuit", got)
	}

	halfOpen := breakerClassIn(openCircuit(0, time.Minute, 1))
	if got := mustAdmit(t, q, second, halfOpen); got != (admissionVerdict{CircuitOpen: true}) {
		t.Errorf("a half-open circuit admitted a job behind the head: %+v", got)
	}
	if got := mustAdmit(t, q, first, halfOpen); !got.Admitted || !got.Probe {
		t.Errorf("a half-open circuit: the head's verdict %+v, want admitted as a probe", got)
	}
	if got := mustAdmit(t, q, second, halfOpen); got != (admissionVerdict{CircuitOpen: true}) {
		t.Errorf("a second probe was admitted while the first holds its slot: %+v", got)
	}

	// The probe's Pod failed; its outcome is not recorded yet, so it keeps the tracking finalizer.
	probe := classPod("a", podName(first, 1), "api", corev1.PodFailed)
	probe.Labels[ejv1.CircuitProbeLabel] = "true"
	probe.Finalizers = []string{ejv1.AttemptTrackingFinalizer}
	q.reader = fakeAdmissionCache(first, second, probe)
	q.forget(types.NamespacedName{Namespace: "a", Name: "first"})
	if got := mustAdmit(t, q, second, halfOpen); got != (admissionVerdict{CircuitOpen: true}) {
		t.Errorf("a probe whose failure is not recorded yet freed its slot: %+v", got)
	}
	probe.Finalizers = nil
	q.reader = fakeAdmissionCache(first, second, probe)
	if got := mustAdmit(t, q, second, halfOpen); !got.Admitted || !got.Probe {
		t.Errorf("after the probe's outcome was recorded: verdict %+v, want the next job admitted as a probe", got)
	}
}

func TestAfterClosingTheQueueAdmitsAGrowingNumber(t *testing.T) {
	clock := clocktesting.NewFakeClock(circuitEpoch.Add(5 * time.Second))
	class := breakerClassIn(&ejv1.CircuitStatus{State: ejv1.CircuitClosed, Since: circuitAt(0)})
	class.Spec.MaxRunning = ptr.To[int32](11)
	class.Spec.CircuitBreaker.RampUp = &metav1.Duration{Duration: 10 * time.Second}
	objects := []client.Object{}
	// Halfway through the ramp-up, 1 + (11-1)/2 = 6 attempts may run: 5 do.
	for i := range 5 {
		objects = append(objects, classPod("a", fmt.Sprintf("running-%d", i), "api", corev1.PodRunning))
	}
	first, second := admissionTestJob("b", "first", 1, ejv1.PhasePending), admissionTestJob("b", "second", 2, ejv1.PhasePending)
	q := newAdmissionQueue(fakeAdmissionCache(append(objects, first, second)...), clock)

	if got := mustAdmit(t, q, first, class); !got.Admitted || got.Probe {
		t.Errorf("the sixth attempt halfway through the ramp-up: verdict %+v, want admitted", got)
	}
	if got := mustAdmit(t, q, second, class); got != (admissionVerdict{RampUp: true}) {
		t.Errorf("the seventh attempt halfway through the ramp-up: verdict %+v, want refused for the ramp-up", got)
	}
	clock.Step(5 * time.Second)
	if got := mustAdmit(t, q, second, class); !got.Admitted {
		t.Errorf("after the ramp-up: verdict %+v, want admitted within maxRunning", got)
	}
}

func TestTheCircuitWaitsForTheHintTheExtractorAskedFor(t *testing.T) {
	tests := []struct {
		name    string
		failure *ejv1.Failure
		want    time.Duration
	}{
		{"a success has no hint", nil, 0},
		{"a failure without a hint has none", &ejv1.Failure{ErrorType: "ServiceUnavailable"}, 0},
		{"the hint is the one lastFailure records", &ejv1.Failure{ErrorType: "ServiceUnavailable", RetryAfter: &metav1.Duration{Duration: 90 * time.Second}}, 90 * time.Second},
		{"a negative hint asks for nothing", &ejv1.Failure{RetryAfter: &metav1.Duration{Duration: -time.Second}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfterHint(tt.failure); got != tt.want {
				t.Errorf("retryAfterHint = %v, want %v", got, tt.want)
			}
		})
	}
}
