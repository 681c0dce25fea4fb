// Package controllers runs ExtractionJobs: one Pod per attempt, failures
// classified, retries after backoff.
package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractionjobs,verbs=get;list;watch;delete
// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractionjobs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractionjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractorclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// ExtractionJobReconciler runs each ExtractionJob's attempts and retries.
// Build it with NewExtractionJobReconciler or SetupExtractionJob.
type ExtractionJobReconciler struct {
	client client.Client
	// apiReader reads around the cache, to tell a Pod that is gone from one
	// the cache has not seen yet.
	apiReader            client.Reader
	recorder             events.EventRecorder
	clock                clock.PassiveClock
	jitter               func() float64
	imagePullGracePeriod time.Duration
	expectations         ownWriteExpectations
	// queue admits the attempts of classes with maxRunning.
	queue *admissionQueue
}

// conflictRetryDelay is how soon a reconcile whose status write lost a race,
// or whose cache was behind, runs again; the cache has usually caught up by then.
const conflictRetryDelay = 100 * time.Millisecond

// dueRetryPriority puts a job whose retry falls due ahead of the event-driven
// reconciles in the work queue (priority 0, or below for the initial list):
// behind a backlog of Pod updates, a due retry would otherwise start as late
// as the backlog is long.
const dueRetryPriority = 10

// waitForRetry wakes the job when its retry falls due, with the queue priority of a due retry.
func waitForRetry(wait time.Duration) ctrl.Result {
	return ctrl.Result{RequeueAfter: wait, Priority: ptr.To(dueRetryPriority)}
}

// Reconcile moves one job one step along: it starts an attempt, records what
// the attempt's Pod did, schedules a retry, or finishes the job. The
// decisions are the reconcileScope's (transitions.go); here are the reads,
// the Pod creates and deletes, and the status write.
func (r *ExtractionJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	job := &ejv1.ExtractionJob{}
	if err := r.client.Get(ctx, req.NamespacedName, job); err != nil {
		if apierrors.IsNotFound(err) {
			r.expectations.forgetJob(req.NamespacedName)
			r.queue.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !job.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the job's Pods with it.
		r.expectations.forgetJob(req.NamespacedName)
		r.queue.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if r.expectations.jobCacheBehind(job) {
		// The watch event of that write will come, but this reconcile may
		// have taken the job's queued wake-up with it: a later event would
		// wake the job at ordinary priority, behind the whole backlog. Try
		// again shortly instead, at the priority this request had.
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}

	s := &reconcileScope{job: job, now: r.clock.Now(), jitter: r.jitter, imagePullGracePeriod: r.imagePullGracePeriod}
	original := job.DeepCopy()
	defer func() { result, err = r.writeStatusAndAnnounce(ctx, original, s, result, err) }()

	s.handleRetryRequest()
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
	// Cancelled or finished: the job waits in no class's queue.
	r.queue.forget(req.NamespacedName)
	return r.reconcileTTL(ctx, s)
}

// writeStatusAndAnnounce writes the status, then announces the transitions
// it records and releases the Pods whose outcomes it now holds. A write that
// succeeded is announced even when the reconcile failed afterwards: the next
// reconcile starts from the written status and will not make, nor announce,
// those transitions again. With nothing to write, the reconcile's
// announcements are made only if it succeeded, so a failing reconcile that
// runs again does not repeat them.
func (r *ExtractionJobReconciler) writeStatusAndAnnounce(ctx context.Context, original *ejv1.ExtractionJob, s *reconcileScope,
	result ctrl.Result, err error) (ctrl.Result, error) {
	if conflicted, circuitErr := r.writeCircuit(ctx, s); conflicted || circuitErr != nil {
		// The job acts on the circuit only once the class records it.
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, errors.Join(err, circuitErr)
	}
	if s.createdPod && err == nil {
		// The status waits for the Pod's first event: that reconcile finds
		// the Pod in the cache, adopts it, and makes and announces every
		// transition of this one again from the same status, together with
		// what the Pod did meanwhile (one write, not two, for a Pod that
		// finished first). Pod names are fixed by the attempt, so a crash
		// before then loses nothing. Only the samples of the start itself
		// are taken here.
		r.announce(s.job, s.queued.ofAttemptStart())
		return result, nil
	}
	wrote, patchErr := r.patchStatus(ctx, original, s, err == nil)
	if apierrors.IsConflict(patchErr) {
		// Someone else wrote the job since it was read: decide again on the new version.
		ctrl.LoggerFrom(ctx).V(1).Info("status write conflicted; reconciling again")
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	}
	if patchErr != nil || (!wrote && err != nil) {
		return result, errors.Join(err, patchErr)
	}
	r.announce(s.job, s.queued)
	r.announceCircuit(s)
	err = errors.Join(err, r.releaseRecordedPods(ctx, s))
	return wakeUpFromNow(result, r.clock.Since(s.now)), err
}

// announce records the queued events and metric samples.
func (r *ExtractionJobReconciler) announce(job *ejv1.ExtractionJob, queued announcements) {
	for _, e := range queued.Events {
		var related runtime.Object
		if e.Pod != nil {
			related = e.Pod
		}
		r.recorder.Eventf(job, related, e.Type, e.Reason, e.Reason, "%s", e.Note)
	}
	for _, o := range queued.Metrics {
		o.record()
	}
}

// patchStatus writes the status once per reconcile, only when it changed,
// and only over the version the reconcile read, so a decision taken on a stale
// cache never lands. It reports whether it wrote.
func (r *ExtractionJobReconciler) patchStatus(ctx context.Context, original *ejv1.ExtractionJob, s *reconcileScope, handledSpec bool) (bool, error) {
	job := s.job
	if s.deleted {
		return false, nil
	}
	s.summarizeStatus(handledSpec)
	if equality.Semantic.DeepEqual(original.Status, job.Status) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
	if err := r.client.Status().Patch(ctx, job, patch); err != nil {
		return false, fmt.Errorf("patching status of ExtractionJob %s/%s: %w", job.Namespace, job.Name, err)
	}
	r.expectations.expectJobWrite(job, original.ResourceVersion)
	return true, nil
}

// reconcileCancel ends a job whose spec asks for cancellation, deleting a
// running attempt's Pod first.
func (r *ExtractionJobReconciler) reconcileCancel(ctx context.Context, s *reconcileScope) error {
	job := s.job
	if job.Status.Phase.Finished() {
		s.ignoreCancel()
		return nil
	}
	if _, err := r.adoptNextAttempt(ctx, s, true); err != nil {
		return err
	}
	var pod *corev1.Pod
	if attemptInFlight(job) {
		var err error
		if pod, err = r.currentPod(ctx, job); err != nil {
			return err
		}
		if cancelStopsPod(pod) {
			if err := r.deletePod(ctx, pod); err != nil {
				return err
			}
		}
	}
	s.cancel(pod)
	return nil
}

// reconcileTTL deletes a finished job, and with it its Pods, once
// ttlSecondsAfterFinished has passed since it finished.
func (r *ExtractionJobReconciler) reconcileTTL(ctx context.Context, s *reconcileScope) (ctrl.Result, error) {
	job := s.job
	if job.Spec.TTLSecondsAfterFinished == nil || job.Status.CompletionTime == nil {
		return ctrl.Result{}, nil
	}
	expiry := job.Status.CompletionTime.Add(time.Duration(*job.Spec.TTLSecondsAfterFinished) * time.Second)
	if expiry.After(s.now) {
		return ctrl.Result{RequeueAfter: expiry.Sub(s.now)}, nil
	}
	err := r.client.Delete(ctx, job, client.Preconditions{UID: &job.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("deleting ExtractionJob %s/%s after its TTL: %w", job.Namespace, job.Name, err)
	}
	s.deleted = true
	ctrl.LoggerFrom(ctx).V(1).Info("deleted finished job after its TTL", "completionTime", job.Status.CompletionTime, "ttlSecondsAfterFinished", *job.Spec.TTLSecondsAfterFinished)
	return ctrl.Result{}, nil
}

// reconcileAttempt starts the next attempt when one is due, and otherwise
// follows the current attempt's Pod.
func (r *ExtractionJobReconciler) reconcileAttempt(ctx context.Context, s *reconcileScope) (ctrl.Result, error) {
	job := s.job
	if job.Status.Phase == "" {
		s.acceptJob()
	}
	if !attemptInFlight(job) {
		// The reconcile that created the next attempt's Pod left the status
		// to the Pod's first event (see writeStatusAndAnnounce).
		adopted, err := r.adoptNextAttempt(ctx, s, false)
		if err != nil {
			return ctrl.Result{}, err
		}
		if adopted {
			return r.followAttempt(ctx, s)
		}
	}
	switch {
	case job.Status.Phase == ejv1.PhaseRetrying:
		if wait := s.retryWait(); wait > 0 {
			return waitForRetry(wait), nil
		}
	case job.Status.Phase == ejv1.PhaseQueued:
	case job.Status.PodName != "":
		return r.followAttempt(ctx, s)
	}
	return r.startAdmittedAttempt(ctx, s)
}

// startAdmittedAttempt starts the next attempt of a job that is ready for
// one, once its class is there and, for a class with maxRunning, once the
// admission queue gives it a slot; until then the job waits without a Pod.
func (r *ExtractionJobReconciler) startAdmittedAttempt(ctx context.Context, s *reconcileScope) (ctrl.Result, error) {
	job := s.job
	class, err := r.jobClass(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	if class == nil {
		// A Queued job whose class went away waits in no queue any more.
		r.queue.forget(client.ObjectKeyFromObject(job))
		return ctrl.Result{}, nil
	}
	if wait := s.serviceAccountWait(); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	verdict, err := r.queue.admit(ctx, job, class)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("admitting ExtractionJob %s/%s to ExtractorClass %s: %w", job.Namespace, job.Name, class.Name, err)
	}
	if !verdict.Admitted {
		s.queueJob(class, verdict)
		return ctrl.Result{}, nil
	}
	s.admitted(class, verdict)
	adopted, refusedServiceAccount, err := r.startAttempt(ctx, s, class)
	if err != nil || refusedServiceAccount {
		r.queue.podCreateFailed(client.ObjectKeyFromObject(job))
	}
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case refusedServiceAccount:
		return s.serviceAccountMissing(cmp.Or(class.Spec.ServiceAccountName, defaultServiceAccount)), nil
	case !adopted:
		return ctrl.Result{}, nil
	}
	// The adopted Pod may have run, or even finished, while nobody watched.
	return r.followAttempt(ctx, s)
}

// jobClass reads the classes and the job's Namespace and chooses the job's
// class; nil when the job cannot run yet, or at all, and the scope says why.
func (r *ExtractionJobReconciler) jobClass(ctx context.Context, s *reconcileScope) (*ejv1.ExtractorClass, error) {
	job := s.job
	classes := &ejv1.ExtractorClassList{}
	if err := r.client.List(ctx, classes); err != nil {
		return nil, fmt.Errorf("listing ExtractorClasses: %w", err)
	}
	namespace := &corev1.Namespace{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: job.Namespace}, namespace); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading namespace %s: %w", job.Namespace, err)
		}
		namespace = nil
	}
	choice := chooseClass(job, classes.Items, namespace)
	switch choice.Reason {
	case "":
		s.classChosen(choice.Class)
		return choice.Class, nil
	case ejv1.ReasonExtractorClassNotAllowed:
		s.classNotAllowed(choice)
	default:
		s.waitForClass(choice)
	}
	return nil, nil
}

// startAttempt creates the next attempt's Pod. Its name is fixed by the job
// and the attempt number, so after a crash between the create and the status
// write the operator finds the same Pod instead of starting a second one, and
// adopts it. refusedServiceAccount says the API server refused the Pod
// because the class's ServiceAccount is missing from the job's namespace.
func (r *ExtractionJobReconciler) startAttempt(ctx context.Context, s *reconcileScope, class *ejv1.ExtractorClass) (adopted, refusedServiceAccount bool, err error) {
	job := s.job
	attempt := job.Status.Attempt + 1
	pod, err := attemptPod(job, attempt, class)
	if err != nil {
		return false, false, err
	}
	if s.probe {
		pod.Labels[ejv1.CircuitProbeLabel] = "true"
	}
	switch err := r.client.Create(ctx, pod); {
	case apierrors.IsAlreadyExists(err):
		// An earlier reconcile created the Pod and lost its status write.
		existing, getErr := r.getPodUncached(ctx, job.Namespace, pod.Name)
		if getErr != nil {
			return false, false, getErr
		}
		if existing == nil || !metav1.IsControlledBy(existing, job) {
			return false, false, fmt.Errorf("pod %s/%s exists but does not belong to this job", pod.Namespace, pod.Name)
		}
		s.attemptAdopted(existing, attempt)
		return true, false, nil
	case apierrors.IsInvalid(err):
		s.podRefused(attempt, err)
		return false, false, nil
	case serviceAccountMissing(err, pod.Spec.ServiceAccountName):
		ctrl.LoggerFrom(ctx).V(1).Info("pod create refused: service account missing", "serviceAccount", pod.Spec.ServiceAccountName)
		return false, true, nil
	case err != nil:
		// Emitted now, not queued: it changes no status, and says so on every
		// failed try.
		r.recorder.Eventf(job, nil, corev1.EventTypeWarning, ejv1.ReasonPodCreateFailed, ejv1.ReasonPodCreateFailed,
			"Creating the Pod of attempt %d failed: %s", attempt, cleanText(err.Error()))
		return false, false, fmt.Errorf("creating pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	s.attemptCreated(pod, attempt)
	s.createdPod = true
	return false, false, nil
}

// defaultServiceAccount runs the Pods of classes without a serviceAccountName.
const defaultServiceAccount = "default"

// serviceAccountMissing reports whether a Pod create failed because the
// API server's ServiceAccount admission found no ServiceAccount of that name
// (its error: error looking up service account NS/NAME: serviceaccount
// "NAME" not found). The operator may not read ServiceAccounts, so the
// refusal is how it learns.
func serviceAccountMissing(err error, name string) bool {
	name = cmp.Or(name, defaultServiceAccount)
	return apierrors.IsForbidden(err) && strings.Contains(err.Error(), fmt.Sprintf("serviceaccount %q not found", name))
}

// adoptNextAttempt finds the Pod of the next attempt, which exists when an
// earlier reconcile created it and left the status to the Pod's first event,
// or crashed before writing it, and makes it the current attempt, so that
// its outcome is recorded, a cancel stops it, and nothing runs unseen. It
// looks in the cache; aroundCache asks the API server too when the cache
// shows no such Pod, as a cancel must, since it may have been created
// moments ago.
func (r *ExtractionJobReconciler) adoptNextAttempt(ctx context.Context, s *reconcileScope, aroundCache bool) (bool, error) {
	job := s.job
	attempt := job.Status.Attempt + 1
	name := podName(job, attempt)
	pod := &corev1.Pod{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: name}, pod)
	switch {
	case apierrors.IsNotFound(err) && !aroundCache:
		return false, nil
	case apierrors.IsNotFound(err):
		if pod, err = r.getPodUncached(ctx, job.Namespace, name); err != nil || pod == nil {
			return false, err
		}
	case err != nil:
		return false, fmt.Errorf("reading pod %s/%s: %w", job.Namespace, name, err)
	}
	if !metav1.IsControlledBy(pod, job) {
		return false, nil
	}
	s.attemptAdopted(pod, attempt)
	return true, nil
}

// releaseRecordedPods releases the Pods of the job's recorded attempts, now
// that the status holding their outcomes is written. Pods are looked up by
// name in the cache: no list, and no API call unless a release is due.
func (r *ExtractionJobReconciler) releaseRecordedPods(ctx context.Context, s *reconcileScope) error {
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
		err := r.client.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: record.PodName}, pod)
		if apierrors.IsNotFound(err) {
			r.expectations.podGone(job, record.PodName)
			continue
		}
		if err == nil && (!metav1.IsControlledBy(pod, job) || r.expectations.podCacheBehind(job, pod)) {
			continue
		}
		if err == nil {
			replaced := pod.ResourceVersion
			err = releasePod(ctx, r.client, pod)
			if err == nil && pod.ResourceVersion != replaced {
				r.expectations.expectPodWrite(job, pod, replaced)
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

// followAttempt records what the current attempt's Pod did, deleting first a
// Pod whose container cannot start.
func (r *ExtractionJobReconciler) followAttempt(ctx context.Context, s *reconcileScope) (ctrl.Result, error) {
	pod, err := r.currentPod(ctx, s.job)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := r.readSchedulingTimeout(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.readCircuit(ctx, s, pod); err != nil {
		return ctrl.Result{}, err
	}
	if stuck, _ := s.stuckPod(pod); stuck {
		if err := r.deletePod(ctx, pod); err != nil {
			return ctrl.Result{}, err
		}
	}
	return s.followPod(pod), nil
}

// readSchedulingTimeout takes the schedulingTimeout of the job's class as it
// is now, so that an admin's edit applies to a Pod already waiting. A class
// that is gone lets the Pod wait, as a class without the field does.
func (r *ExtractionJobReconciler) readSchedulingTimeout(ctx context.Context, s *reconcileScope) error {
	name := s.job.Status.ExtractorClassName
	if name == "" {
		return nil
	}
	class := &ejv1.ExtractorClass{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, class); err != nil {
		return client.IgnoreNotFound(err)
	}
	if timeout := class.Spec.SchedulingTimeout; timeout != nil {
		s.schedulingTimeout = timeout.Duration
	}
	return nil
}

// currentPod is the current attempt's Pod, or nil when it no longer exists.
func (r *ExtractionJobReconciler) currentPod(ctx context.Context, job *ejv1.ExtractionJob) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: job.Namespace, Name: job.Status.PodName}, pod)
	if apierrors.IsNotFound(err) {
		// The cache may not have seen a Pod created moments ago; only the API
		// server can say it is gone.
		return r.getPodUncached(ctx, job.Namespace, job.Status.PodName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", job.Namespace, job.Status.PodName, err)
	}
	return pod, nil
}

// getPodUncached reads a Pod from the API server, around the cache; nil when
// it does not exist.
func (r *ExtractionJobReconciler) getPodUncached(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	err := r.apiReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod)
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
	err := r.client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// jobsAwaiting lists the jobs that wait for the class to appear, or to serve
// their format, from the cache's index.
func (r *ExtractionJobReconciler) jobsAwaiting(ctx context.Context, obj client.Object) []reconcile.Request {
	var requests []reconcile.Request
	class := obj.(*ejv1.ExtractorClass)
	for _, key := range classAwaitedAs(class) {
		jobs := &ejv1.ExtractionJobList{}
		if err := r.client.List(ctx, jobs, client.MatchingFields{waitingForClassField: key}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing the jobs that wait for a class", "extractorClass", obj.GetName())
			continue
		}
		r.queue.expectWaiting(class, jobs.Items)
		for _, job := range jobs.Items {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&job)})
		}
	}
	return requests
}

// retriesFirstOnStart puts the Retrying jobs of the initial list ahead of
// the rest of it in the work queue, at the priority of a due retry. The
// wake-ups of their retries went with the operator that scheduled them; at
// the initial list's low priority, a retry that fell due while no operator
// ran, or falls due while the new one works through the list, would start
// only after every job listed before it.
var retriesFirstOnStart = handler.Funcs{
	CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		job, ok := e.Object.(*ejv1.ExtractionJob)
		pq, prioritised := q.(priorityqueue.PriorityQueue[reconcile.Request])
		if !ok || !prioritised || !e.IsInInitialList || job.Status.Phase != ejv1.PhaseRetrying {
			return
		}
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(dueRetryPriority)}, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(job)})
	},
}

// SetupWithManager registers the reconciler, and the one that releases the
// Pods of deleted jobs. Every update of a job triggers a reconcile, the
// operator's own status writes included, so a reconcile that found the cache
// behind its last write resumes as soon as the cache catches up.
func (r *ExtractionJobReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &ejv1.ExtractionJob{}, waitingForClassField,
		func(obj client.Object) []string { return classesAwaited(obj.(*ejv1.ExtractionJob)) })
	if err != nil {
		return fmt.Errorf("indexing ExtractionJobs by the class they wait for: %w", err)
	}
	jobs := ctrl.NewControllerManagedBy(mgr).
		For(&ejv1.ExtractionJob{}).
		Watches(&ejv1.ExtractionJob{}, retriesFirstOnStart).
		Owns(&corev1.Pod{}).
		Watches(&ejv1.ExtractorClass{}, handler.EnqueueRequestsFromMapFunc(r.jobsAwaiting)).
		Named("extractionjob")
	if err := r.queue.setupWithManager(mgr, jobs); err != nil {
		return err
	}
	if err := jobs.Complete(r); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Pod{}).
		Named("attemptpod").
		Complete(&orphanedPodReconciler{Client: r.client, APIReader: r.apiReader})
}
