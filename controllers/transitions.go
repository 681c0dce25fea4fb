package controllers

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// This file is the job's state machine: what each thing that happens to an
// attempt does to the job's status, and what it announces. It reads and
// writes nothing through the API; the reconciler does the reading, the Pod
// creates and deletes and the status write around it.

// reconcileScope is one reconcile's view of a job: the time it acts on, the
// policy's sources of time and randomness, and what it announces once the
// status that records its transitions is written, so that a reconcile that
// fails and runs again never announces a transition twice, nor drops one.
type reconcileScope struct {
	job *ejv1.ExtractionJob
	now time.Time
	// jitter returns a random number in [0, 1) for the backoff's jitter.
	jitter func() float64
	// imagePullGracePeriod is how long an attempt may wait for its image or
	// its container configuration before it fails.
	imagePullGracePeriod time.Duration
	queued               announcements
	// waitReason says why a Pending job has no Pod yet, when it is not simply
	// about to get one: its class or its ServiceAccount is missing. It is
	// derived again on every reconcile that starts no attempt.
	waitReason string
	// deleted is set when the reconcile deleted the job, leaving no status to write.
	deleted bool
	// schedulingTimeout is how long the job's class lets an attempt's Pod
	// stay unschedulable before the attempt fails; 0 lets it wait forever.
	schedulingTimeout time.Duration
	// circuit is the job's class's circuit breaker, when it has one and the
	// reconcile follows an attempt.
	circuit *circuitView
	// circuitStep is what the attempt's outcome did to the circuit; the
	// reconciler writes it on the class before the job's status.
	circuitStep *circuitWrite
	// probe says the attempt the reconcile starts probes its class's half-open circuit.
	probe bool
	// createdPod says the reconcile created the next attempt's Pod; it
	// then writes no status (see the reconciler's writeStatusAndAnnounce).
	createdPod bool
}

// announcements are what a reconcile tells the world about the transitions
// it made: events and metric samples, emitted after the status that
// records them is written. They are data, not calls, so that the state
// machine can be tested without a recorder or a registry.
type announcements struct {
	Events  []jobEvent
	Metrics []observation
}

// jobEvent is an event about the job.
type jobEvent struct {
	Type, Reason, Note string
	// Pod is the attempt's Pod that the event is also about, if any.
	Pod *corev1.ObjectReference
}

// observation is one metric sample: Value is added to a counter, or
// observed by a histogram. Labels are the metric's labels, all of them.
type observation struct {
	Metric string
	Labels prometheus.Labels
	Value  float64
}

func (s *reconcileScope) event(eventType, reason, format string, args ...any) {
	s.podEvent(nil, eventType, reason, format, args...)
}

// podEvent queues an event about the job that also names the attempt's Pod, when there is one.
func (s *reconcileScope) podEvent(pod *corev1.Pod, eventType, reason, format string, args ...any) {
	s.queued.Events = append(s.queued.Events, jobEvent{
		Type: eventType, Reason: reason, Note: fmt.Sprintf(format, args...), Pod: podReference(pod),
	})
}

// ofAttemptStart are the samples that only the reconcile that starts an
// attempt takes, and none of its events: how late a retry started, whether
// its memory grew, how long the job waited for a slot. The reconcile that
// adopts the attempt's Pod makes the rest again.
func (a announcements) ofAttemptStart() announcements {
	var kept announcements
	for _, o := range a.Metrics {
		switch o.Metric {
		case metricRetryLateness, metricOOMMemoryIncreases, metricQueueWait:
			kept.Metrics = append(kept.Metrics, o)
		}
	}
	return kept
}

// observe queues a metric sample.
func (s *reconcileScope) observe(metric string, value float64, labels prometheus.Labels) {
	s.queued.Metrics = append(s.queued.Metrics, observation{Metric: metric, Labels: labels, Value: value})
}

func podReference(pod *corev1.Pod) *corev1.ObjectReference {
	if pod == nil {
		return nil
	}
	return &corev1.ObjectReference{
		APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name,
		UID: pod.UID, ResourceVersion: pod.ResourceVersion,
	}
}

// acceptJob takes a new job up: it waits for its first attempt.
func (s *reconcileScope) acceptJob() {
	s.job.Status.Phase = ejv1.PhasePending
	s.job.Status.StartTime = ptrTime(s.now)
}

// retryWait is how long a Retrying job still waits for its retry; 0 when it is due.
func (s *reconcileScope) retryWait() time.Duration {
	if due := s.job.Status.NextRetryAt; due != nil && due.After(s.now) {
		return due.Sub(s.now)
	}
	return 0
}

// handleRetryRequest restarts a Failed or Cancelled job when the retry
// annotation carries a token the job has not handled yet.
func (s *reconcileScope) handleRetryRequest() {
	job := s.job
	token := job.Annotations[ejv1.RetryRequestAnnotation]
	if token == "" || token == job.Status.LastHandledRetryRequest {
		return
	}
	job.Status.LastHandledRetryRequest = token
	switch phase := job.Status.Phase; {
	case phase == "":
		// A job created with the annotation already set has nothing to retry.
	case (phase == ejv1.PhaseFailed || phase == ejv1.PhaseCancelled) && !job.Spec.Cancel:
		job.Status.Phase = ejv1.PhasePending
		job.Status.RetryCount = 0
		job.Status.DisruptionCount = 0
		job.Status.OOMKilledCount = 0
		job.Status.PodName = ""
		job.Status.NextRetryAt = nil
		job.Status.CompletionTime = nil
		job.Status.LastFailure = nil
		job.Status.Result = nil
		if job.Spec.ExtractorClassName == "" {
			// The default is chosen again: the one the job had may no longer admit it.
			job.Status.ExtractorClassName = ""
		}
		job.Status.Message = "Manual retry requested; starting a new attempt."
		s.observe(metricManualRetries, 1, nil)
		s.event(corev1.EventTypeNormal, ejv1.ReasonManualRetry, "Manual retry requested with token %q after the job was %s.", token, phase)
	case phase == ejv1.PhaseFailed || phase == ejv1.PhaseCancelled:
		s.event(corev1.EventTypeWarning, ejv1.ReasonRetryRequestIgnored,
			"Retry request %q ignored: the job is %s and spec.cancel is true; set it to false to retry.", token, phase)
	default:
		s.event(corev1.EventTypeWarning, ejv1.ReasonRetryRequestIgnored,
			"Retry request %q ignored: the job is %s; only Failed or Cancelled jobs can be retried.", token, phase)
	}
}

// ignoreCancel says, once per change of the spec, that cancelling a job that
// already finished changes nothing.
func (s *reconcileScope) ignoreCancel() {
	job := s.job
	if job.Status.Phase != ejv1.PhaseCancelled && job.Generation != job.Status.ObservedGeneration {
		s.event(corev1.EventTypeNormal, ejv1.ReasonCancelIgnored, "The job already finished as %s; cancel changes nothing.", job.Status.Phase)
	}
}

// cancelStopsPod reports whether cancelling the job must delete its current
// attempt's Pod first: one that has not finished.
func cancelStopsPod(pod *corev1.Pod) bool {
	return pod != nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// cancel ends an unfinished job as Cancelled. pod is the current attempt's
// Pod, nil when there is none; when it has succeeded, the extraction finished
// before the cancel arrived and the job keeps its result.
func (s *reconcileScope) cancel(pod *corev1.Pod) {
	job := s.job
	if attemptInFlight(job) {
		if pod != nil && pod.Status.Phase == corev1.PodSucceeded {
			s.attemptSucceeded(pod)
			return
		}
		s.closeAttemptRecord(ejv1.OutcomeCancelled, nil)
	}
	job.Status.Phase = ejv1.PhaseCancelled
	job.Status.NextRetryAt = nil
	job.Status.CompletionTime = ptrTime(s.now)
	job.Status.Message = "Cancelled by spec.cancel."
	s.event(corev1.EventTypeNormal, ejv1.ReasonCancelled, "The job was cancelled.")
	s.observe(metricCancels, 1, nil)
}

// classChosen records the class that runs the job's attempts.
func (s *reconcileScope) classChosen(class *ejv1.ExtractorClass) {
	s.job.Status.ExtractorClassName = class.Name
}

// waitForClass leaves a job whose class is missing, or does not serve its
// format, Pending without a Pod until an administrator provides the class.
func (s *reconcileScope) waitForClass(choice classChoice) {
	s.waitWithoutPod(ejv1.PhasePending, choice.Reason, choice.Message)
}

// classNotAllowed fails a job whose class does not admit its namespace. It
// is permanent: only an administrator's change of the class helps, and a
// retry token restarts the job after it.
func (s *reconcileScope) classNotAllowed(choice classChoice) {
	job := s.job
	failure := ejv1.Failure{ErrorType: ejv1.ErrorTypeExtractorClassNotAllowed, Class: ejv1.ClassPermanent, Message: choice.Message}
	job.Status.LastFailure = &failure
	job.Status.PodName = ""
	s.endJob(ejv1.PhaseFailed, fmt.Sprintf("Permanent error: %s: %s", failure.ErrorType, failure.Message))
}

// serviceAccountRetryFirst and serviceAccountRetryMax bound the delays
// between Pod creates that the API server refused for a missing ServiceAccount.
const (
	serviceAccountRetryFirst = 5 * time.Second
	serviceAccountRetryMax   = 5 * time.Minute
)

// serviceAccountWait is how long a job that waits for its class's
// ServiceAccount still waits before it tries its Pod create again; 0 when
// it is due or does not wait for one. Tries fall on a schedule that starts
// when the wait began (its condition's lastTransitionTime) with
// serviceAccountRetryFirst and doubles up to serviceAccountRetryMax; no
// counter is kept, so a restarted operator keeps the schedule.
func (s *reconcileScope) serviceAccountWait() time.Duration {
	since, waiting := s.waitingForServiceAccountSince()
	if !waiting {
		return 0
	}
	s.waitReason = ejv1.ReasonServiceAccountNotFound
	return max(0, since.Add(serviceAccountRetryFirst).Sub(s.now))
}

func (s *reconcileScope) waitingForServiceAccountSince() (time.Time, bool) {
	job := s.job
	c := meta.FindStatusCondition(job.Status.Conditions, ejv1.ConditionReconciling)
	if job.Status.Phase != ejv1.PhasePending || job.Status.PodName != "" || c == nil || c.Reason != ejv1.ReasonServiceAccountNotFound {
		return time.Time{}, false
	}
	return c.LastTransitionTime.Time, true
}

// serviceAccountMissing leaves a job whose Pod create was refused for a
// missing ServiceAccount Pending, and says when it tries again: at the next
// point of the schedule of serviceAccountWait.
func (s *reconcileScope) serviceAccountMissing(name string) ctrl.Result {
	since, waiting := s.waitingForServiceAccountSince()
	if !waiting {
		since = s.now
	}
	s.waitWithoutPod(ejv1.PhasePending, ejv1.ReasonServiceAccountNotFound, fmt.Sprintf(
		"ServiceAccount %s does not exist in namespace %s; the Pod is created once it does.", name, s.job.Namespace))
	next, delay := since, serviceAccountRetryFirst
	for next = next.Add(delay); !next.After(s.now); next = next.Add(delay) {
		delay = min(2*delay, serviceAccountRetryMax)
	}
	return ctrl.Result{RequeueAfter: next.Sub(s.now)}
}

// queueJob leaves a job whose class is full waiting in phase Queued, with a
// message that does not change while it waits. It keeps its nextRetryAt,
// which orders it in the queue.
func (s *reconcileScope) queueJob(class *ejv1.ExtractorClass, verdict admissionVerdict) {
	message := fmt.Sprintf("Waiting for a free slot in ExtractorClass %s (maxRunning %d).", class.Name, ptr.Deref(class.Spec.MaxRunning, 0))
	switch {
	case verdict.CircuitOpen:
		s.waitWithoutPod(ejv1.PhaseQueued, ejv1.ReasonQueued, circuitOpenMessage(class.Name))
		return
	case verdict.RampUp:
		message = fmt.Sprintf("Waiting for ExtractorClass %s: its circuit breaker closed, and the queued jobs start gradually over %s.",
			class.Name, durationOf(class.Spec.CircuitBreaker.RampUp))
	case verdict.NamespaceCap:
		message = fmt.Sprintf("Waiting for a free slot in ExtractorClass %s (maxRunningPerNamespace %d in namespace %s).",
			class.Name, ptr.Deref(class.Spec.MaxRunningPerNamespace, 0), s.job.Namespace)
	}
	s.waitWithoutPod(ejv1.PhaseQueued, ejv1.ReasonQueued, message)
}

// admitted records how long a job that waited in its class's queue waited,
// and whether its attempt probes the class's circuit.
func (s *reconcileScope) admitted(class *ejv1.ExtractorClass, verdict admissionVerdict) {
	s.probe = verdict.Probe
	if verdict.Waited > 0 {
		s.queued.Metrics = append(s.queued.Metrics, queueWaitObservation(class.Name, verdict.Waited))
	}
}

// waitWithoutPod makes a job that is ready for an attempt wait without one.
// podName goes: it named the previous attempt's Pod, and a waiting job has
// no attempt in flight.
func (s *reconcileScope) waitWithoutPod(phase ejv1.Phase, reason, message string) {
	job := s.job
	job.Status.Phase = phase
	job.Status.PodName = ""
	job.Status.Message = message
	s.waitReason = reason
}

// attemptCreated records the Pod that the reconcile created as the job's
// next attempt, how late a retry started, and whether its memory grew.
func (s *reconcileScope) attemptCreated(pod *corev1.Pod, attempt int32) {
	job := s.job
	if due := job.Status.NextRetryAt; due != nil {
		s.observe(metricRetryLateness, s.now.Sub(due.Time).Seconds(), nil)
	}
	if memory, previous := podMemory(pod), lastAttemptMemory(job); memory != nil && previous != nil && memory.Cmp(*previous) > 0 {
		s.observe(metricOOMMemoryIncreases, 1, prometheus.Labels{"extractor_class": job.Status.ExtractorClassName})
	}
	s.recordAttemptStarted(pod, attempt, s.now)
}

// attemptAdopted records a Pod that an earlier reconcile created and lost
// the status write of, as the job's next attempt since the Pod's creation.
func (s *reconcileScope) attemptAdopted(pod *corev1.Pod, attempt int32) {
	if class, ok := pod.Labels[ejv1.ExtractorClassLabel]; ok {
		s.job.Status.ExtractorClassName = class
	}
	s.recordAttemptStarted(pod, attempt, pod.CreationTimestamp.Time)
}

// recordAttemptStarted makes the Pod the job's current attempt, with the
// memory it runs with.
func (s *reconcileScope) recordAttemptStarted(pod *corev1.Pod, attempt int32, started time.Time) {
	job := s.job
	job.Status.Attempt = attempt
	job.Status.PodName = pod.Name
	job.Status.Phase = ejv1.PhasePending
	job.Status.NextRetryAt = nil
	job.Status.Message = fmt.Sprintf("Attempt %d is waiting for Pod %s to start.", attempt, pod.Name)
	job.Status.Attempts = appendAttemptRecord(job.Status.Attempts, ejv1.AttemptRecord{
		Attempt: attempt, PodName: pod.Name, StartTime: metav1.NewTime(started), Outcome: ejv1.OutcomeRunning,
		Memory: podMemory(pod),
	})
	s.podEvent(pod, corev1.EventTypeNormal, ejv1.ReasonAttemptStarted, "Started attempt %d in Pod %s.", attempt, pod.Name)
}

// podRefused fails the job whose next attempt's Pod the API server refused
// as invalid: it would refuse it every time, so retrying cannot help.
func (s *reconcileScope) podRefused(attempt int32, refusal error) {
	job := s.job
	job.Status.Attempt = attempt
	failure := ejv1.Failure{ErrorType: ejv1.ErrorTypeInvalidPodSpec, Class: ejv1.ClassPermanent, Message: cleanText(refusal.Error())}
	job.Status.LastFailure = &failure
	s.endJob(ejv1.PhaseFailed, fmt.Sprintf("Permanent error: %s: %s", failure.ErrorType, failure.Message))
}

// stuckPod reports whether a Pod that has not started cannot start, so that
// its attempt must fail and the Pod be deleted: at once for an invalid image
// name; after the grace period, counted from when the Pod was scheduled, for
// image pulls and container configuration, which a registry or a late Secret
// may still fix; after the class's schedulingTimeout for a Pod the scheduler
// finds no node for. Before then, wait is how long is left.
func (s *reconcileScope) stuckPod(pod *corev1.Pod) (stuck bool, wait time.Duration) {
	if pod == nil || !pod.DeletionTimestamp.IsZero() {
		return false, 0
	}
	_, stuck, wait = s.startFailure(pod)
	return stuck, wait
}

// startFailure is what fails the attempt of a Pod that cannot start (see
// stuckPod), or how long until it would.
func (s *reconcileScope) startFailure(pod *corev1.Pod) (failure attemptFailure, stuck bool, wait time.Duration) {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodRunning:
		return attemptFailure{}, false, 0
	}
	if status := extractorStatus(pod); status != nil && status.State.Waiting != nil {
		switch status.State.Waiting.Reason {
		case waitingInvalidImageName:
			return failureOfPod(pod), true, 0
		case waitingErrImagePull, waitingImagePullBackOff, waitingErrImageNeverPull, waitingCreateConfigError, waitingCreateContainerErr:
			if wait := scheduledAt(pod).Add(s.imagePullGracePeriod).Sub(s.now); wait > 0 {
				return attemptFailure{}, false, wait
			}
			return failureOfPod(pod), true, 0
		}
	}
	if since, message, ok := unschedulable(pod); ok && s.schedulingTimeout > 0 {
		if wait := since.Add(s.schedulingTimeout).Sub(s.now); wait > 0 {
			return attemptFailure{}, false, wait
		}
		return unschedulableFailure(message, s.schedulingTimeout), true, 0
	}
	return attemptFailure{}, false, 0
}

// followPod records what the current attempt's Pod did; a nil Pod no longer
// exists. A stuck Pod (see stuckPod) is the caller's to delete first. The
// result says when to look again.
func (s *reconcileScope) followPod(pod *corev1.Pod) ctrl.Result {
	job := s.job
	switch {
	case pod == nil:
		return s.attemptFailed(nil, attemptFailure{deleted: true})
	case pod.Status.Phase == corev1.PodSucceeded:
		s.attemptSucceeded(pod)
		return ctrl.Result{}
	case pod.Status.Phase == corev1.PodFailed:
		return s.attemptFailed(pod, failureOfPod(pod))
	case !pod.DeletionTimestamp.IsZero():
		failure := failureOfPod(pod)
		failure.deleted = true
		return s.attemptFailed(pod, failure)
	case pod.Status.Phase == corev1.PodRunning:
		if job.Status.Phase != ejv1.PhaseRunning {
			job.Status.Phase = ejv1.PhaseRunning
			job.Status.Message = fmt.Sprintf("Attempt %d is running in Pod %s.", job.Status.Attempt, pod.Name)
		}
		return ctrl.Result{}
	}
	failure, stuck, wait := s.startFailure(pod)
	if stuck {
		return s.attemptFailed(pod, failure)
	}
	if job.Status.Phase == ejv1.PhasePending {
		job.Status.Message = waitingMessage(job.Status.Attempt, pod)
	}
	return ctrl.Result{RequeueAfter: wait}
}

// attemptSucceeded ends the job with the extractor's result. lastFailure goes:
// the job did not fail, and the attempt history keeps each attempt's error.
func (s *reconcileScope) attemptSucceeded(pod *corev1.Pod) {
	job := s.job
	job.Status.Result = nil
	job.Status.LastFailure = nil
	if status := extractorStatus(pod); status != nil && status.State.Terminated != nil {
		result, err := parseResult(status.State.Terminated.Message)
		if err != nil {
			s.podEvent(pod, corev1.EventTypeWarning, ejv1.ReasonResultIgnored, "The extractor's result was not kept: %s.", err)
		}
		job.Status.Result = result
	}
	s.closeAttemptRecord(ejv1.OutcomeSucceeded, nil)
	s.observeCircuit(attemptFailure{}, nil)
	s.endJob(ejv1.PhaseSucceeded, fmt.Sprintf("Extraction succeeded on attempt %d.", job.Status.Attempt))
}

// attemptFailed classifies a failure and either schedules the retry or fails the job.
func (s *reconcileScope) attemptFailed(pod *corev1.Pod, observed attemptFailure) ctrl.Result {
	job := s.job
	policy := job.Spec.RetryPolicy
	maxRetries, maxDisruptions := ptr.Deref(policy.MaxRetries, 0), ptr.Deref(policy.MaxDisruptions, 0)
	failure, hintErr := classify(observed, policy.Rules)
	if hintErr != nil {
		// Never trusted, and counted: an extractor that breaks the contract shows up.
		s.observe(metricRetryAfterIgnored, 1, prometheus.Labels{"reason": hintUnparsable})
	}
	job.Status.LastFailure = &failure
	if failure.ErrorType == ejv1.ErrorTypeOOMKilled {
		job.Status.OOMKilledCount++
	}
	s.closeAttemptRecord(ejv1.OutcomeFailed, &failure)
	s.podEvent(pod, corev1.EventTypeWarning, ejv1.ReasonAttemptFailed, "Attempt %d failed (%s): %s: %s",
		job.Status.Attempt, failure.Class, failure.ErrorType, failure.Message)
	if s.parkOnOpenCircuit(observed, failure) {
		return ctrl.Result{}
	}

	lastError := failure.ErrorType + ": " + failure.Message
	// One draw for whichever wait follows, which scheduleRetry also applies
	// to a Retry-After hint.
	jitter := s.jitter()
	switch {
	case failure.Class == ejv1.ClassPermanent:
		s.endJob(ejv1.PhaseFailed, "Permanent error: "+lastError)
		return ctrl.Result{}
	case failure.Class == ejv1.ClassDisruption && job.Status.DisruptionCount < maxDisruptions:
		job.Status.DisruptionCount++
		return s.scheduleRetry(disruptionDelay(policy.Backoff, jitter), jitter,
			fmt.Sprintf("Disruption %d/%d: %s", job.Status.DisruptionCount, maxDisruptions, lastError))
	case job.Status.RetryCount < maxRetries:
		job.Status.RetryCount++
		return s.scheduleRetry(retryDelay(policy.Backoff, job.Status.RetryCount, jitter), jitter,
			fmt.Sprintf("Retry %d/%d: %s", job.Status.RetryCount, maxRetries, lastError))
	default:
		s.endJob(ejv1.PhaseFailed, fmt.Sprintf("Max retries (%d) exceeded. Last error: %s", maxRetries, lastError))
		return ctrl.Result{}
	}
}

// observeCircuit feeds the outcome of the job's attempt to its class's
// circuit breaker (failure is nil for a success) and keeps the step for the
// reconciler to write on the class.
func (s *reconcileScope) observeCircuit(observed attemptFailure, failure *ejv1.Failure) circuitStep {
	v := s.circuit
	if v == nil {
		return circuitStep{}
	}
	outcome := circuitOutcome{probe: v.probe}
	reported := false
	if failure != nil {
		reported = reportedByExtractor(observed, *failure)
		outcome.errorType, outcome.message, outcome.retryAfter = failure.ErrorType, failure.Message, retryAfterHint(failure)
	}
	outcome.signal = v.policy.signalOf(failure, reported)
	step := v.policy.step(v.class.Status.Circuit, v.pending, outcome, s.now)
	s.circuitStep = &circuitWrite{class: v.class, step: step}
	return step
}

// parkOnOpenCircuit makes a job whose attempt failed with one of the
// breaker's error types while its class's circuit is open, or as it opens,
// wait in Queued for the circuit: it spends neither a retry nor its backoff,
// and the attempt record says it was parked. A failure that a job rule
// made permanent still fails the job. It reports whether it parked the job.
func (s *reconcileScope) parkOnOpenCircuit(observed attemptFailure, failure ejv1.Failure) bool {
	step := s.observeCircuit(observed, &failure)
	if !step.park || failure.Class == ejv1.ClassPermanent {
		return false
	}
	job := s.job
	for i := range job.Status.Attempts {
		if job.Status.Attempts[i].Attempt == job.Status.Attempt {
			job.Status.Attempts[i].Parked = true
		}
	}
	class := s.circuit.class.Name
	// A parked job is ready again from now: it queues behind the jobs that waited longer.
	job.Status.NextRetryAt = preciseTime(s.now)
	s.waitWithoutPod(ejv1.PhaseQueued, ejv1.ReasonQueued, circuitOpenMessage(class))
	s.event(corev1.EventTypeNormal, ejv1.ReasonAttemptParked,
		"Attempt %d failed with %s while the circuit breaker of ExtractorClass %s is open; it spends no retry, and the job waits for the circuit to close.",
		job.Status.Attempt, failure.ErrorType, class)
	s.observe(metricParkedAttempts, 1, prometheus.Labels{"extractor_class": class})
	return true
}

// scheduleRetry stores the retry time before waiting for it, so a restarted
// operator waits for the same time and never retries early. delay is the
// policy's wait with the given jitter; the last failure's Retry-After hint may
// lengthen it (honourRetryAfter), and the message then says so.
func (s *reconcileScope) scheduleRetry(delay time.Duration, jitter float64, message string) ctrl.Result {
	job := s.job
	failure := job.Status.LastFailure
	var hint time.Duration
	if failure.RetryAfter != nil {
		hint = failure.RetryAfter.Duration
	}
	wait := honourRetryAfter(job.Spec.RetryPolicy, delay, hint, jitter)
	if wait.Ignored != "" {
		s.observe(metricRetryAfterIgnored, 1, prometheus.Labels{"reason": wait.Ignored})
	}
	message += wait.note()
	at := retryTime(s.now, wait.Delay)
	format, class := string(job.Spec.Format), string(failure.Class)
	s.observe(metricRetriesScheduled, 1, prometheus.Labels{"format": format, "class": class})
	s.observe(metricBackoffDelay, at.Sub(s.now).Seconds(), prometheus.Labels{"format": format, "class": class, "source": wait.Source})
	job.Status.Phase = ejv1.PhaseRetrying
	job.Status.NextRetryAt = &at
	job.Status.Message = message
	s.event(corev1.EventTypeNormal, ejv1.ReasonRetryScheduled, "%s. Next attempt at %s (in %s).",
		message, at.Format(time.RFC3339Nano), at.Sub(s.now).Round(time.Millisecond))
	return waitForRetry(at.Sub(s.now))
}

// endJob moves the job to a terminal phase.
func (s *reconcileScope) endJob(phase ejv1.Phase, message string) {
	job := s.job
	job.Status.Phase = phase
	job.Status.NextRetryAt = nil
	job.Status.CompletionTime = ptrTime(s.now)
	job.Status.Message = message
	eventType, reason := corev1.EventTypeWarning, failedReason(job)
	if phase == ejv1.PhaseSucceeded {
		eventType, reason = corev1.EventTypeNormal, ejv1.ReasonSucceeded
	}
	s.event(eventType, reason, "%s", message)
}

// closeAttemptRecord closes the current attempt's history entry with its
// outcome, and counts the attempt.
func (s *reconcileScope) closeAttemptRecord(outcome ejv1.AttemptOutcome, failure *ejv1.Failure) {
	job := s.job
	for i := range job.Status.Attempts {
		record := &job.Status.Attempts[i]
		if record.Attempt != job.Status.Attempt || record.FinishTime != nil {
			continue
		}
		record.FinishTime = ptrTime(s.now)
		record.Outcome = outcome
		var class, errorType string
		if failure != nil {
			record.ErrorType, record.Class, record.ExitCode = failure.ErrorType, failure.Class, failure.ExitCode
			class, errorType = string(failure.Class), metricErrorType(failure.ErrorType)
		}
		format := string(job.Spec.Format)
		s.observe(metricAttemptsFinished, 1, prometheus.Labels{
			"format": format, "outcome": string(outcome), "class": class, "error_type": errorType})
		s.observe(metricAttemptDuration, s.now.Sub(record.StartTime.Time).Seconds(), prometheus.Labels{
			"format": format, "outcome": string(outcome)})
	}
}

// summarizeStatus fills in the status fields derived from the others:
// retries, the conditions, and observedGeneration once the reconcile has
// handled the spec.
func (s *reconcileScope) summarizeStatus(handledSpec bool) {
	job := s.job
	if handledSpec {
		job.Status.ObservedGeneration = job.Generation
	}
	job.Status.Retries = fmt.Sprintf("%d/%d", job.Status.RetryCount, ptr.Deref(job.Spec.RetryPolicy.MaxRetries, 0))
	setConditions(job, s.now, s.waitReason)
}

func attemptInFlight(job *ejv1.ExtractionJob) bool {
	return job.Status.PodName != "" && (job.Status.Phase == ejv1.PhasePending || job.Status.Phase == ejv1.PhaseRunning)
}

// appendAttemptRecord adds an attempt to the history, dropping the oldest
// beyond MaxAttemptRecords, the schema's maxItems for status.attempts.
func appendAttemptRecord(records []ejv1.AttemptRecord, record ejv1.AttemptRecord) []ejv1.AttemptRecord {
	records = append(records, record)
	if excess := len(records) - ejv1.MaxAttemptRecords; excess > 0 {
		records = append([]ejv1.AttemptRecord(nil), records[excess:]...)
	}
	return records
}

// preciseTime is t as a PreciseTime, normalised as the API stores it.
func preciseTime(t time.Time) *ejv1.PreciseTime {
	pt := ejv1.NewPreciseTime(t)
	return &pt
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}
