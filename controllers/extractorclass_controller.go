package controllers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractorclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=extraction.pybase.io,resources=extractorclasses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// classCountsInterval is how often at most a class's status.running and
// status.queued are counted and written, so that a busy class does not cost
// a status write per job.
const classCountsInterval = 5 * time.Second

// extractorClassReconciler keeps an ExtractorClass's status: its counts,
// observedGeneration, Ready, Stalled and CompetingDefaults.
type extractorClassReconciler struct {
	client   client.Client
	clock    clock.PassiveClock
	recorder events.EventRecorder
	// queue is woken while a circuit ramps up, and holds the circuits' counts.
	queue *admissionQueue

	mu sync.Mutex
	// counted is when each class's counts were last taken.
	counted map[string]time.Time
}

func setupExtractorClassStatus(mgr ctrl.Manager, clock clock.PassiveClock, queue *admissionQueue) error {
	r := &extractorClassReconciler{client: mgr.GetClient(), clock: clock, counted: map[string]time.Time{},
		recorder: mgr.GetEventRecorder(eventSource), queue: queue}
	return ctrl.NewControllerManagedBy(mgr).
		For(&ejv1.ExtractorClass{}).
		Watches(&ejv1.ExtractorClass{}, handler.EnqueueRequestsFromMapFunc(r.defaultClassesIfDefault)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.defaultClasses)).
		Watches(&corev1.Pod{}, r.countsHandler(func(o client.Object) string { return o.GetLabels()[ejv1.ExtractorClassLabel] })).
		Watches(&ejv1.ExtractionJob{}, r.countsHandler(func(o client.Object) string {
			return o.(*ejv1.ExtractionJob).Status.ExtractorClassName
		})).
		Named("extractorclass").
		Complete(r)
}

// Reconcile writes the class's status in one patch: its conditions at once,
// its counts at most every classCountsInterval and only when they changed.
func (r *extractorClassReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, err error) {
	class := &ejv1.ExtractorClass{}
	if err := r.client.Get(ctx, req.NamespacedName, class); err != nil {
		if apierrors.IsNotFound(err) {
			r.mu.Lock()
			delete(r.counted, req.Name)
			r.mu.Unlock()
			r.queue.circuits.forget(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	original := class.DeepCopy()
	var transitions []circuitTransition
	defer func() {
		patchErr := r.patchStatus(ctx, original, class)
		if apierrors.IsConflict(patchErr) {
			// A job's reconcile wrote the circuit since it was read: decide again on the new version.
			result, err, patchErr = ctrl.Result{RequeueAfter: conflictRetryDelay}, nil, nil
		}
		if patchErr == nil {
			announceCircuitTransitions(r.recorder, class, transitions)
		}
		err = errors.Join(err, patchErr)
	}()

	now := r.clock.Now()
	if err := r.setConditions(ctx, class, now); err != nil {
		return ctrl.Result{}, err
	}
	class.Status.ObservedGeneration = class.Generation
	transitions, circuitWake := r.reconcileCircuit(ctx, class, now)
	if wait := r.untilCountsDue(class.Name, now); wait > 0 {
		return ctrl.Result{RequeueAfter: earliestWake(wait, circuitWake)}, nil
	}
	running, queued, err := classCounts(ctx, r.client, class.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.mu.Lock()
	r.counted[class.Name] = now
	r.mu.Unlock()
	class.Status.Running, class.Status.Queued = running, queued
	return ctrl.Result{RequeueAfter: circuitWake}, nil
}

// earliestWake is the sooner of two RequeueAfter delays, where 0 is none.
func earliestWake(a, b time.Duration) time.Duration {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// reconcileCircuit handles the class's circuit breaker: a reset token, an
// open circuit whose reopenAt passed (half-open now), the ramp-up after it
// closed (the queue is woken at intervals), and the CircuitOpen condition.
// It returns the transitions to announce once the status is written, and
// when to look again.
func (r *extractorClassReconciler) reconcileCircuit(ctx context.Context, class *ejv1.ExtractorClass, now time.Time) ([]circuitTransition, time.Duration) {
	policy, ok := circuitPolicyOf(class)
	if !ok {
		class.Status.Circuit = nil
		setCircuitCondition(class, now)
		return nil, 0
	}
	var transitions []circuitTransition
	if reset, changed := resetCircuit(class.Status.Circuit, class.Annotations[ejv1.CircuitResetRequestAnnotation], now); changed {
		if circuitState(class.Status.Circuit, now) != ejv1.CircuitClosed {
			transitions = append(transitions, circuitTransition{to: ejv1.CircuitClosed, reason: ejv1.ReasonCircuitReset,
				note: fmt.Sprintf("The circuit breaker was closed by hand with token %q.", reset.LastHandledResetRequest)})
		}
		class.Status.Circuit = reset
		r.queue.circuits.forget(class.Name)
	}
	if class.Status.Circuit == nil {
		class.Status.Circuit = &ejv1.CircuitStatus{State: ejv1.CircuitClosed}
	}
	var wake time.Duration
	switch c := class.Status.Circuit; circuitState(c, now) {
	case ejv1.CircuitOpen:
		wake = c.ReopenAt.Sub(now)
	case ejv1.CircuitHalfOpen:
		if c.State == ejv1.CircuitOpen {
			class.Status.Circuit = halfOpened(c)
			transitions = append(transitions, circuitTransition{to: ejv1.CircuitHalfOpen, reason: ejv1.ReasonCircuitHalfOpen,
				note: fmt.Sprintf("The circuit breaker lets %d probe attempts try the service.", policy.probes)})
		}
	case ejv1.CircuitClosed:
		if gate := policy.gate(c, now, math.MaxInt32); gate.mode == gateRampUp {
			r.queue.wakeClass(ctx, class.Name)
			wake = gate.wakeAfter
		}
	}
	setCircuitCondition(class, now)
	return transitions, wake
}

// setCircuitCondition sets CircuitOpen while the class's circuit is open or
// half-open, and removes it otherwise.
func setCircuitCondition(class *ejv1.ExtractorClass, now time.Time) {
	c := class.Status.Circuit
	switch circuitState(c, now) {
	case ejv1.CircuitClosed:
		meta.RemoveStatusCondition(&class.Status.Conditions, ejv1.ConditionCircuitOpen)
	case ejv1.CircuitHalfOpen:
		setClassCondition(class, metav1.Condition{Type: ejv1.ConditionCircuitOpen, Status: metav1.ConditionTrue,
			Reason: ejv1.ReasonCircuitHalfOpen, Message: fmt.Sprintf("The circuit breaker is half-open after %s: probe attempts try the service.",
				c.LastErrorType)}, now)
	default:
		setClassCondition(class, metav1.Condition{Type: ejv1.ConditionCircuitOpen, Status: metav1.ConditionTrue,
			Reason: ejv1.ReasonCircuitOpen, Message: fmt.Sprintf("The circuit breaker is open after %s; no attempt of the class starts before %s.",
				c.LastErrorType, c.ReopenAt.UTC().Format(time.RFC3339))}, now)
	}
}

// circuitTransition is a change of a class's circuit, announced once the
// status that records it is written.
type circuitTransition struct {
	to     ejv1.CircuitState
	reason string
	note   string
}

// announceCircuitTransitions records an event on the class and counts each transition.
func announceCircuitTransitions(recorder events.EventRecorder, class *ejv1.ExtractorClass, transitions []circuitTransition) {
	for _, t := range transitions {
		eventType := corev1.EventTypeNormal
		if t.to == ejv1.CircuitOpen {
			eventType = corev1.EventTypeWarning
		}
		recorder.Eventf(class, nil, eventType, t.reason, t.reason, "%s", t.note)
		circuitTransitions.With(prometheus.Labels{"extractor_class": class.Name, "state": string(t.to)}).Inc()
	}
}

// classCounts are the class's attempts that exist and its jobs in phase
// Queued, as the cache's indexes show them.
func classCounts(ctx context.Context, reader client.Reader, class string) (running, queued int32, err error) {
	pods, err := activePods(ctx, reader, class)
	if err != nil {
		return 0, 0, err
	}
	jobs := &ejv1.ExtractionJobList{}
	if err := reader.List(ctx, jobs, client.MatchingFields{queuedClassField: class}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, 0, fmt.Errorf("listing the queued jobs of ExtractorClass %s: %w", class, err)
	}
	return int32(len(pods)), int32(len(jobs.Items)), nil
}

// untilCountsDue is how long the class's counts must wait before they are
// taken again; zero when they are due.
func (r *extractorClassReconciler) untilCountsDue(class string, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.counted[class]
	if !ok {
		return 0
	}
	return max(0, last.Add(classCountsInterval).Sub(now))
}

// setConditions sets Ready (with Stalled when the class cannot be used) and
// CompetingDefaults, which is present only while True.
func (r *extractorClassReconciler) setConditions(ctx context.Context, class *ejv1.ExtractorClass, now time.Time) error {
	ready := metav1.Condition{Type: ejv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ejv1.ReasonAccepted,
		Message: "The class is ready for the jobs that use it."}
	if class.Spec.NamespaceSelector != nil {
		if _, err := metav1.LabelSelectorAsSelector(class.Spec.NamespaceSelector); err != nil {
			ready.Status, ready.Reason = metav1.ConditionFalse, ejv1.ReasonInvalidNamespaceSelector
			ready.Message = fmt.Sprintf("spec.namespaceSelector is invalid, so no namespace's jobs may use the class: %v.", err)
		}
	}
	setClassCondition(class, ready, now)
	if ready.Status == metav1.ConditionFalse {
		stalled := ready
		stalled.Type, stalled.Status = ejv1.ConditionStalled, metav1.ConditionTrue
		setClassCondition(class, stalled, now)
	} else {
		meta.RemoveStatusCondition(&class.Status.Conditions, ejv1.ConditionStalled)
	}

	competitors, err := r.competitors(ctx, class)
	if err != nil {
		return err
	}
	if len(competitors) == 0 {
		meta.RemoveStatusCondition(&class.Status.Conditions, ejv1.ConditionCompetingDefaults)
		return nil
	}
	setClassCondition(class, metav1.Condition{
		Type: ejv1.ConditionCompetingDefaults, Status: metav1.ConditionTrue, Reason: ejv1.ReasonCompetingDefaults,
		Message: fmt.Sprintf("The default classes %s serve formats of this class in namespaces that both admit; "+
			"a job there that names no class gets the oldest of them, then by name.", strings.Join(competitors, ", ")),
	}, now)
	return nil
}

func setClassCondition(class *ejv1.ExtractorClass, c metav1.Condition, now time.Time) {
	c.ObservedGeneration = class.Generation
	c.LastTransitionTime = metav1.NewTime(now)
	meta.SetStatusCondition(&class.Status.Conditions, c)
}

// competitors are the default classes that compete with this one for jobs.
func (r *extractorClassReconciler) competitors(ctx context.Context, class *ejv1.ExtractorClass) ([]string, error) {
	if !class.Spec.Default {
		return nil, nil
	}
	classes := &ejv1.ExtractorClassList{}
	if err := r.client.List(ctx, classes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing extractorclasses: %w", err)
	}
	namespaces := &corev1.NamespaceList{}
	if err := r.client.List(ctx, namespaces, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing namespaces: %w", err)
	}
	return competingDefaults(classes.Items, namespaces.Items)[class.Name], nil
}

// patchStatus writes the status once per reconcile, when it changed; over
// the version it read when the circuit changed, since the job reconciles
// write the circuit too.
func (r *extractorClassReconciler) patchStatus(ctx context.Context, original, class *ejv1.ExtractorClass) error {
	if equality.Semantic.DeepEqual(original.Status, class.Status) {
		return nil
	}
	patch := client.MergeFrom(original)
	if !equality.Semantic.DeepEqual(original.Status.Circuit, class.Status.Circuit) {
		patch = client.MergeFromWithOptions(original, client.MergeFromWithOptimisticLock{})
	}
	if err := r.client.Status().Patch(ctx, class, patch); err != nil {
		return fmt.Errorf("patching status of ExtractorClass %s: %w", class.Name, err)
	}
	return nil
}

// defaultClassesIfDefault wakes every default class when a default class
// changes: whether they compete depends on each other.
func (r *extractorClassReconciler) defaultClassesIfDefault(ctx context.Context, o client.Object) []reconcile.Request {
	if !o.(*ejv1.ExtractorClass).Spec.Default {
		return nil
	}
	return r.defaultClasses(ctx, o)
}

// defaultClasses lists the default classes, whose competition a namespace's
// labels or another default class can change.
func (r *extractorClassReconciler) defaultClasses(ctx context.Context, _ client.Object) []reconcile.Request {
	classes := &ejv1.ExtractorClassList{}
	if err := r.client.List(ctx, classes, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "cannot list extractorclasses to update their CompetingDefaults")
		return nil
	}
	var requests []reconcile.Request
	for _, c := range classes.Items {
		if c.Spec.Default {
			requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.Name}})
		}
	}
	return requests
}

// countsHandler reconciles the class an object counts for, not before its
// counts are due: the events of a busy class coalesce into one reconcile
// per classCountsInterval.
func (r *extractorClassReconciler) countsHandler(classOf func(client.Object) string) handler.EventHandler {
	enqueue := func(wq workqueue.TypedRateLimitingInterface[reconcile.Request], objects ...client.Object) {
		now := r.clock.Now()
		for _, o := range objects {
			if class := classOf(o); class != "" {
				wq.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Name: class}}, r.untilCountsDue(class, now))
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(wq, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(wq, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(wq, e.Object)
		},
	}
}
