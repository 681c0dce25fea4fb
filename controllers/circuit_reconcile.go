package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// circuitView is what a job's reconcile knows of its class's circuit breaker.
type circuitView struct {
	// class is as the cache showed it; its circuit is written over this
	// version only.
	class  *ejv1.ExtractorClass
	policy circuitPolicy
	// pending is the opening the class's tally counted that its status does
	// not show yet; nil without one.
	pending *circuitOpening
	// probe says the job's current attempt probes the half-open circuit.
	probe bool
}

// circuitWrite is a circuit step that the reconcile makes on the class.
type circuitWrite struct {
	class *ejv1.ExtractorClass
	step  circuitStep
}

// readCircuit gives the scope the circuit breaker of the job's class, for the
// outcome of the attempt whose Pod it follows. It counts that outcome in the
// class's tally first, in case the reconcile sees the Pod before the watch
// handler does: a count is once per Pod.
func (r *ExtractionJobReconciler) readCircuit(ctx context.Context, s *reconcileScope, pod *corev1.Pod) error {
	name := s.job.Status.ExtractorClassName
	if name == "" {
		return nil
	}
	class := &ejv1.ExtractorClass{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: name}, class); err != nil {
		return client.IgnoreNotFound(err)
	}
	policy, ok := circuitPolicyOf(class)
	if !ok {
		return nil
	}
	r.queue.circuits.observe(class, pod)
	s.circuit = &circuitView{class: class, policy: policy, pending: r.queue.circuits.pending(class),
		probe: pod != nil && pod.Labels[ejv1.CircuitProbeLabel] == "true"}
	return nil
}

// writeCircuit writes the circuit the attempt's outcome changed on the class,
// before the job's status: the operator acts on a circuit only once it is
// recorded, so a restart never closes an open circuit, nor loses a parked
// job. It writes over the version the reconcile read; conflicted says
// another writer changed the class first, and this reconcile must decide again.
func (r *ExtractionJobReconciler) writeCircuit(ctx context.Context, s *reconcileScope) (conflicted bool, err error) {
	w := s.circuitStep
	if w == nil || w.step.circuit == nil {
		return false, nil
	}
	written, conflicted, err := patchCircuit(ctx, r.client, w.class, w.step.circuit, s.now)
	if written != nil {
		w.class = written
	}
	return conflicted, err
}

// patchCircuit writes the circuit, and its condition, on the class over the
// version read. It returns the class as written; nil, and no error, when the
// class is gone, or when another writer changed it first, which conflicted says.
func patchCircuit(ctx context.Context, c client.Client, read *ejv1.ExtractorClass, circuit *ejv1.CircuitStatus, now time.Time) (
	written *ejv1.ExtractorClass, conflicted bool, err error) {
	class := read.DeepCopy()
	class.Status.Circuit = circuit
	setCircuitCondition(class, now)
	patch := client.MergeFromWithOptions(read, client.MergeFromWithOptimisticLock{})
	if err := c.Status().Patch(ctx, class, patch); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil, apierrors.IsConflict(err), nil
		}
		return nil, false, fmt.Errorf("patching the circuit of ExtractorClass %s: %w", class.Name, err)
	}
	return class, false, nil
}

// circuitOpener records on its class an opening a tally counted, as soon as
// it is counted: the reconcile of the job whose failure reached the
// threshold may wait long behind a busy work queue, and the class's queue
// admits nothing meanwhile. A job's reconcile may record it first; each
// writes over the version it read, so the circuit opens once.
type circuitOpener struct {
	client   client.Client
	clock    clock.PassiveClock
	recorder events.EventRecorder
	tallies  *circuitTallies
}

// setupCircuitOpener runs the circuitOpener, woken by the tallies' openings.
func setupCircuitOpener(mgr ctrl.Manager, clock clock.PassiveClock, tallies *circuitTallies) error {
	o := &circuitOpener{client: mgr.GetClient(), clock: clock, recorder: mgr.GetEventRecorder(eventSource), tallies: tallies}
	return ctrl.NewControllerManagedBy(mgr).
		Named("circuitopening").
		WatchesRawSource(source.Func(func(_ context.Context, wq workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			tallies.wakeOpeningsOn(wq)
			return nil
		})).
		Complete(o)
}

// Reconcile writes the class's pending opening, if the class still has one.
func (o *circuitOpener) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	class := &ejv1.ExtractorClass{}
	if err := o.client.Get(ctx, req.NamespacedName, class); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	policy, ok := circuitPolicyOf(class)
	pending := o.tallies.pending(class)
	if !ok || pending == nil {
		return ctrl.Result{}, nil
	}
	opened := policy.openedBy(class.Status.Circuit, *pending)
	written, conflicted, err := patchCircuit(ctx, o.client, class, opened, o.clock.Now())
	switch {
	case err != nil:
		return ctrl.Result{}, err
	case conflicted:
		// The cache was behind a write of the class: decide again on the new version.
		return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
	case written == nil:
		return ctrl.Result{}, nil
	}
	ctrl.LoggerFrom(ctx).V(1).Info("circuit opened", "since", opened.Since, "reopenAt", opened.ReopenAt, "lastErrorType", opened.LastErrorType)
	announceCircuitTransitions(o.recorder, written, []circuitTransition{circuitTransitionTo(opened)})
	return ctrl.Result{}, nil
}

// announceCircuit announces, once the job's status is written, the circuit
// the attempt's outcome opened or closed.
func (r *ExtractionJobReconciler) announceCircuit(s *reconcileScope) {
	if w := s.circuitStep; w != nil && w.step.circuit != nil {
		announceCircuitTransitions(r.recorder, w.class, []circuitTransition{circuitTransitionTo(w.step.circuit)})
	}
}

// circuitTransitionTo is the announcement of the circuit an attempt's
// outcome, or a tally's opening, opened or closed.
func circuitTransitionTo(c *ejv1.CircuitStatus) circuitTransition {
	if c.State == ejv1.CircuitClosed {
		return circuitTransition{to: ejv1.CircuitClosed, reason: ejv1.ReasonCircuitClosed,
			note: "A probe attempt reached the service; the circuit breaker closed, and the queued jobs start gradually."}
	}
	return circuitTransition{to: ejv1.CircuitOpen, reason: ejv1.ReasonCircuitOpen, note: fmt.Sprintf(
		"The circuit breaker opened (opening %d) after %s: %s. No attempt of the class starts before %s.",
		c.OpenCount, c.LastErrorType, c.LastMessage, c.ReopenAt.UTC().Format(time.RFC3339))}
}

// retryAfterHint is the service's Retry-After hint of a failure, as the
// extractor asked for it, which an open circuit waits at least as long as
// (capped at maxOpenDuration); 0 without one.
func retryAfterHint(f *ejv1.Failure) time.Duration {
	if f == nil || f.RetryAfter == nil {
		return 0
	}
	return max(f.RetryAfter.Duration, 0)
}
