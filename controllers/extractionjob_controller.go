// Package controllers runs ExtractionJobs: one Pod per attempt, failures
// classified, retries after backoff.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractionjobs,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractionjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractionjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// ExtractionJobReconciler runs each ExtractionJob's attempts and retries.
type ExtractionJobReconciler struct {
	client.Client
	// APIReader reads around the cache, to tell a Pod that is gone from one
	// the cache has not seen yet.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Jitter returns a random number in [0, 1) for the backoff's jitter.
	Jitter func() float64
	Images ExtractorImages
	// ImagePullGracePeriod is how long an attempt may wait for its image or
	// its container configuration (a missing Secret, say) before it fails.
	ImagePullGracePeriod time.Duration

	// replacedVersions maps the UID of a job, or of an attempt's Pod, to the
	// resourceVersion that the operator's latest write of it replaced. While
	// the cache still shows that version, a reconcile would act on the state
	// before the write (and create a Pod twice, or release a Pod twice and
	// lose the race); it waits instead for the watch event of its own write,
	// which triggers the next reconcile.
	replacedVersions sync.Map
}

// conflictRetryDelay is how soon a reconcile whose status write lost a race,
// or whose cache was behind, runs again; the cache has usually caught up by then.
const conflictRetryDelay = 100 * time.Millisecond

// dueRetryPriority puts a job whose retry falls due ahead of the event-driven
// reconciles in the work queue (priority 0, or below for the initial list):
// behind a backlog of Pod updates, a due retry would otherwise start as late
// as the backlog is long.
const dueRetryPriority = 10

// waitForRetry wakes the job at its retry time, with the queue priority of a due retry.
func waitForRetry(at, now time.Time) ctrl.Result {
	return ctrl.Result{RequeueAfter: at.Sub(now), Priority: ptr.To(dueRetryPriority)}
}

// attemptScope is one reconcile's view of a job: the time it acts on, and
// what it announces (events, metrics) once its status write has succeeded, so
// a reconcile that fails and runs again never announces a transition twice.
type attemptScope struct {
	job        *ejv1.ExtractionJob
	now        time.Time
	recorder   events.EventRecorder
	afterWrite []func()
	// deleted is set when the reconcile deleted the job, leaving no status to write.
	deleted bool
}

func (s *attemptScope) event(eventType, reason, format string, args ...any) {
	s.podEvent(nil, eventType, reason, format, args...)
}

// podEvent is an event about the job that also names the attempt's Pod, when there is one.
func (s *attemptScope) podEvent(pod *corev1.Pod, eventType, reason, format string, args ...any) {
	var related runtime.Object
	if pod != nil {
		related = pod
	}
	job, note := s.job, fmt.Sprintf(format, args...)
	s.afterWrite = append(s.afterWrite, func() {
		s.recorder.Eventf(job, related, eventType, reason, reason, "%s", note)
	})
}

// observe records a metric once the status write has succeeded.
func (s *attemptScope) observe(record func()) {
	s.afterWrite = append(s.afterWrite, record)
}

// Reconcile moves one job one step along: it starts an attempt, records what
// the attempt's Pod did, schedules a retry, or finishes the job.
func (r *ExtractionJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	job := &ejv1.ExtractionJob{}
	if err := r.Get(ctx, req.NamespacedName, job); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !job.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the job's Pods with it.
		r.replacedVersions.Delete(job.UID)
		return ctrl.Result{}, nil
	}
	if r.cacheBehindOwnWrite(job) {
		// The watch event of that write will come, but this reconcile may
		// have taken the job's queued wake-up with it: a later event would
		// wake the job at ordinary priority, behind the whole backlog. Try
		// again shortly instead, at the priority this request had.
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}

	s := &attemptScope{job: job, now: r.Clock.Now(), recorder: r.Recorder}
	original := job.DeepCopy()
	defer func() { result, err = r.finishReconcile(ctx, original, s, result, err) }()

	r.handleRetryRequest(s)
	if job.Spec.Cancel {
		if err := r.reconcileCancel(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !job.Status.Phase.Finished() {
		result, err := r.reconcileAttempt(ctx, s)
		if err != nil || !job.Status.Phase.Finished() {
			return result, err
		}
	}
	return r.reconcileTTL(ctx, s)
}

// finishReconcile writes the status, then announces what the reconcile did
// and releases the Pods whose outcomes the status now holds.
func (r *ExtractionJobReconciler) finishReconcile(ctx context.Context, original *ejv1.ExtractionJob, s *attemptScope,
	result ctrl.Result, err error) (ctrl.Result, error) {
	patchErr := r.patchStatus(ctx, original, s, err == nil)
	if apierrors.IsConflict(patchErr) {
		// Someone else wrote the job since it was read: decide again on the new version.
		ctrl.LoggerFrom(ctx).V(1).Info("status write conflicted; reconciling again")
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}
	if err = errors.Join(err, patchErr); err != nil {
		return result, err
	}
	for _, announce := range s.afterWrite {
		announce()
	}
	err = r.releaseRecordedPods(ctx, s)
	return wakeUpFromNow(result, r.Clock.Since(s.now)), err
}

// patchStatus writes the status once per reconcile, only when it changed,
// and only over the version the reconcile read, so a decision taken on a stale
// cache never lands.
func (r *ExtractionJobReconciler) patchStatus(ctx context.Context, original *ejv1.ExtractionJob, s *attemptScope, passFinished bool) error {
	job := s.job
	if s.deleted {
		return nil
	}
	if passFinished {
		job.Status.ObservedGeneration = job.Generation
	}
	job.Status.Retries = fmt.Sprintf("%d/%d", job.Status.RetryCount, ptr.Deref(job.Spec.RetryPolicy.MaxRetries, 0))
	setConditions(job, s.now)
	if equality.Semantic.DeepEqual(original.Status, job.Status) {
		return nil
	}
	patch := client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
	if err := r.Status().Patch(ctx, job, patch); err != nil {
		return fmt.Errorf("patching status of ExtractionJob %s/%s: %w", job.Namespace, job.Name, err)
	}
	r.replacedVersions.Store(job.UID, original.ResourceVersion)
	return nil
}

// cacheBehindOwnWrite reports whether the cached object is still the version
// that the operator's latest write of it replaced.
func (r *ExtractionJobReconciler) cacheBehindOwnWrite(obj client.Object) bool {
	replaced, ok := r.replacedVersions.Load(obj.GetUID())
	if !ok {
		return false
	}
	if replaced == obj.GetResourceVersion() {
		return true
	}
	r.replacedVersions.Delete(obj.GetUID())
	return false
}

// handleRetryRequest restarts a Failed or Cancelled job when the retry
// annotation carries a token the job has not handled yet.
func (r *ExtractionJobReconciler) handleRetryRequest(s *attemptScope) {
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
		job.Status.PodName = ""
		job.Status.NextRetryAt = nil
		job.Status.CompletionTime = nil
		job.Status.LastFailure = nil
		job.Status.Result = nil
		job.Status.Message = "Manual retry requested; starting a new attempt."
		s.observe(manualRetries.Inc)
		s.event(corev1.EventTypeNormal, ejv1.ReasonManualRetry, "Manual retry requested with token %q after the job was %s.", token, phase)
	case phase == ejv1.PhaseFailed || phase == ejv1.PhaseCancelled:
		s.event(corev1.EventTypeWarning, ejv1.ReasonRetryRequestIgnored,
			"Retry request %q ignored: the job is %s and spec.cancel is true; set it to false to retry.", token, phase)
	default:
		s.event(corev1.EventTypeWarning, ejv1.ReasonRetryRequestIgnored,
			"Retry request %q ignored: the job is %s; only Failed or Cancelled jobs can be retried.", token, phase)
	}
}

// reconcileCancel ends a job whose spec asks for cancellation, deleting a
// running attempt's Pod.
func (r *ExtractionJobReconciler) reconcileCancel(ctx context.Context, s *attemptScope) error {
	job := s.job
	if job.Status.Phase.Finished() {
		if job.Status.Phase != ejv1.PhaseCancelled && job.Generation != job.Status.ObservedGeneration {
			s.event(corev1.EventTypeNormal, ejv1.ReasonCancelIgnored, "The job already finished as %s; cancel changes nothing.", job.Status.Phase)
		}
		return nil
	}
	if err := r.adoptUnrecordedAttempt(ctx, s); err != nil {
		return err
	}
	if attemptInFlight(job) {
		pod, err := r.currentPod(ctx, job)
		if err != nil {
			return err
		}
		if pod != nil && pod.Status.Phase == corev1.PodSucceeded {
			// The extraction finished before the cancel arrived: keep its result.
			r.attemptSucceeded(s, pod)
			return nil
		}
		if pod != nil && pod.Status.Phase != corev1.PodFailed {
			if err := r.deletePod(ctx, pod); err != nil {
				return err
			}
		}
		s.finishAttempt(ejv1.OutcomeCancelled, nil)
	}
	job.Status.Phase = ejv1.PhaseCancelled
	job.Status.NextRetryAt = nil
	job.Status.CompletionTime = ptrTime(s.now)
	job.Status.Message = "Cancelled by spec.cancel."
	s.event(corev1.EventTypeNormal, ejv1.ReasonCancelled, "The job was cancelled.")
	s.observe(cancels.Inc)
	return nil
}

// reconcileTTL deletes a finished job, and with it its Pods, once
// ttlSecondsAfterFinished has passed since it finished.
func (r *ExtractionJobReconciler) reconcileTTL(ctx context.Context, s *attemptScope) (ctrl.Result, error) {
	job := s.job
	if job.Spec.TTLSecondsAfterFinished == nil || job.Status.CompletionTime == nil {
		return ctrl.Result{}, nil
	}
	expiry := job.Status.CompletionTime.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	if expiry.After(s.now) {
		return ctrl.Result{RequeueAfter: expiry.Sub(s.now)}, nil
	}
	err := r.Delete(ctx, job, client.Preconditions{UID: &job.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("deleting ExtractionJob %s/%s after its TTL: %w", job.Namespace, job.Name, err)
	}
	s.deleted = true
	ctrl.LoggerFrom(ctx).V(1).Info("deleted finished job after its TTL", "completionTime", job.Status.CompletionTime, "ttlSecondsAfterFinished", *job.Spec.TTLSecondsAfterFinished)
	return ctrl.Result{}, nil
}

// reconcileAttempt starts the next attempt when one is due, and otherwise
// follows the current attempt's Pod.
func (r *ExtractionJobReconciler) reconcileAttempt(ctx context.Context, s *attemptScope) (ctrl.Result, error) {
	job := s.job
	switch {
	case job.Status.Phase == "":
		job.Status.Phase = ejv1.PhasePending
		job.Status.StartTime = ptrTime(s.now)
	case job.Status.Phase == ejv1.PhaseRetrying:
		if job.Status.NextRetryAt != nil && job.Status.NextRetryAt.After(s.now) {
			return waitForRetry(job.Status.NextRetryAt.Time, s.now), nil
		}
	case job.Status.PodName != "":
		return r.followAttempt(ctx, s)
	}
	adopted, err := r.startAttempt(ctx, s)
	if err != nil || !adopted {
		return ctrl.Result{}, err
	}
	// The adopted Pod may have run, or even finished, while nobody watched.
	return r.followAttempt(ctx, s)
}

// startAttempt creates the next attempt's Pod. Its name is fixed by the job
// and the attempt number, so after a crash between the create and the status
// write the operator finds the same Pod instead of starting a second one, and
// adopts it.
func (r *ExtractionJobReconciler) startAttempt(ctx context.Context, s *attemptScope) (adopted bool, err error) {
	job := s.job
	image := r.Images.For(job.Spec.Format)
	if image == "" {
		return false, fmt.Errorf("no extractor image is configured for format %q: set --extractor-image", job.Spec.Format)
	}
	attempt := job.Status.Attempt + 1
	pod, err := attemptPod(job, attempt, image)
	if err != nil {
		return false, err
	}
	switch err := r.Create(ctx, pod); {
	case apierrors.IsAlreadyExists(err):
		// An earlier reconcile created the Pod and lost its status write.
		existing, getErr := r.podByName(ctx, job.Namespace, pod.Name)
		if getErr != nil {
			return false, getErr
		}
		if existing == nil || !metav1.IsControlledBy(existing, job) {
			return false, fmt.Errorf("pod %s/%s exists but does not belong to this job", pod.Namespace, pod.Name)
		}
		recordAttemptStarted(s, existing, attempt, existing.CreationTimestamp.Time)
		return true, nil
	case apierrors.IsInvalid(err):
		// The API server will refuse this Pod every time: retrying cannot help.
		job.Status.Attempt = attempt
		failure := ejv1.Failure{ErrorType: ejv1.ErrorTypeInvalidPodSpec, Class: ejv1.ClassPermanent, Message: cleanText(err.Error())}
		job.Status.LastFailure = &failure
		r.finish(s, ejv1.PhaseFailed, fmt.Sprintf("Permanent error: %s: %s", failure.ErrorType, failure.Message))
		return false, nil
	case err != nil:
		// Emitted now: the reconcile fails, so its queued events are dropped.
		r.Recorder.Eventf(job, nil, corev1.EventTypeWarning, ejv1.ReasonPodCreateFailed, ejv1.ReasonPodCreateFailed,
			"Creating the Pod of attempt %d failed: %s", attempt, cleanText(err.Error()))
		return false, fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}

	if due := job.Status.NextRetryAt; due != nil {
		lateness := s.now.Sub(due.Time).Seconds()
		s.observe(func() { retryLateness.Observe(lateness) })
	}
	recordAttemptStarted(s, pod, attempt, s.now)
	return false, nil
}

// recordAttemptStarted makes the Pod the job's current attempt.
func recordAttemptStarted(s *attemptScope, pod *corev1.Pod, attempt int32, started time.Time) {
	job := s.job
	job.Status.Attempt = attempt
	job.Status.PodName = pod.Name
	job.Status.Phase = ejv1.PhasePending
	job.Status.NextRetryAt = nil
	job.Status.Message = fmt.Sprintf("Attempt %d is waiting for Pod %s to start.", attempt, pod.Name)
	job.Status.Attempts = appendAttemptRecord(job.Status.Attempts, ejv1.AttemptRecord{
		Attempt: attempt, PodName: pod.Name, StartTime: metav1.NewTime(started), Outcome: ejv1.OutcomeRunning,
	})
	s.podEvent(pod, corev1.EventTypeNormal, ejv1.ReasonAttemptStarted, "Started attempt %d in Pod %s.", attempt, pod.Name)
}

// adoptUnrecordedAttempt finds the Pod of the next attempt, which exists when
// an earlier reconcile created it and then lost its status write, and makes
// it the current attempt, so that a cancel stops it and nothing runs unseen.
func (r *ExtractionJobReconciler) adoptUnrecordedAttempt(ctx context.Context, s *attemptScope) error {
	job := s.job
	attempt := job.Status.Attempt + 1
	name := podName(job, attempt)
	pod := &corev1.Pod{}
	err := r.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: name}, pod)
	if apierrors.IsNotFound(err) {
		if pod, err = r.podByName(ctx, job.Namespace, name); err != nil || pod == nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("reading pod %s/%s: %w", job.Namespace, name, err)
	}
	if metav1.IsControlledBy(pod, job) {
		recordAttemptStarted(s, pod, attempt, pod.CreationTimestamp.Time)
	}
	return nil
}

// releaseRecordedPods releases the Pods of the job's recorded attempts, now
// that the status holding their outcomes is written. Pods are looked up by
// name in the cache: no list, and no API call unless a release is due.
func (r *ExtractionJobReconciler) releaseRecordedPods(ctx context.Context, s *attemptScope) error {
	if s.deleted {
		return nil
	}
	job := s.job
	var errs []error
	for _, record := range job.Status.Attempts {
		if record.FinishTime == nil {
			continue
		}
		pod := &corev1.Pod{}
		err := r.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: record.PodName}, pod)
		if apierrors.IsNotFound(err) || (err == nil && (!metav1.IsControlledBy(pod, job) || r.cacheBehindOwnWrite(pod))) {
			continue
		}
		if err == nil {
			replaced := pod.ResourceVersion
			err = releasePod(ctx, r.Client, pod)
			if err == nil && pod.ResourceVersion != replaced {
				r.replacedVersions.Store(pod.UID, replaced)
			}
		}
		if apierrors.IsConflict(err) {
			// The Pod changed since the cache showed it; the watch event of
			// that change reconciles the job again, and releases it then.
			continue
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// followAttempt records what the current attempt's Pod did.
func (r *ExtractionJobReconciler) followAttempt(ctx context.Context, s *attemptScope) (ctrl.Result, error) {
	job := s.job
	pod, err := r.currentPod(ctx, job)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case pod == nil:
		return r.attemptFailed(s, nil, attemptFailure{deleted: true}), nil
	case pod.Status.Phase == corev1.PodSucceeded:
		r.attemptSucceeded(s, pod)
		return ctrl.Result{}, nil
	case pod.Status.Phase == corev1.PodFailed:
		return r.attemptFailed(s, pod, failureOfPod(pod)), nil
	case !pod.DeletionTimestamp.IsZero():
		failure := failureOfPod(pod)
		failure.deleted = true
		return r.attemptFailed(s, pod, failure), nil
	case pod.Status.Phase == corev1.PodRunning:
		if job.Status.Phase != ejv1.PhaseRunning {
			job.Status.Phase = ejv1.PhaseRunning
			job.Status.Message = fmt.Sprintf("Attempt %d is running in Pod %s.", job.Status.Attempt, pod.Name)
		}
		return ctrl.Result{}, nil
	}
	return r.checkStuckPod(ctx, s, pod)
}

// checkStuckPod fails an attempt whose container cannot start: at once for an
// invalid image name, after the grace period for image pulls and container
// configuration, which a registry or a late Secret may still fix.
func (r *ExtractionJobReconciler) checkStuckPod(ctx context.Context, s *attemptScope, pod *corev1.Pod) (ctrl.Result, error) {
	status := extractorStatus(pod)
	if status == nil || status.State.Waiting == nil {
		return ctrl.Result{}, nil
	}
	switch status.State.Waiting.Reason {
	case waitingInvalidImageName:
	case waitingErrImagePull, waitingImagePullBackOff, waitingErrImageNeverPull, waitingCreateConfigError, waitingCreateContainerErr:
		if wait := pod.CreationTimestamp.Add(r.ImagePullGracePeriod).Sub(s.now); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	default:
		return ctrl.Result{}, nil
	}
	if err := r.deletePod(ctx, pod); err != nil {
		return ctrl.Result{}, err
	}
	return r.attemptFailed(s, pod, failureOfPod(pod)), nil
}

func (r *ExtractionJobReconciler) attemptSucceeded(s *attemptScope, pod *corev1.Pod) {
	job := s.job
	job.Status.Result = nil
	if status := extractorStatus(pod); status != nil && status.State.Terminated != nil {
		result, err := parseResult(status.State.Terminated.Message)
		if err != nil {
			s.podEvent(pod, corev1.EventTypeWarning, ejv1.ReasonResultIgnored, "The extractor's result was not kept: %s.", err)
		}
		job.Status.Result = result
	}
	s.finishAttempt(ejv1.OutcomeSucceeded, nil)
	r.finish(s, ejv1.PhaseSucceeded, fmt.Sprintf("Extraction succeeded on attempt %d.", job.Status.Attempt))
}

// attemptFailed classifies a failure and either schedules the retry or fails the job.
func (r *ExtractionJobReconciler) attemptFailed(s *attemptScope, pod *corev1.Pod, observed attemptFailure) ctrl.Result {
	job := s.job
	policy := job.Spec.RetryPolicy
	maxRetries, maxDisruptions := ptr.Deref(policy.MaxRetries, 0), ptr.Deref(policy.MaxDisruptions, 0)
	failure := classify(observed, policy.Rules)
	job.Status.LastFailure = &failure
	s.finishAttempt(ejv1.OutcomeFailed, &failure)
	s.podEvent(pod, corev1.EventTypeWarning, ejv1.ReasonAttemptFailed, "Attempt %d failed (%s): %s: %s",
		job.Status.Attempt, failure.Class, failure.ErrorType, failure.Message)

	lastError := failure.ErrorType + ": " + failure.Message
	switch {
	case failure.Class == ejv1.ClassPermanent:
		r.finish(s, ejv1.PhaseFailed, "Permanent error: "+lastError)
		return ctrl.Result{}
	case failure.Class == ejv1.ClassDisruption && job.Status.DisruptionCount < maxDisruptions:
		job.Status.DisruptionCount++
		return r.scheduleRetry(s, disruptionDelay(policy.Backoff, r.Jitter()),
			fmt.Sprintf("Disruption %d/%d: %s", job.Status.DisruptionCount, maxDisruptions, lastError))
	case job.Status.RetryCount < maxRetries:
		job.Status.RetryCount++
		return r.scheduleRetry(s, retryDelay(policy.Backoff, job.Status.RetryCount, r.Jitter()),
			fmt.Sprintf("Retry %d/%d: %s", job.Status.RetryCount, maxRetries, lastError))
	default:
		r.finish(s, ejv1.PhaseFailed, fmt.Sprintf("Max retries (%d) exceeded. Last error: %s", maxRetries, lastError))
		return ctrl.Result{}
	}
}

// scheduleRetry stores the retry time before waiting for it, so a restarted
// operator waits for the same time and never retries early.
func (r *ExtractionJobReconciler) scheduleRetry(s *attemptScope, delay time.Duration, message string) ctrl.Result {
	job := s.job
	at := retryTime(s.now, delay)
	format, class := string(job.Spec.Format), string(job.Status.LastFailure.Class)
	s.observe(func() {
		retriesScheduled.WithLabelValues(format, class).Inc()
		backoffDelay.WithLabelValues(format, class).Observe(at.Sub(s.now).Seconds())
	})
	job.Status.Phase = ejv1.PhaseRetrying
	job.Status.NextRetryAt = &at
	job.Status.Message = message
	s.event(corev1.EventTypeNormal, ejv1.ReasonRetryScheduled, "%s. Next attempt at %s (in %s).",
		message, at.UTC().Format(time.RFC3339), at.Sub(s.now).Round(time.Second))
	return waitForRetry(at.Time, s.now)
}

// finish moves the job to a terminal phase.
func (r *ExtractionJobReconciler) finish(s *attemptScope, phase ejv1.Phase, message string) {
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

// currentPod is the current attempt's Pod, or nil when it no longer exists.
func (r *ExtractionJobReconciler) currentPod(ctx context.Context, job *ejv1.ExtractionJob) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	err := r.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: job.Status.PodName}, pod)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Pod created moments ago; only the API
		// server can say it is gone.
		return r.podByName(ctx, job.Namespace, job.Status.PodName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", job.Namespace, job.Status.PodName, err)
	}
	return pod, nil
}

func (r *ExtractionJobReconciler) podByName(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s from the API server: %w", namespace, name, err)
	}
	return pod, nil
}

// deletePod deletes exactly the Pod that was read, never a successor that
// took its name.
func (r *ExtractionJobReconciler) deletePod(ctx context.Context, pod *corev1.Pod) error {
	err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func attemptInFlight(job *ejv1.ExtractionJob) bool {
	return job.Status.PodName != "" && (job.Status.Phase == ejv1.PhasePending || job.Status.Phase == ejv1.PhaseRunning)
}

// appendAttemptRecord adds an attempt to the history, dropping the oldest
// beyond MaxAttemptRecords.
func appendAttemptRecord(records []ejv1.AttemptRecord, record ejv1.AttemptRecord) []ejv1.AttemptRecord {
	records = append(records, record)
	if excess := len(records) - ejv1.MaxAttemptRecords; excess > 0 {
		records = append([]ejv1.AttemptRecord(nil), records[excess:]...)
	}
	return records
}

// finishAttempt closes the current attempt's history entry and counts it.
func (s *attemptScope) finishAttempt(outcome ejv1.AttemptOutcome, failure *ejv1.Failure) {
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
		format, duration := string(job.Spec.Format), s.now.Sub(record.StartTime.Time).Seconds()
		s.observe(func() {
			attemptsFinished.WithLabelValues(format, string(outcome), class, errorType).Inc()
			attemptDuration.WithLabelValues(format, string(outcome)).Observe(duration)
		})
	}
}

func ptrTime(t time.Time) *metav1.Time {
	mt := metav1.NewTime(t)
	return &mt
}

// SetupWithManager registers the reconciler, and the one that releases the
// Pods of deleted jobs. Every update of a job triggers a reconcile, the
// operator's own status writes included, so a reconcile that found the cache
// behind its last write resumes as soon as the cache catches up.
func (r *ExtractionJobReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		For(&ejv1.ExtractionJob{}).
		Owns(&corev1.Pod{}).
		Named("extractionjob").
		Complete(r)
	if err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Pod{}).
		Named("attemptpod").
		Complete(&orphanedPodReconciler{Client: r.Client, APIReader: r.APIReader})
}
