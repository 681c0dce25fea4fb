package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pybase/extraction-operator/api/podcontract"
	ejv1 "github.com/pybase/extraction-operator/api/v1alpha1"
)

// disruptionReasons map what the cluster says about a Pod it took away to an
// error type, in order of precedence. They are failures of the cluster, not
// of the extraction.
var disruptionReasons = []struct{ reason, errorType string }{
	{evictedReason, ejv1.ErrorTypePodEvicted},
	{"Preempting", ejv1.ErrorTypePodPreempted},
	{"PreemptionByScheduler", ejv1.ErrorTypePodPreempted},
	{"NodeLost", ejv1.ErrorTypeNodeLost},
	{"DeletionByPodGC", ejv1.ErrorTypeNodeLost},
	{"Shutdown", ejv1.ErrorTypeNodeLost},
	{"Terminated", ejv1.ErrorTypeNodeLost},
	{"TerminationByKubelet", ejv1.ErrorTypePodEvicted},
	{"EvictionByEvictionAPI", ejv1.ErrorTypePodEvicted},
	{string(corev1.DisruptionTarget), ejv1.ErrorTypePodDisrupted},
	// Kueue marks every Pod it evicts with TerminationTarget, whatever the
	// cause: a preemption, but also its PodsReady timeout, a stopped or
	// deleted ClusterQueue, a deactivated workload or a failed admission
	// check. Most of these are no preemption, so the error type is the
	// general PodDisrupted; the condition's reason says which it was.
	{podConditionTerminationTarget, ejv1.ErrorTypePodDisrupted},
}

// podConditionTerminationTarget is the Pod condition Kueue sets on the Pods
// of a workload it evicts, before it deletes them.
const podConditionTerminationTarget = "TerminationTarget"

// scratchEvictionMessage is the start of the Pod message the kubelet writes
// when it evicts a Pod (status reason "Evicted") whose scratch emptyDir grew
// past its sizeLimit: emptyDirMessageFmt, "Usage of EmptyDir volume %q
// exceeds the limit %q. ", in kubernetes/kubernetes
// pkg/kubelet/eviction/helpers.go (line 58 at commit 008b365), formatted
// with the volume's name in emptyDirLimitEviction (eviction_manager.go).
var scratchEvictionMessage = fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit", scratchVolumeName)

// Container waiting reasons that the operator acts on.
const (
	waitingInvalidImageName   = "InvalidImageName"
	waitingErrImagePull       = "ErrImagePull"
	waitingImagePullBackOff   = "ImagePullBackOff"
	waitingErrImageNeverPull  = "ErrImageNeverPull"
	waitingCreateConfigError  = "CreateContainerConfigError"
	waitingCreateContainerErr = "CreateContainerError"
	podReasonDeadlineExceeded = "DeadlineExceeded"
	containerReasonOOMKilled  = "OOMKilled"
	// evictedReason is the Pod status reason of the kubelet's evictions.
	evictedReason = "Evicted"
)

// attemptFailure is what the operator read off an attempt that did not succeed.
type attemptFailure struct {
	// exitCode of the extractor container, if it ran and exited.
	exitCode *int32
	// reasons are the Pod's status reason, the container's terminated or
	// waiting reason and the types and reasons of the Pod's true conditions.
	reasons []string
	// message is the termination message, or the Pod's own status message.
	message string
	// deleted says the Pod was deleted, or is being deleted, under a running attempt.
	deleted bool
	// podMessage is the Pod's own status message, where the kubelet says why it evicted the Pod.
	podMessage string
}

// classify decides the error type and class of a failed attempt. The job's
// rules come first, and the first rule that matches decides the class; the
// built-in table decides otherwise. The failure carries the extractor's
// Retry-After hint when it reported its error type with one; hintErr says
// the hint was there but could not be read, and is not an error of classify.
func classify(failure attemptFailure, rules []ejv1.RetryRule) (classified ejv1.Failure, hintErr error) {
	errorType, class, reason, message, byPod := builtinVerdict(failure)
	for _, rule := range rules {
		if ruleMatches(rule, errorType, failure) {
			class = classOfAction(rule.Action)
			break
		}
	}
	classified = ejv1.Failure{
		ErrorType: errorType,
		Class:     class,
		ExitCode:  failure.exitCode,
		Reason:    reason,
		Message:   message,
	}
	if !byPod {
		hint, err := podcontract.ParseRetryAfter(failure.message)
		if hint > 0 {
			classified.RetryAfter = &metav1.Duration{Duration: hint}
		}
		hintErr = err
	}
	return classified, hintErr
}

// builtinVerdict is the built-in table's verdict. byPod says the Pod's fate
// decided it (the cluster took the Pod away, or it timed out, ran out of
// memory or could not start), not the extractor's termination message: a
// hint in that message is then not about this failure.
func builtinVerdict(failure attemptFailure) (errorType string, class ejv1.FailureClass, reason, message string, byPod bool) {
	if scratchSpaceExceeded(failure) {
		// The attempt wrote more than the class's scratchSizeLimit. The
		// kubelet calls it an eviction, but it is the extraction's doing: as a
		// disruption, retried without counting, it would fail the same way forever.
		return ejv1.ErrorTypeScratchSpaceExceeded, ejv1.ClassRetryable, evictedReason,
			fallbackMessage(failure.podMessage, "The extractor wrote more to /tmp than the class's scratchSizeLimit."), true
	}
	for _, d := range disruptionReasons {
		if hasReason(failure.reasons, d.reason) {
			return d.errorType, ejv1.ClassDisruption, d.reason, fallbackMessage(failure.message, "The cluster disrupted the attempt's Pod."), true
		}
	}
	if failure.deleted {
		return ejv1.ErrorTypePodDeleted, ejv1.ClassDisruption, "Deleted",
			"The attempt's Pod was deleted before it finished.", true
	}
	switch {
	case hasReason(failure.reasons, podReasonDeadlineExceeded):
		return ejv1.ErrorTypeTimeout, ejv1.ClassRetryable, podReasonDeadlineExceeded, "The attempt ran longer than attemptTimeout.", true
	case hasReason(failure.reasons, containerReasonOOMKilled):
		return ejv1.ErrorTypeOOMKilled, ejv1.ClassRetryable, containerReasonOOMKilled, "The extractor ran out of memory.", true
	case hasReason(failure.reasons, corev1.PodReasonUnschedulable):
		return ejv1.ErrorTypeUnschedulable, ejv1.ClassRetryable, corev1.PodReasonUnschedulable, fallbackMessage(failure.message, "The scheduler found no node for the attempt's Pod."), true
	case hasReason(failure.reasons, waitingInvalidImageName):
		return ejv1.ErrorTypeInvalidImageName, ejv1.ClassPermanent, waitingInvalidImageName, fallbackMessage(failure.message, "The extractor image name is invalid."), true
	}
	for _, pull := range []string{waitingErrImagePull, waitingImagePullBackOff, waitingErrImageNeverPull} {
		if hasReason(failure.reasons, pull) {
			return ejv1.ErrorTypeImagePull, ejv1.ClassRetryable, pull, fallbackMessage(failure.message, "The extractor image could not be pulled."), true
		}
	}
	for _, create := range []string{waitingCreateConfigError, waitingCreateContainerErr} {
		if hasReason(failure.reasons, create) {
			return ejv1.ErrorTypeContainerConfig, ejv1.ClassRetryable, create, fallbackMessage(failure.message, "The extractor container could not be created."), true
		}
	}

	reason = firstReason(failure.reasons)
	errorType, message, ok := podcontract.ParseFailure(failure.message)
	if !ok {
		errorType = ejv1.ErrorTypeUnknown
		if failure.exitCode != nil {
			if known, found := podcontract.ErrorTypeOfExitCode(int(*failure.exitCode)); found {
				errorType = known
			}
			message = fallbackMessage(message, fmt.Sprintf("The extractor exited with code %d.", *failure.exitCode))
		}
	}
	return errorType, failureClass(podcontract.ClassOf(errorType)), reason, fallbackMessage(message, "The attempt failed without a message."), false
}

// scratchSpaceExceeded reports whether the kubelet evicted the Pod for its
// scratch volume's use, and not for the node's pressure or another volume.
func scratchSpaceExceeded(failure attemptFailure) bool {
	return hasReason(failure.reasons, evictedReason) && strings.Contains(failure.podMessage, scratchEvictionMessage)
}

// failureClass is the API's name for a class of the Pod contract's built-in
// table.
func failureClass(class podcontract.Class) ejv1.FailureClass {
	if class == podcontract.Permanent {
		return ejv1.ClassPermanent
	}
	return ejv1.ClassRetryable
}

func ruleMatches(rule ejv1.RetryRule, errorType string, failure attemptFailure) bool {
	switch {
	case len(rule.ErrorTypes) > 0:
		return podcontract.ErrorTypeMatches(errorType, rule.ErrorTypes...)
	case len(rule.ExitCodes) > 0:
		return failure.exitCode != nil && slices.Contains(rule.ExitCodes, *failure.exitCode)
	case len(rule.Reasons) > 0:
		return slices.ContainsFunc(rule.Reasons, func(r string) bool { return hasReason(failure.reasons, r) })
	}
	return false
}

func classOfAction(action ejv1.RuleAction) ejv1.FailureClass {
	switch action {
	case ejv1.RuleActionFail:
		return ejv1.ClassPermanent
	case ejv1.RuleActionIgnore:
		return ejv1.ClassDisruption
	default:
		return ejv1.ClassRetryable
	}
}

func hasReason(reasons []string, want string) bool {
	return slices.ContainsFunc(reasons, func(r string) bool { return strings.EqualFold(r, want) })
}

func firstReason(reasons []string) string {
	if len(reasons) == 0 {
		return ""
	}
	return reasons[0]
}

func fallbackMessage(message, fallback string) string {
	if message = cleanText(strings.TrimSpace(message)); message != "" {
		return message
	}
	return fallback
}

// failureOfPod reads an attempt failure off a failed or stuck Pod.
func failureOfPod(pod *corev1.Pod) attemptFailure {
	var failure attemptFailure
	addReason := func(r string) {
		if r != "" && !slices.Contains(failure.reasons, r) {
			failure.reasons = append(failure.reasons, r)
		}
	}
	addReason(pod.Status.Reason)
	if status := extractorStatus(pod); status != nil {
		if t := status.State.Terminated; t != nil {
			failure.exitCode = &t.ExitCode
			addReason(t.Reason)
			failure.message = t.Message
		}
		if w := status.State.Waiting; w != nil {
			addReason(w.Reason)
			failure.message = w.Message
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Status == corev1.ConditionTrue && !isLifecycleCondition(c.Type) {
			addReason(string(c.Type))
			addReason(c.Reason)
		}
	}
	failure.podMessage = pod.Status.Message
	if failure.message == "" {
		failure.message = pod.Status.Message
	}
	return failure
}

// isLifecycleCondition tells the conditions every Pod goes through, which
// say nothing about why it failed, from those that may (DisruptionTarget,
// or a condition some other controller adds).
func isLifecycleCondition(t corev1.PodConditionType) bool {
	switch t {
	case corev1.PodReady, corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReadyToStartContainers:
		return true
	}
	return false
}

// extractorStatus is the extractor container's status, if the kubelet reported one.
func extractorStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == extractorContainerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}
