package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// This file reads what holds back a Pod that has not started: a scheduling
// gate, the scheduler finding no node, or the wait since it was scheduled.
// The reconcileScope turns it into the job's message and, past a class's
// limits, into a failed attempt.

// schedulingGateNames are the gates that keep the Pod from the scheduler,
// such as Kueue's kueue.x-k8s.io/admission while its workload waits for quota.
func schedulingGateNames(pod *corev1.Pod) []string {
	names := make([]string, 0, len(pod.Spec.SchedulingGates))
	for _, gate := range pod.Spec.SchedulingGates {
		names = append(names, gate.Name)
	}
	return names
}

// podScheduledCondition is the Pod's PodScheduled condition, nil when it has none yet.
func podScheduledCondition(pod *corev1.Pod) *corev1.PodCondition {
	i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodScheduled })
	if i < 0 {
		return nil
	}
	return &pod.Status.Conditions[i]
}

// scheduledAt is when the Pod was bound to a node: a gated or unschedulable
// Pod pulls no image, so the image-pull grace period counts from here. A Pod
// without the condition, which only a Pod written by hand lacks once it
// waits for an image, counts from its creation.
func scheduledAt(pod *corev1.Pod) time.Time {
	if c := podScheduledCondition(pod); c != nil && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
		return c.LastTransitionTime.Time
	}
	return pod.CreationTimestamp.Time
}

// unschedulable reports whether the scheduler found no node for the Pod,
// since when, and what it said. The time is the condition's, which the
// scheduler keeps while the condition stays False: for a Pod that a gate
// held first, it is when the gate's wait began, so the schedulingTimeout of
// a Pod released late by Kueue has already run when the scheduler first
// finds no node for it. Nothing in the Pod records when a gate went.
func unschedulable(pod *corev1.Pod) (since time.Time, message string, ok bool) {
	c := podScheduledCondition(pod)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
		return time.Time{}, "", false
	}
	since = c.LastTransitionTime.Time
	if since.IsZero() {
		since = pod.CreationTimestamp.Time
	}
	return since, c.Message, true
}

// waitingMessage is the job's message while its attempt's Pod has not
// started. It says what holds the Pod back in words that change only when
// the cause does, never with the time, so that a long wait costs no status
// writes.
func waitingMessage(attempt int32, pod *corev1.Pod) string {
	if gates := schedulingGateNames(pod); len(gates) > 0 {
		return fmt.Sprintf("Attempt %d is waiting: %s: %s.", attempt, ejv1.ReasonSchedulingGated, strings.Join(gates, ", "))
	}
	if _, message, ok := unschedulable(pod); ok && strings.TrimSpace(message) != "" {
		return fmt.Sprintf("Attempt %d is waiting: %s", attempt, asSentence(message))
	}
	return fmt.Sprintf("Attempt %d is waiting for Pod %s to start.", attempt, pod.Name)
}

// unschedulableFailure is the failure of an attempt whose Pod the scheduler
// could not place within the class's schedulingTimeout.
func unschedulableFailure(message string, timeout time.Duration) attemptFailure {
	failure := attemptFailure{
		reasons: []string{corev1.PodReasonUnschedulable},
		message: fmt.Sprintf("The Pod stayed unschedulable for longer than schedulingTimeout (%s).", timeout),
	}
	if message = asSentence(message); message != "" {
		failure.message = strings.TrimSuffix(failure.message, ".") + ": " + message
	}
	return failure
}

// asSentence cleans a message from the cluster and ends it with a full stop.
func asSentence(message string) string {
	message = cleanText(strings.TrimSpace(message))
	if message != "" && !strings.HasSuffix(message, ".") {
		message += "."
	}
	return message
}
