package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// setConditions derives every condition from the phase, so they can never
// disagree with it. Complete, Failed, Reconciling and Stalled are present only
// while True, as batch/v1 Jobs and kstatus expect; Ready is always present.
// waitReason, when set, says why a Pending job has no Pod yet (see
// reconcileScope.waitReason).
func setConditions(job *ejv1.ExtractionJob, now time.Time, waitReason string) {
	for _, c := range []conditionState{
		completeCondition(job),
		failedCondition(job),
		readyCondition(job, waitReason),
		reconcilingCondition(job, waitReason),
		stalledCondition(job),
	} {
		if c.status == "" {
			meta.RemoveStatusCondition(&job.Status.Conditions, c.conditionType)
			continue
		}
		if old := meta.FindStatusCondition(job.Status.Conditions, c.conditionType); old != nil &&
			c.reason == ejv1.ReasonServiceAccountNotFound && old.Reason != c.reason {
			// The wait for a ServiceAccount backs off from when it began,
			// which the condition's status alone, True all along, does not tell.
			old.LastTransitionTime = metav1.NewTime(now)
		}
		meta.SetStatusCondition(&job.Status.Conditions, metav1.Condition{
			Type:               c.conditionType,
			Status:             c.status,
			Reason:             c.reason,
			Message:            job.Status.Message,
			ObservedGeneration: job.Generation,
			LastTransitionTime: metav1.NewTime(now),
		})
	}
}

// conditionState is a condition's wanted status and reason; an empty status
// means the condition is absent.
type conditionState struct {
	conditionType string
	status        metav1.ConditionStatus
	reason        string
}

func completeCondition(job *ejv1.ExtractionJob) conditionState {
	c := conditionState{conditionType: ejv1.ConditionComplete}
	if job.Status.Phase == ejv1.PhaseSucceeded {
		c.status, c.reason = metav1.ConditionTrue, ejv1.ReasonSucceeded
	}
	return c
}

func failedCondition(job *ejv1.ExtractionJob) conditionState {
	c := conditionState{conditionType: ejv1.ConditionFailed}
	if job.Status.Phase == ejv1.PhaseFailed || job.Status.Phase == ejv1.PhaseCancelled {
		c.status, c.reason = metav1.ConditionTrue, failedReason(job)
	}
	return c
}

func readyCondition(job *ejv1.ExtractionJob, waitReason string) conditionState {
	c := conditionState{conditionType: ejv1.ConditionReady, status: metav1.ConditionFalse, reason: phaseReason(job, waitReason)}
	if job.Status.Phase == ejv1.PhaseSucceeded {
		c.status = metav1.ConditionTrue
	}
	return c
}

func reconcilingCondition(job *ejv1.ExtractionJob, waitReason string) conditionState {
	c := conditionState{conditionType: ejv1.ConditionReconciling}
	if !job.Status.Phase.Finished() {
		c.status, c.reason = metav1.ConditionTrue, phaseReason(job, waitReason)
	}
	return c
}

func stalledCondition(job *ejv1.ExtractionJob) conditionState {
	c := conditionState{conditionType: ejv1.ConditionStalled}
	if job.Status.Phase == ejv1.PhaseFailed || job.Status.Phase == ejv1.PhaseCancelled {
		c.status, c.reason = metav1.ConditionTrue, failedReason(job)
	}
	return c
}

// phaseReason names the phase as a condition reason; a Pending job that
// waits for something says what.
func phaseReason(job *ejv1.ExtractionJob, waitReason string) string {
	switch job.Status.Phase {
	case ejv1.PhasePending:
		if waitReason != "" {
			return waitReason
		}
		return ejv1.ReasonPending
	case ejv1.PhaseQueued:
		return ejv1.ReasonQueued
	case ejv1.PhaseRunning:
		return ejv1.ReasonRunning
	case ejv1.PhaseRetrying:
		return ejv1.ReasonRetrying
	case ejv1.PhaseSucceeded:
		return ejv1.ReasonSucceeded
	case ejv1.PhaseFailed, ejv1.PhaseCancelled:
		return failedReason(job)
	default:
		return ejv1.ReasonPending
	}
}

// failedReason says why a job ended without success.
func failedReason(job *ejv1.ExtractionJob) string {
	switch {
	case job.Status.Phase == ejv1.PhaseCancelled:
		return ejv1.ReasonCancelled
	case job.Status.LastFailure != nil && job.Status.LastFailure.ErrorType == ejv1.ErrorTypeExtractorClassNotAllowed:
		return ejv1.ReasonExtractorClassNotAllowed
	case job.Status.LastFailure != nil && job.Status.LastFailure.Class == ejv1.ClassPermanent:
		return ejv1.ReasonPermanentError
	default:
		return ejv1.ReasonMaxRetriesExceeded
	}
}
