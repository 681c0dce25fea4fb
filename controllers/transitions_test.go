package controllers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// The state machine's tables: a job in some state, something that happens
// to it, and what the job then shows and announces. The job keeps the
// default backoff (30 s × 4ⁿ⁻¹, 25 % jitter) and the jitter is 0.5, so each
// wait is 1.125 × the backoff, rounded up to a second.

var transitionNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// attemptAge is how long each fixture's current attempt has run.
const attemptAge = 2 * time.Minute

// transitionOutcome is what a transition left: the status fields people
// read, the wake-up, and the queued announcements.
type transitionOutcome struct {
	Phase                                ejv1.Phase
	RetryCount, DisruptionCount, Attempt int32
	PodName                              string
	Message                              string
	NextRetryAt                          string // RFC 3339, "" for none
	Completed                            bool   // completionTime is set
	LastFailure                          string // "ErrorType Class", "" for none
	Result                               string // status.result as JSON
	LastHandledRetryRequest              string
	Attempts                             []string // "attempt outcome [errorType class]"
	Conditions                           []string // "Type=Status Reason", sorted
	WakeUp                               ctrl.Result
	Events                               []jobEvent
	Metrics                              []observation
}

func outcomeOf(s *reconcileScope, wakeUp ctrl.Result) transitionOutcome {
	s.summarizeStatus(true)
	st := s.job.Status
	o := transitionOutcome{
		Phase: st.Phase, RetryCount: st.RetryCount, DisruptionCount: st.DisruptionCount, Attempt: st.Attempt,
		PodName: st.PodName, Message: st.Message, Completed: st.CompletionTime != nil,
		LastHandledRetryRequest: st.LastHandledRetryRequest,
		WakeUp:                  wakeUp, Events: s.queued.Events, Metrics: s.queued.Metrics,
	}
	if st.NextRetryAt != nil {
		o.NextRetryAt = st.NextRetryAt.UTC().Format(time.RFC3339Nano)
	}
	if f := st.LastFailure; f != nil {
		o.LastFailure = f.ErrorType + " " + string(f.Class)
	}
	if st.Result != nil {
		o.Result = string(st.Result.Raw)
	}
	for _, r := range st.Attempts {
		o.Attempts = append(o.Attempts, attemptSummary(r.Attempt, r.Outcome, r.ErrorType, r.Class))
	}
	for _, c := range st.Conditions {
		o.Conditions = append(o.Conditions, fmt.Sprintf("%s=%s %s", c.Type, c.Status, c.Reason))
	}
	slices.Sort(o.Conditions)
	return o
}

func attemptSummary(attempt int32, outcome ejv1.AttemptOutcome, errorType string, class ejv1.FailureClass) string {
	s := fmt.Sprintf("%d %s", attempt, outcome)
	if errorType != "" {
		s += " " + errorType + " " + string(class)
	}
	return s
}

// Fixtures: the job at each point of its life, and its Pods.

func transitionJob() *ejv1.ExtractionJob {
	return &ejv1.ExtractionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "plant-a", Name: "sheet-12", UID: "8d1f6c2e-3b4a-4f0e-9a61-2f7c5b0e4d13", Generation: 1},
		Spec: ejv1.ExtractionJobSpec{
			Format: ejv1.FormatPDF,
			Source: ejv1.Source{URL: "s3://drawings/sheet-12.pdf"},
			RetryPolicy: ejv1.RetryPolicy{
				MaxRetries:     ptr.To[int32](3),
				MaxDisruptions: ptr.To[int32](5),
				Backoff: ejv1.Backoff{
					Base:          metav1.Duration{Duration: 30 * time.Second},
					Multiplier:    4,
					Max:           metav1.Duration{Duration: time.Hour},
					JitterPercent: ptr.To[int32](25),
				},
			},
		},
		Status: ejv1.ExtractionJobStatus{ObservedGeneration: 1},
	}
}

func pendingJob() *ejv1.ExtractionJob {
	job := transitionJob()
	job.Status.Phase = ejv1.PhasePending
	job.Status.StartTime = ptrTime(transitionNow.Add(-time.Hour))
	return job
}

// onAttempt is the job while attempt n runs in its Pod, after n-1 failed
// attempts with a retryable error.
func onAttempt(phase ejv1.Phase, attempt int32) *ejv1.ExtractionJob {
	job := pendingJob()
	job.Status.Phase = phase
	job.Status.Attempt = attempt
	job.Status.RetryCount = attempt - 1
	job.Status.PodName = podName(job, attempt)
	job.Status.Message = fmt.Sprintf("Attempt %d is running in Pod %s.", attempt, job.Status.PodName)
	if phase == ejv1.PhasePending {
		job.Status.Message = fmt.Sprintf("Attempt %d is waiting for Pod %s to start.", attempt, job.Status.PodName)
	}
	for n := int32(1); n < attempt; n++ {
		job.Status.Attempts = append(job.Status.Attempts, failedRecord(job, n))
		job.Status.LastFailure = &ejv1.Failure{ErrorType: "ConnectionError", Class: ejv1.ClassRetryable, Message: "connection refused"}
	}
	job.Status.Attempts = append(job.Status.Attempts, ejv1.AttemptRecord{
		Attempt: attempt, PodName: job.Status.PodName, Outcome: ejv1.OutcomeRunning,
		StartTime: metav1.NewTime(transitionNow.Add(-attemptAge)),
	})
	return job
}

func runningJob(attempt int32) *ejv1.ExtractionJob { return onAttempt(ejv1.PhaseRunning, attempt) }

func failedRecord(job *ejv1.ExtractionJob, attempt int32) ejv1.AttemptRecord {
	return ejv1.AttemptRecord{
		Attempt: attempt, PodName: podName(job, attempt), Outcome: ejv1.OutcomeFailed,
		StartTime:  metav1.NewTime(transitionNow.Add(-time.Hour)),
		FinishTime: ptrTime(transitionNow.Add(-time.Hour + time.Minute)),
		ErrorType:  "ConnectionError", Class: ejv1.ClassRetryable, ExitCode: ptr.To[int32](1),
	}
}

// retryingJob waits for its retry after attempt n failed, due at the given offset from now.
func retryingJob(attempt int32, due time.Duration) *ejv1.ExtractionJob {
	job := pendingJob()
	job.Status.Phase = ejv1.PhaseRetrying
	job.Status.Attempt = attempt
	job.Status.RetryCount = attempt
	job.Status.PodName = podName(job, attempt)
	for n := int32(1); n <= attempt; n++ {
		job.Status.Attempts = append(job.Status.Attempts, failedRecord(job, n))
	}
	job.Status.LastFailure = &ejv1.Failure{ErrorType: "ConnectionError", Class: ejv1.ClassRetryable, Message: "connection refused"}
	job.Status.NextRetryAt = preciseTime(transitionNow.Add(due))
	job.Status.Message = fmt.Sprintf("Retry %d/3: ConnectionError: connection refused", attempt)
	return job
}

func endedJob(phase ejv1.Phase) *ejv1.ExtractionJob {
	job := retryingJob(1, 0)
	job.Status.Phase = phase
	job.Status.NextRetryAt = nil
	job.Status.CompletionTime = ptrTime(transitionNow.Add(-time.Minute))
	job.Status.Message = "ended"
	switch phase {
	case ejv1.PhaseFailed:
		job.Status.LastFailure = &ejv1.Failure{ErrorType: "AuthenticationFailed", Class: ejv1.ClassPermanent, Message: "bad key"}
	case ejv1.PhaseSucceeded:
		job.Status.LastFailure = nil
	}
	return job
}

func withRetryRequest(job *ejv1.ExtractionJob, token string) *ejv1.ExtractionJob {
	job.Annotations = map[string]string{ejv1.RetryRequestAnnotation: token}
	return job
}

func withCancel(job *ejv1.ExtractionJob) *ejv1.ExtractionJob {
	job.Spec.Cancel = true
	return job
}

// attemptPodOf is attempt n's Pod, created attemptAge ago and still pending.
func attemptPodOf(attempt int32) *corev1.Pod {
	job := transitionJob()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: job.Namespace, Name: podName(job, attempt),
			CreationTimestamp: metav1.NewTime(transitionNow.Add(-attemptAge)),
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

func podRef(attempt int32) *corev1.ObjectReference {
	return podReference(attemptPodOf(attempt))
}

func runningPod(attempt int32) *corev1.Pod {
	pod := attemptPodOf(attempt)
	pod.Status.Phase = corev1.PodRunning
	return pod
}

func terminatedPod(attempt int32, phase corev1.PodPhase, exitCode int32, message string) *corev1.Pod {
	pod := attemptPodOf(attempt)
	pod.Status.Phase = phase
	reason := "Error"
	if phase == corev1.PodSucceeded {
		reason = "Completed"
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: reason, Message: message},
	}}}
	return pod
}

// takenAwayPod is a Pod that the cluster failed with a status reason, as the
// kubelet and the node lifecycle controller do.
func takenAwayPod(attempt int32, reason, message string) *corev1.Pod {
	pod := attemptPodOf(attempt)
	pod.Status.Phase, pod.Status.Reason, pod.Status.Message = corev1.PodFailed, reason, message
	return pod
}

// disruptedPod is a Pod that a controller marked with a DisruptionTarget condition before failing it.
func disruptedPod(attempt int32, reason, message string) *corev1.Pod {
	pod := attemptPodOf(attempt)
	pod.Status.Phase = corev1.PodFailed
	pod.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: reason, Message: message},
	}
	return pod
}

func waitingPod(attempt int32, reason, message string, age time.Duration) *corev1.Pod {
	pod := attemptPodOf(attempt)
	pod.CreationTimestamp = metav1.NewTime(transitionNow.Add(-age))
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: extractorContainerName, State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message},
	}}}
	return pod
}

func deletingPod(attempt int32) *corev1.Pod {
	pod := runningPod(attempt)
	pod.DeletionTimestamp = ptrTime(transitionNow.Add(-time.Second))
	return pod
}

// Expected announcements.

func warningAbout(attempt int32, reason, note string) jobEvent {
	return jobEvent{Type: corev1.EventTypeWarning, Reason: reason, Note: note, Pod: podRef(attempt)}
}

func normal(reason, note string) jobEvent {
	return jobEvent{Type: corev1.EventTypeNormal, Reason: reason, Note: note}
}

func warning(reason, note string) jobEvent {
	return jobEvent{Type: corev1.EventTypeWarning, Reason: reason, Note: note}
}

func attemptEnded(outcome ejv1.AttemptOutcome, class ejv1.FailureClass, errorType string) []observation {
	return []observation{
		{Metric: metricAttemptsFinished, Value: 1, Labels: prometheus.Labels{
			"format": "pdf", "outcome": string(outcome), "class": string(class), "error_type": errorType}},
		{Metric: metricAttemptDuration, Value: attemptAge.Seconds(), Labels: prometheus.Labels{"format": "pdf", "outcome": string(outcome)}},
	}
}

func retryScheduled(class ejv1.FailureClass, delay time.Duration) []observation {
	return []observation{
		{Metric: metricRetriesScheduled, Value: 1, Labels: prometheus.Labels{"format": "pdf", "class": string(class)}},
		{Metric: metricBackoffDelay, Value: delay.Seconds(), Labels: prometheus.Labels{"format": "pdf", "class": string(class), "source": delaySourcePolicy}},
	}
}

func retryAfter(delay time.Duration) ctrl.Result {
	return ctrl.Result{RequeueAfter: delay, Priority: ptr.To(dueRetryPriority)}
}

// firstRetryWait is the wait before the first retry with the default
// backoff and the tests' jitter of 0.5: 30 s plus half of 25 %.
const firstRetryWait = 33750 * time.Millisecond

func at(offset time.Duration) string { return transitionNow.Add(offset).Format(time.RFC3339Nano) }

var (
	pendingConditions   = []string{"Ready=False Pending", "Reconciling=True Pending"}
	runningConditions   = []string{"Ready=False Running", "Reconciling=True Running"}
	retryingConditions  = []string{"Ready=False Retrying", "Reconciling=True Retrying"}
	succeededConditions = []string{"Complete=True Succeeded", "Ready=True Succeeded"}
)

func endedConditions(reason string) []string {
	return []string{"Failed=True " + reason, "Ready=False " + reason, "Stalled=True " + reason}
}

// Scoped operations, as the reconciler calls them.

func follow(pod *corev1.Pod) func(*reconcileScope) ctrl.Result {
	return func(s *reconcileScope) ctrl.Result { return s.followPod(pod) }
}

func create(attempt int32) func(*reconcileScope) ctrl.Result {
	return func(s *reconcileScope) ctrl.Result {
		s.attemptCreated(attemptPodOf(attempt), attempt)
		return ctrl.Result{}
	}
}

func cancelWith(pod *corev1.Pod) func(*reconcileScope) ctrl.Result {
	return func(s *reconcileScope) ctrl.Result {
		if s.job.Status.Phase.Finished() {
			s.ignoreCancel()
		} else {
			s.cancel(pod)
		}
		return ctrl.Result{}
	}
}

func handleRetryRequest(s *reconcileScope) ctrl.Result { s.handleRetryRequest(); return ctrl.Result{} }

func newTransitionScope(job *ejv1.ExtractionJob) *reconcileScope {
	return &reconcileScope{job: job, now: transitionNow, jitter: func() float64 { return 0.5 }, imagePullGracePeriod: 5 * time.Minute}
}

type transitionCase struct {
	name   string
	job    *ejv1.ExtractionJob
	happen func(*reconcileScope) ctrl.Result
	want   transitionOutcome
}

// unchanged is the outcome of a transition that changes nothing and announces nothing.
func unchanged(job *ejv1.ExtractionJob) transitionOutcome {
	return outcomeOf(newTransitionScope(job.DeepCopy()), ctrl.Result{})
}

func runTransitionCases(t *testing.T, cases []transitionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTransitionScope(tc.job)
			got := outcomeOf(s, tc.happen(s))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

// failedWith is how the current attempt of a fixture failed, for the
// outcomes that follow from it.
type failedWith struct {
	attempt   int32
	errorType string
	class     ejv1.FailureClass
	message   string
	// podGone says the Pod no longer existed, so the event names none.
	podGone bool
	// retryCount and disruptionCount are the counters after the failure.
	retryCount, disruptionCount int32
}

func (f failedWith) lastError() string { return f.errorType + ": " + f.message }

// failedOutcome is what every failure leaves: the attempt closed with its
// error, and announced.
func (f failedWith) failedOutcome() transitionOutcome {
	event := warningAbout(f.attempt, ejv1.ReasonAttemptFailed, fmt.Sprintf("Attempt %d failed (%s): %s", f.attempt, f.class, f.lastError()))
	if f.podGone {
		event.Pod = nil
	}
	return transitionOutcome{
		RetryCount: f.retryCount, DisruptionCount: f.disruptionCount, Attempt: f.attempt,
		PodName:     podName(transitionJob(), f.attempt),
		LastFailure: f.errorType + " " + string(f.class),
		Attempts:    append(earlierFailures(f.attempt), attemptSummary(f.attempt, ejv1.OutcomeFailed, f.errorType, f.class)),
		Events:      []jobEvent{event},
		Metrics:     attemptEnded(ejv1.OutcomeFailed, f.class, metricErrorType(f.errorType)),
	}
}

// retried is the outcome of a failure that schedules a retry after delay;
// counter is the message's "Retry 1/3" or "Disruption 1/5".
func (f failedWith) retried(counter string, delay time.Duration) transitionOutcome {
	o := f.failedOutcome()
	o.Phase = ejv1.PhaseRetrying
	o.Message = counter + ": " + f.lastError()
	o.NextRetryAt = at(delay)
	o.Conditions = retryingConditions
	o.WakeUp = retryAfter(delay)
	o.Events = append(o.Events, normal(ejv1.ReasonRetryScheduled,
		fmt.Sprintf("%s. Next attempt at %s (in %s).", o.Message, o.NextRetryAt, delay)))
	o.Metrics = append(o.Metrics, retryScheduled(f.class, delay)...)
	return o
}

// ended is the outcome of a failure that ends the job with the message, for the reason.
func (f failedWith) ended(message, reason string) transitionOutcome {
	o := f.failedOutcome()
	o.Phase, o.Message, o.Completed = ejv1.PhaseFailed, message, true
	o.Conditions = endedConditions(reason)
	o.Events = append(o.Events, warning(reason, message))
	return o
}

// earlierFailures is the history of the attempts before attempt n in the fixtures.
func earlierFailures(n int32) []string {
	var records []string
	for i := int32(1); i < n; i++ {
		records = append(records, attemptSummary(i, ejv1.OutcomeFailed, "ConnectionError", ejv1.ClassRetryable))
	}
	return records
}

// succeededOn is the outcome of the success of attempt n of a fixture, after n-1 failures.
func succeededOn(attempt int32, result string) transitionOutcome {
	note := fmt.Sprintf("Extraction succeeded on attempt %d.", attempt)
	return transitionOutcome{
		Phase: ejv1.PhaseSucceeded, RetryCount: attempt - 1, Attempt: attempt, PodName: podName(transitionJob(), attempt), Completed: true,
		Message:    note,
		Result:     result,
		Attempts:   append(earlierFailures(attempt), attemptSummary(attempt, ejv1.OutcomeSucceeded, "", "")),
		Conditions: succeededConditions,
		Events:     []jobEvent{normal(ejv1.ReasonSucceeded, note)},
		Metrics:    attemptEnded(ejv1.OutcomeSucceeded, "", ""),
	}
}

func TestTransitionsOfAnAttempt(t *testing.T) {
	pod1 := podName(transitionJob(), 1)
	refusal := `Pod "x" is invalid: spec.containers[0].image: Required value`
	connectionRefused := failedWith{attempt: 1, errorType: "ConnectionError", class: ejv1.ClassRetryable, message: "connection refused", retryCount: 1}
	podDeleted := failedWith{attempt: 1, errorType: ejv1.ErrorTypePodDeleted, class: ejv1.ClassDisruption,
		message: "The attempt's Pod was deleted before it finished.", disruptionCount: 1}
	invalidImage := failedWith{attempt: 1, errorType: ejv1.ErrorTypeInvalidImageName, class: ejv1.ClassPermanent, message: "couldn't parse image name"}
	corrupted := failedWith{attempt: 1, errorType: "CorruptedFile", class: ejv1.ClassPermanent, message: "xref table is broken"}
	ruledPermanent := failedWith{attempt: 1, errorType: "ConnectionError", class: ejv1.ClassPermanent, message: "but the rule says fail"}
	// startedOn is the outcome of attempt n starting after n-1 failures.
	startedOn := func(attempt int32, metrics ...observation) transitionOutcome {
		o := transitionOutcome{
			Phase: ejv1.PhasePending, RetryCount: attempt - 1, Attempt: attempt, PodName: podName(transitionJob(), attempt),
			Message:    fmt.Sprintf("Attempt %d is waiting for Pod %s to start.", attempt, podName(transitionJob(), attempt)),
			Attempts:   append(earlierFailures(attempt), attemptSummary(attempt, ejv1.OutcomeRunning, "", "")),
			Conditions: pendingConditions,
			Events: []jobEvent{{Type: corev1.EventTypeNormal, Reason: ejv1.ReasonAttemptStarted,
				Note: fmt.Sprintf("Started attempt %d in Pod %s.", attempt, podName(transitionJob(), attempt)), Pod: podRef(attempt)}},
			Metrics: metrics,
		}
		if attempt > 1 {
			o.LastFailure = "ConnectionError Retryable"
		}
		return o
	}
	eleventh := startedOn(11, observation{Metric: metricRetryLateness, Value: 0})
	eleventh.Attempts = eleventh.Attempts[1:]
	runTransitionCases(t, []transitionCase{{
		name:   "a new job is taken up and waits for its first attempt",
		job:    transitionJob(),
		happen: func(s *reconcileScope) ctrl.Result { s.acceptJob(); return ctrl.Result{} },
		want:   transitionOutcome{Phase: ejv1.PhasePending, Conditions: pendingConditions},
	}, {
		name:   "a pending job starts its first attempt in the Pod it created",
		job:    pendingJob(),
		happen: create(1),
		want:   startedOn(1),
	}, {
		name:   "a retry that fell due starts the next attempt and reports how late it started",
		job:    retryingJob(1, -3*time.Second),
		happen: create(2),
		want:   startedOn(2, observation{Metric: metricRetryLateness, Value: 3}),
	}, {
		name: "a Pod adopted after a lost status write is the attempt since its creation, without a lateness",
		job:  retryingJob(1, -3*time.Second),
		happen: func(s *reconcileScope) ctrl.Result {
			s.attemptAdopted(attemptPodOf(2), 2)
			if got := s.job.Status.Attempts[1].StartTime.Time; !got.Equal(transitionNow.Add(-attemptAge)) {
				t.Errorf("the adopted attempt started at %s, want the Pod's creation %s", got, transitionNow.Add(-attemptAge))
			}
			return ctrl.Result{}
		},
		want: startedOn(2),
	}, {
		name: "the eleventh attempt drops the oldest of the ten attempt records",
		job: func() *ejv1.ExtractionJob {
			job := retryingJob(10, 0)
			job.Spec.RetryPolicy.MaxRetries = ptr.To[int32](10)
			return job
		}(),
		happen: create(11),
		want:   eleventh,
	}, {
		name:   "a Pod the API server refuses as invalid fails the job at once",
		job:    pendingJob(),
		happen: func(s *reconcileScope) ctrl.Result { s.podRefused(1, errors.New(refusal)); return ctrl.Result{} },
		want: transitionOutcome{
			Phase: ejv1.PhaseFailed, Attempt: 1, Completed: true,
			Message:     "Permanent error: InvalidPodSpec: " + refusal,
			LastFailure: "InvalidPodSpec Permanent",
			Conditions:  endedConditions(ejv1.ReasonPermanentError),
			Events:      []jobEvent{warning(ejv1.ReasonPermanentError, "Permanent error: InvalidPodSpec: "+refusal)},
		},
	}, {
		name:   "a Pod that starts running makes the job Running",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(runningPod(1)),
		want: transitionOutcome{
			Phase: ejv1.PhaseRunning, Attempt: 1, PodName: pod1,
			Message:    "Attempt 1 is running in Pod " + pod1 + ".",
			Attempts:   []string{"1 Running"},
			Conditions: runningConditions,
		},
	}, {
		name:   "a Pod still waiting for its image within the grace period is looked at again when the grace ends",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(waitingPod(1, "ImagePullBackOff", "Back-off pulling image", attemptAge)),
		want: transitionOutcome{
			Phase: ejv1.PhasePending, Attempt: 1, PodName: pod1,
			Message:    "Attempt 1 is waiting for Pod " + pod1 + " to start.",
			Attempts:   []string{"1 Running"},
			Conditions: pendingConditions,
			WakeUp:     ctrl.Result{RequeueAfter: 5*time.Minute - attemptAge},
		},
	}, {
		name:   "a Pod whose image cannot be pulled after the grace period fails its attempt as retryable",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(waitingPod(1, "ImagePullBackOff", "Back-off pulling image", 6*time.Minute)),
		want: failedWith{attempt: 1, errorType: ejv1.ErrorTypeImagePull, class: ejv1.ClassRetryable,
			message: "Back-off pulling image", retryCount: 1}.retried("Retry 1/3", firstRetryWait),
	}, {
		name:   "an invalid image name fails the job at once",
		job:    onAttempt(ejv1.PhasePending, 1),
		happen: follow(waitingPod(1, "InvalidImageName", "couldn't parse image name", time.Second)),
		want:   invalidImage.ended("Permanent error: "+invalidImage.lastError(), ejv1.ReasonPermanentError),
	}, {
		name:   "a Pod that succeeded ends the job with the extractor's result",
		job:    runningJob(1),
		happen: follow(terminatedPod(1, corev1.PodSucceeded, 0, `{"pages": 3, "title": "Sheet 12"}`)),
		want:   succeededOn(1, `{"pages":3,"title":"Sheet 12"}`),
	}, {
		name:   "a success after a retry clears lastFailure, and the history keeps the failed attempt's error",
		job:    runningJob(2),
		happen: follow(terminatedPod(2, corev1.PodSucceeded, 0, "")),
		want:   succeededOn(2, ""),
	}, {
		name:   "a result that is not a JSON object is dropped, and the job says so",
		job:    runningJob(1),
		happen: follow(terminatedPod(1, corev1.PodSucceeded, 0, "done")),
		want: func() transitionOutcome {
			o := succeededOn(1, "")
			o.Events = append([]jobEvent{warningAbout(1, ejv1.ReasonResultIgnored,
				"The extractor's result was not kept: the termination message is not a JSON object.")}, o.Events...)
			return o
		}(),
	}, {
		name:   "a retryable error with retries left schedules the next attempt after the backoff",
		job:    runningJob(1),
		happen: follow(terminatedPod(1, corev1.PodFailed, 1, "ConnectionError: connection refused")),
		want:   connectionRefused.retried("Retry 1/3", firstRetryWait),
	}, {
		name:   "the second retry waits four times as long",
		job:    runningJob(2),
		happen: follow(terminatedPod(2, corev1.PodFailed, 1, "ConnectionError: connection refused")),
		want: failedWith{attempt: 2, errorType: "ConnectionError", class: ejv1.ClassRetryable,
			message: "connection refused", retryCount: 2}.retried("Retry 2/3", 135*time.Second),
	}, {
		name:   "a retryable error with the retries spent fails the job",
		job:    runningJob(4),
		happen: follow(terminatedPod(4, corev1.PodFailed, 1, "ConnectionError: connection refused")),
		want: failedWith{attempt: 4, errorType: "ConnectionError", class: ejv1.ClassRetryable, message: "connection refused", retryCount: 3}.
			ended("Max retries (3) exceeded. Last error: ConnectionError: connection refused", ejv1.ReasonMaxRetriesExceeded),
	}, {
		name:   "a permanent error fails the job at once, whatever retries are left",
		job:    runningJob(1),
		happen: follow(terminatedPod(1, corev1.PodFailed, 1, "CorruptedFile: xref table is broken\nstack trace")),
		want:   corrupted.ended("Permanent error: "+corrupted.lastError(), ejv1.ReasonPermanentError),
	}, {
		name:   "exit code 68 without an error type is a retryable ConnectionError, as sysexits' EX_NOHOST",
		job:    runningJob(1),
		happen: follow(terminatedPod(1, corev1.PodFailed, 68, "")),
		want: failedWith{attempt: 1, errorType: "ConnectionError", class: ejv1.ClassRetryable,
			message: "The extractor exited with code 68.", retryCount: 1}.retried("Retry 1/3", firstRetryWait),
	}, {
		name: "a rule with action Fail makes a retryable error permanent",
		job: func() *ejv1.ExtractionJob {
			job := runningJob(1)
			job.Spec.RetryPolicy.Rules = []ejv1.RetryRule{{ExitCodes: []int32{42}, Action: ejv1.RuleActionFail}}
			return job
		}(),
		happen: follow(terminatedPod(1, corev1.PodFailed, 42, "ConnectionError: but the rule says fail")),
		want:   ruledPermanent.ended("Permanent error: "+ruledPermanent.lastError(), ejv1.ReasonPermanentError),
	}, {
		name:   "a Pod that vanished under a running attempt is a disruption",
		job:    runningJob(1),
		happen: follow(nil),
		want: func() transitionOutcome {
			gone := podDeleted
			gone.podGone = true
			return gone.retried("Disruption 1/5", firstRetryWait)
		}(),
	}, {
		name:   "a Pod being deleted under a running attempt is a disruption",
		job:    runningJob(1),
		happen: follow(deletingPod(1)),
		want:   podDeleted.retried("Disruption 1/5", firstRetryWait),
	}})
}

// TestTransitionsOfADisruption plays each way the cluster takes a Pod away:
// retried after the base delay without spending maxRetries, while
// maxDisruptions lasts.
func TestTransitionsOfADisruption(t *testing.T) {
	var cases []transitionCase
	for _, d := range []struct {
		how       string
		pod       *corev1.Pod
		errorType string
		message   string
	}{
		{"the kubelet evicts it", takenAwayPod(1, "Evicted", "The node was low on resource: memory."),
			ejv1.ErrorTypePodEvicted, "The node was low on resource: memory."},
		{"the node controller loses its node (NodeLost)", takenAwayPod(1, "NodeLost", "Node worker-3 which was running pod sheet-12 is unresponsive"),
			ejv1.ErrorTypeNodeLost, "Node worker-3 which was running pod sheet-12 is unresponsive"},
		{"the Pod garbage collector removes it from a deleted node (DeletionByPodGC)", disruptedPod(1, "DeletionByPodGC", "PodGC: node no longer exists"),
			ejv1.ErrorTypeNodeLost, "The cluster disrupted the attempt's Pod."},
		{"its node shuts down (Shutdown)", takenAwayPod(1, "Shutdown", "Pod was rejected as the node is shutting down."),
			ejv1.ErrorTypeNodeLost, "Pod was rejected as the node is shutting down."},
		{"its node shuts down gracefully (Terminated)", takenAwayPod(1, "Terminated", "Pod was terminated in response to imminent node shutdown."),
			ejv1.ErrorTypeNodeLost, "Pod was terminated in response to imminent node shutdown."},
		{"the kubelet preempts it for a critical Pod (Preempting)", takenAwayPod(1, "Preempting", "Preempted in order to admit critical pod"),
			ejv1.ErrorTypePodPreempted, "Preempted in order to admit critical pod"},
	} {
		cases = append(cases, transitionCase{
			name:   "a disruption is retried without spending a retry when " + d.how,
			job:    runningJob(1),
			happen: follow(d.pod),
			want: failedWith{attempt: 1, errorType: d.errorType, class: ejv1.ClassDisruption, message: d.message, disruptionCount: 1}.
				retried("Disruption 1/5", firstRetryWait),
		})
	}
	disruptionsSpent := func(retries int32) *ejv1.ExtractionJob {
		job := runningJob(1)
		job.Status.DisruptionCount, job.Status.RetryCount = 5, retries
		return job
	}
	evicted := failedWith{attempt: 1, errorType: ejv1.ErrorTypePodEvicted, class: ejv1.ClassDisruption,
		message: "The node was low on resource: memory.", disruptionCount: 5}
	evictedAndRetried := evicted
	evictedAndRetried.retryCount = 1
	evictedWithRetriesSpent := evicted
	evictedWithRetriesSpent.retryCount = 3
	cases = append(cases, transitionCase{
		name:   "a disruption with maxDisruptions spent is a counted retry",
		job:    disruptionsSpent(0),
		happen: follow(takenAwayPod(1, "Evicted", "The node was low on resource: memory.")),
		want:   evictedAndRetried.retried("Retry 1/3", firstRetryWait),
	}, transitionCase{
		name:   "a disruption with maxDisruptions and maxRetries spent fails the job",
		job:    disruptionsSpent(3),
		happen: follow(takenAwayPod(1, "Evicted", "The node was low on resource: memory.")),
		want: evictedWithRetriesSpent.ended("Max retries (3) exceeded. Last error: "+evicted.lastError(),
			ejv1.ReasonMaxRetriesExceeded),
	})
	runTransitionCases(t, cases)
}

func TestTransitionsOfACancel(t *testing.T) {
	pod1 := podName(transitionJob(), 1)
	cancelled := []jobEvent{normal(ejv1.ReasonCancelled, "The job was cancelled.")}
	cancelCounted := observation{Metric: metricCancels, Value: 1}
	failedBefore := []string{"1 Failed ConnectionError Retryable"}
	generationChanged := func(job *ejv1.ExtractionJob) *ejv1.ExtractionJob {
		job.Generation = 2
		return job
	}
	attemptCancelled := transitionOutcome{
		Phase: ejv1.PhaseCancelled, Attempt: 1, PodName: pod1, Completed: true,
		Message:    "Cancelled by spec.cancel.",
		Attempts:   []string{"1 Cancelled"},
		Conditions: endedConditions(ejv1.ReasonCancelled),
		Events:     cancelled,
		Metrics:    append(attemptEnded(ejv1.OutcomeCancelled, "", ""), cancelCounted),
	}
	runTransitionCases(t, []transitionCase{{
		name:   "cancelling a pending job closes its attempt as Cancelled",
		job:    withCancel(onAttempt(ejv1.PhasePending, 1)),
		happen: cancelWith(attemptPodOf(1)),
		want:   attemptCancelled,
	}, {
		name:   "cancelling a running job whose Pod failed meanwhile closes its attempt as Cancelled",
		job:    withCancel(runningJob(1)),
		happen: cancelWith(terminatedPod(1, corev1.PodFailed, 1, "ConnectionError: connection refused")),
		want:   attemptCancelled,
	}, {
		name:   "cancelling a running job whose Pod already succeeded keeps the result",
		job:    withCancel(runningJob(1)),
		happen: cancelWith(terminatedPod(1, corev1.PodSucceeded, 0, `{"pages":1}`)),
		want:   succeededOn(1, `{"pages":1}`),
	}, {
		name:   "cancelling a retrying job drops its retry",
		job:    withCancel(retryingJob(1, time.Minute)),
		happen: cancelWith(nil),
		want: transitionOutcome{
			Phase: ejv1.PhaseCancelled, RetryCount: 1, Attempt: 1, PodName: pod1, Completed: true,
			Message:     "Cancelled by spec.cancel.",
			LastFailure: "ConnectionError Retryable",
			Attempts:    failedBefore,
			Conditions:  endedConditions(ejv1.ReasonCancelled),
			Events:      cancelled,
			Metrics:     []observation{cancelCounted},
		},
	}, {
		name:   "cancelling a job that already succeeded says once that nothing changes",
		job:    generationChanged(withCancel(endedJob(ejv1.PhaseSucceeded))),
		happen: cancelWith(nil),
		want: transitionOutcome{
			Phase: ejv1.PhaseSucceeded, RetryCount: 1, Attempt: 1, PodName: pod1, Completed: true,
			Message:    "ended",
			Attempts:   failedBefore,
			Conditions: succeededConditions,
			Events:     []jobEvent{normal(ejv1.ReasonCancelIgnored, "The job already finished as Succeeded; cancel changes nothing.")},
		},
	}, {
		name:   "a cancel of a finished job that was already handled says nothing",
		job:    withCancel(endedJob(ejv1.PhaseFailed)),
		happen: cancelWith(nil),
		want:   unchanged(withCancel(endedJob(ejv1.PhaseFailed))),
	}, {
		name:   "a cancelled job whose spec changes again says nothing",
		job:    generationChanged(withCancel(endedJob(ejv1.PhaseCancelled))),
		happen: cancelWith(nil),
		want:   unchanged(generationChanged(withCancel(endedJob(ejv1.PhaseCancelled)))),
	}})
}

func TestTransitionsCancelDeletesOnlyAPodThatHasNotFinished(t *testing.T) {
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"no Pod", nil, false},
		{"a pending Pod", attemptPodOf(1), true},
		{"a running Pod", runningPod(1), true},
		{"a Pod being deleted", deletingPod(1), true},
		{"a succeeded Pod", terminatedPod(1, corev1.PodSucceeded, 0, ""), false},
		{"a failed Pod", terminatedPod(1, corev1.PodFailed, 1, ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := cancelStopsPod(tc.pod); got != tc.want {
				t.Errorf("cancelStopsPod = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTransitionsFailAStuckPodOnlyOnceItsGraceIsOver(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pod       *corev1.Pod
		wantStuck bool
		wantWait  time.Duration
	}{
		{"an invalid image name at once", waitingPod(1, "InvalidImageName", "", time.Second), true, 0},
		{"an image pull within the grace period", waitingPod(1, "ErrImagePull", "", time.Minute), false, 4 * time.Minute},
		{"an image pull after the grace period", waitingPod(1, "ImagePullBackOff", "", 5*time.Minute), true, 0},
		{"a missing Secret after the grace period", waitingPod(1, "CreateContainerConfigError", "", 6*time.Minute), true, 0},
		{"a container being created", waitingPod(1, "ContainerCreating", "", time.Hour), false, 0},
		{"a running Pod", runningPod(1), false, 0},
		{"a Pod being deleted", func() *corev1.Pod {
			pod := waitingPod(1, "InvalidImageName", "", time.Second)
			pod.DeletionTimestamp = ptrTime(transitionNow)
			return pod
		}(), false, 0},
		{"no Pod", nil, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stuck, wait := newTransitionScope(runningJob(1)).stuckPod(tc.pod)
			if stuck != tc.wantStuck || wait != tc.wantWait {
				t.Errorf("stuckPod = %v, %s; want %v, %s", stuck, wait, tc.wantStuck, tc.wantWait)
			}
		})
	}
}

func TestTransitionsWaitForARetryUntilItIsDue(t *testing.T) {
	for _, tc := range []struct {
		due  time.Duration
		want time.Duration
	}{{20 * time.Second, 20 * time.Second}, {0, 0}, {-time.Second, 0}} {
		if got := newTransitionScope(retryingJob(1, tc.due)).retryWait(); got != tc.want {
			t.Errorf("a retry due in %s waits %s, want %s", tc.due, got, tc.want)
		}
	}
}

func TestTransitionsOfARetryRequest(t *testing.T) {
	restarted := func(token string, phase ejv1.Phase) transitionOutcome {
		return transitionOutcome{
			Phase: ejv1.PhasePending, Attempt: 1,
			Message:                 "Manual retry requested; starting a new attempt.",
			LastHandledRetryRequest: token,
			Attempts:                []string{"1 Failed ConnectionError Retryable"},
			Conditions:              pendingConditions,
			Events: []jobEvent{normal(ejv1.ReasonManualRetry,
				fmt.Sprintf("Manual retry requested with token %q after the job was %s.", token, phase))},
			Metrics: []observation{{Metric: metricManualRetries, Value: 1}},
		}
	}
	refused := func(job *ejv1.ExtractionJob, token, note string) transitionOutcome {
		o := unchanged(job)
		o.LastHandledRetryRequest = token
		o.Events = []jobEvent{warning(ejv1.ReasonRetryRequestIgnored, note)}
		return o
	}
	handled := func(job *ejv1.ExtractionJob, token string) *ejv1.ExtractionJob {
		job.Status.LastHandledRetryRequest = token
		return job
	}
	failedWithDisruption := func() *ejv1.ExtractionJob {
		job := endedJob(ejv1.PhaseFailed)
		job.Status.DisruptionCount = 2
		return job
	}
	runTransitionCases(t, []transitionCase{{
		name:   "a retry request restarts a failed job with a fresh budget, keeping the attempt number",
		job:    withRetryRequest(failedWithDisruption(), "2026-11-28T10:00:00Z"),
		happen: handleRetryRequest,
		want:   restarted("2026-11-28T10:00:00Z", ejv1.PhaseFailed),
	}, {
		name:   "a retry request restarts a cancelled job once spec.cancel is false",
		job:    withRetryRequest(endedJob(ejv1.PhaseCancelled), "after-uncancel"),
		happen: handleRetryRequest,
		want:   restarted("after-uncancel", ejv1.PhaseCancelled),
	}, {
		name:   "a retry request on a failed job with spec.cancel set is recorded and refused",
		job:    withRetryRequest(withCancel(endedJob(ejv1.PhaseFailed)), "blocked"),
		happen: handleRetryRequest,
		want: refused(withCancel(endedJob(ejv1.PhaseFailed)), "blocked",
			`Retry request "blocked" ignored: the job is Failed and spec.cancel is true; set it to false to retry.`),
	}, {
		name:   "a retry request on a running job is recorded and refused",
		job:    withRetryRequest(runningJob(1), "first"),
		happen: handleRetryRequest,
		want: refused(runningJob(1), "first",
			`Retry request "first" ignored: the job is Running; only Failed or Cancelled jobs can be retried.`),
	}, {
		name:   "a retry request already handled changes nothing",
		job:    withRetryRequest(handled(endedJob(ejv1.PhaseFailed), "t1"), "t1"),
		happen: handleRetryRequest,
		want:   unchanged(handled(endedJob(ejv1.PhaseFailed), "t1")),
	}, {
		name:   "a job created with a retry request records the token and nothing else",
		job:    withRetryRequest(transitionJob(), "at-creation"),
		happen: handleRetryRequest,
		want:   transitionOutcome{LastHandledRetryRequest: "at-creation", Conditions: pendingConditions},
	}})
}

// TestTransitionsOfARuleWithActionIgnoreThroughAWholeJob follows a job whose rule ignores
// exit code 3: its failures are disruptions while maxDisruptions lasts, then
// counted retries, then the job fails.
func TestTransitionsOfARuleWithActionIgnoreThroughAWholeJob(t *testing.T) {
	job := pendingJob()
	job.Spec.RetryPolicy.MaxRetries = ptr.To[int32](1)
	job.Spec.RetryPolicy.MaxDisruptions = ptr.To[int32](2)
	job.Spec.RetryPolicy.Rules = []ejv1.RetryRule{{ExitCodes: []int32{3}, Action: ejv1.RuleActionIgnore}}
	const lastError = "TemporaryFailure: the scratch volume went away"

	type step struct {
		Phase                                ejv1.Phase
		RetryCount, DisruptionCount, Attempt int32
		Message                              string
		NextRetryAt                          string
		LastFailure                          string
		Conditions                           []string
		WakeUp                               ctrl.Result
	}
	want := []step{
		{ejv1.PhaseRetrying, 0, 1, 1, "Disruption 1/2: " + lastError, at(firstRetryWait), "TemporaryFailure Disruption", retryingConditions, retryAfter(firstRetryWait)},
		{ejv1.PhaseRetrying, 0, 2, 2, "Disruption 2/2: " + lastError, at(firstRetryWait), "TemporaryFailure Disruption", retryingConditions, retryAfter(firstRetryWait)},
		{ejv1.PhaseRetrying, 1, 2, 3, "Retry 1/1: " + lastError, at(firstRetryWait), "TemporaryFailure Disruption", retryingConditions, retryAfter(firstRetryWait)},
		{ejv1.PhaseFailed, 1, 2, 4, "Max retries (1) exceeded. Last error: " + lastError, "", "TemporaryFailure Disruption",
			endedConditions(ejv1.ReasonMaxRetriesExceeded), ctrl.Result{}},
	}
	var got []step
	var reasons []string
	for attempt := int32(1); attempt <= 4; attempt++ {
		s := newTransitionScope(job)
		s.attemptCreated(attemptPodOf(attempt), attempt)
		wakeUp := s.followPod(terminatedPod(attempt, corev1.PodFailed, 3, lastError))
		o := outcomeOf(s, wakeUp)
		got = append(got, step{o.Phase, o.RetryCount, o.DisruptionCount, o.Attempt, o.Message, o.NextRetryAt, o.LastFailure, o.Conditions, o.WakeUp})
		for _, e := range o.Events {
			reasons = append(reasons, e.Reason)
		}
		// The next attempt starts when its retry falls due.
		if job.Status.NextRetryAt != nil {
			job.Status.NextRetryAt = preciseTime(transitionNow)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	wantReasons := []string{
		ejv1.ReasonAttemptStarted, ejv1.ReasonAttemptFailed, ejv1.ReasonRetryScheduled,
		ejv1.ReasonAttemptStarted, ejv1.ReasonAttemptFailed, ejv1.ReasonRetryScheduled,
		ejv1.ReasonAttemptStarted, ejv1.ReasonAttemptFailed, ejv1.ReasonRetryScheduled,
		ejv1.ReasonAttemptStarted, ejv1.ReasonAttemptFailed, ejv1.ReasonMaxRetriesExceeded,
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("event reasons (-want +got):\n%s", diff)
	}
	wantAttempts := []string{"1 Failed TemporaryFailure Disruption", "2 Failed TemporaryFailure Disruption",
		"3 Failed TemporaryFailure Disruption", "4 Failed TemporaryFailure Disruption"}
	if diff := cmp.Diff(wantAttempts, outcomeOf(newTransitionScope(job), ctrl.Result{}).Attempts); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}
