package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// circuitView is what a job's reconcile knows of its class's circuit breaker.
type circuitView struct {
	// class is as the cache showed it; its circuit is written over this
	// version only.
	class  *ejv1.ExtractorClass
	policy circuitPolicy
	count  circuitCount
	// probe says the job's current attempt probes the half-open circuit.
	probe bool
}

// circuitWrite is a circuit step that the reconcile makes on the class.
type circuitWrite struct {
	class   *ejv1.ExtractorClass
	step    circuitStep
	outcome circuitOutcome
}

// readCircuit gives the scope the circuit breaker of the job's class, for the
// outcome of the attempt whose Pod it follows.
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
	s.circuit = &circuitView{class: class, policy: policy, count: r.queue.circuits.get(name),
		probe: pod != nil && pod.Labels[ejv1.CircuitProbeLabel] == "true"}
	return nil
}

// writeCircuit writes the circuit the attempt's outcome changed on the class,
// before the job's status: the operator acts on a circuit only once it is
// recorded, so a restart never closes an open circuit, nor loses a parked
// job. It writes over the version the reconcile read; conflicted says
// another reconcile changed the class first, and this one must decide again.
func (r *ExtractionJobReconciler) writeCircuit(ctx context.Context, s *reconcileScope) (conflicted bool, err error) {
	w := s.circuitStep
	if w == nil || w.step.circuit == nil {
		return false, nil
	}
	class := w.class.DeepCopy()
	class.Status.Circuit = w.step.circuit
	setCircuitCondition(class, s.now)
	patch := client.MergeFromWithOptions(w.class, client.MergeFromWithOptimisticLock{})
	if err := r.client.Status().Patch(ctx, class, patch); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return apierrors.IsConflict(err), nil
		}
		return false, fmt.Errorf("patching the circuit of ExtractorClass %s: %w", class.Name, err)
	}
	w.class = class
	return false, nil
}

// announceCircuit records, once the job's status is written, what the
// attempt's outcome did to the class's count and circuit.
func (r *ExtractionJobReconciler) announceCircuit(s *reconcileScope) {
	w := s.circuitStep
	if w == nil {
		return
	}
	r.queue.circuits.record(w.class.Name, w.step.count, w.outcome)
	if c := w.step.circuit; c != nil {
		announceCircuitTransitions(r.recorder, w.class, []circuitTransition{circuitTransitionTo(c, w.outcome)})
	}
}

// circuitTransitionTo is the announcement of the circuit a job's attempt opened or closed.
func circuitTransitionTo(c *ejv1.CircuitStatus, outcome circuitOutcome) circuitTransition {
	if c.State == ejv1.CircuitClosed {
		return circuitTransition{to: ejv1.CircuitClosed, reason: ejv1.ReasonCircuitClosed,
			note: "A probe attempt reached the service; the circuit breaker closed, and the queued jobs start gradually."}
	}
	return circuitTransition{to: ejv1.CircuitOpen, reason: ejv1.ReasonCircuitOpen, note: fmt.Sprintf(
		"The circuit breaker opened (opening %d) after %s: %s. No attempt of the class starts before %s.",
		c.OpenCount, outcome.errorType, outcome.message, c.ReopenAt.UTC().Format(time.RFC3339))}
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
