package sim

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Result is what an attempt's Pod shows in the end: the fields the operator
// reads, as the KWOK stages write them. Two Pods that ended the same way
// have equal Results.
type Result struct {
	Phase corev1.PodPhase
	// Reason and Message are the Pod's status.reason and status.message.
	Reason, Message string
	// DisruptionTarget is the reason of a true DisruptionTarget condition.
	DisruptionTarget string
	// The first container's terminated state, or its waiting state in a
	// Pending Pod.
	ContainerReason, ContainerMessage string
	ExitCode                          int32
}

// Attempt is what one attempt of a plan does.
type Attempt struct {
	Token Token // OK for a waiting container, which never gets that far
	// Result is how the Pod ends: Running for hold, Pending for a container
	// that never starts.
	Result Result
	// RunTime is how long the Pod runs before Result: run-seconds, or the
	// Pod's activeDeadlineSeconds when its deadline ends it first.
	RunTime time.Duration
	// RunTimeStated is false when the plan names no run-seconds and no
	// deadline applies, so a kubelet may run the attempt on its own time
	// scale.
	RunTimeStated bool
}

// Attempt is what the given attempt (1-based) of a Pod with the given
// spec.activeDeadlineSeconds does. As the kubelet would, a Pod that would
// run longer than its deadline (a hold always would) fails with reason
// DeadlineExceeded once the deadline has passed.
func (p Plan) Attempt(attempt int, activeDeadlineSeconds *int64) Attempt {
	token := p.Token(attempt)
	a := Attempt{Token: token}
	if p.WaitingReason != "" {
		a.Result = Result{Phase: corev1.PodPending, ContainerReason: p.WaitingReason, ContainerMessage: p.WaitingMessage}
		return a
	}
	a.RunTime, a.RunTimeStated = p.RunTime(attempt)
	if activeDeadlineSeconds != nil && (token == Hold || a.RunTime > time.Duration(*activeDeadlineSeconds)*time.Second) {
		a.RunTime, a.RunTimeStated = time.Duration(*activeDeadlineSeconds)*time.Second, true
		a.Result = deadlineExceeded(KilledExitCode)
		return a
	}
	a.Result = p.Ending(token)
	return a
}

// Ending is how an attempt that does what the token says ends under the
// plan's other annotations, before any deadline: for a test that plays the
// kubelet by hand.
func (p Plan) Ending(token Token) Result {
	switch token {
	case OK:
		return Result{Phase: corev1.PodSucceeded, ContainerReason: ReasonCompleted, ContainerMessage: p.Result}
	case Perm:
		return Result{Phase: corev1.PodFailed, ContainerReason: ReasonError, ContainerMessage: PermanentMessage, ExitCode: PermanentExitCode}
	case Evict:
		return evicted(EvictionMessage, KilledExitCode)
	case Fail:
		return p.failure()
	default:
		return Result{Phase: corev1.PodRunning}
	}
}

// failure is how a "fail" attempt ends, by the reason, exit-code and
// message annotations.
func (p Plan) failure() Result {
	reason := p.Reason
	if reason == "" {
		reason = ReasonError
	}
	code := int32(1)
	if reason == ReasonOOMKilled || reason == ReasonDeadlineExceeded || reason == ReasonEvicted {
		code = KilledExitCode
	}
	if p.ExitCode != nil {
		code = *p.ExitCode
	}
	switch reason {
	case ReasonDeadlineExceeded:
		return deadlineExceeded(code)
	case ReasonEvicted:
		message := p.Message
		if message == "" {
			message = EvictionMessage
		}
		return evicted(message, code)
	default:
		return Result{Phase: corev1.PodFailed, ContainerReason: reason, ContainerMessage: p.Message, ExitCode: code}
	}
}

func deadlineExceeded(code int32) Result {
	return Result{Phase: corev1.PodFailed, Reason: ReasonDeadlineExceeded, Message: DeadlineMessage, ContainerReason: ReasonError, ExitCode: code}
}

func evicted(message string, code int32) Result {
	return Result{
		Phase: corev1.PodFailed, Reason: ReasonEvicted, Message: message,
		DisruptionTarget: ReasonTerminationByKubelet, ContainerReason: ReasonError, ExitCode: code,
	}
}

// Observe reads a Pod's Result from its status.
func Observe(pod *corev1.Pod) Result {
	r := Result{Phase: pod.Status.Phase, Reason: pod.Status.Reason, Message: pod.Status.Message}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			r.DisruptionTarget = c.Reason
		}
	}
	if len(pod.Status.ContainerStatuses) > 0 {
		state := pod.Status.ContainerStatuses[0].State
		switch {
		case state.Terminated != nil:
			r.ContainerReason, r.ContainerMessage, r.ExitCode = state.Terminated.Reason, state.Terminated.Message, state.Terminated.ExitCode
		case state.Waiting != nil:
			r.ContainerReason, r.ContainerMessage = state.Waiting.Reason, state.Waiting.Message
		}
	}
	return r
}

// RunningStatus is the status of a Pod whose containers have started, as
// the KWOK stage extraction-pod-start writes it.
func RunningStatus(pod *corev1.Pod, now metav1.Time) corev1.PodStatus {
	status := corev1.PodStatus{
		Phase:      corev1.PodRunning,
		StartTime:  &now,
		Conditions: conditions(now, corev1.ConditionTrue, ""),
	}
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return status
}

// FinalStatus is the status of a Pod that shows the result: the terminal
// status of the finishing stages, or the waiting status of
// extraction-pod-waiting. started is when its containers started.
func FinalStatus(pod *corev1.Pod, r Result, started, now metav1.Time) corev1.PodStatus {
	status := corev1.PodStatus{Phase: r.Phase, Reason: r.Reason, Message: r.Message}
	var state corev1.ContainerState
	switch r.Phase {
	case corev1.PodPending:
		status.Conditions = conditions(now, corev1.ConditionFalse, "ContainersNotReady")
		state.Waiting = &corev1.ContainerStateWaiting{Reason: r.ContainerReason, Message: r.ContainerMessage}
	case corev1.PodRunning:
		return RunningStatus(pod, started)
	default:
		reason := "PodFailed"
		if r.Phase == corev1.PodSucceeded {
			reason = "PodCompleted"
		}
		if r.DisruptionTarget != "" {
			status.Conditions = append(status.Conditions, corev1.PodCondition{
				Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: r.DisruptionTarget, Message: r.Message, LastTransitionTime: now,
			})
		}
		status.Conditions = append(status.Conditions, conditions(now, corev1.ConditionFalse, reason)...)
		state.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: r.ExitCode, Reason: r.ContainerReason, Message: r.ContainerMessage, StartedAt: started, FinishedAt: now,
		}
	}
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Started: ptr.To(false), State: state,
		})
	}
	return status
}

// conditions are Initialized, Ready and ContainersReady, the last two with
// the given status and reason.
func conditions(now metav1.Time, ready corev1.ConditionStatus, reason string) []corev1.PodCondition {
	return []corev1.PodCondition{
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: ready, Reason: reason, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: ready, Reason: reason, LastTransitionTime: now},
	}
}
